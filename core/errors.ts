/** Exit codes the CLI promises (see `kflex-lab --help`). */
export const ExitCode = {
  ok: 0,
  checkFailed: 1, // an experiment cell or a doctor check failed
  usage: 2, // bad command line or lab.yaml
  infra: 3, // build, boot or network failure
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the lab explains to the user; `exitCode` says which class of failure it is. */
export class LabError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.infra,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'LabError';
  }
}

export class ConfigError extends LabError {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'), ExitCode.usage);
    this.name = 'ConfigError';
  }
}
