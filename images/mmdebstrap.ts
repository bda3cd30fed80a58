/** mmdebstrap for every stage that builds a root (image, KFlex, BMC, arena): argv builders and one runner. */
import { readFile } from 'node:fs/promises';
import { run, type RunOptions } from '../core/exec.js';
import { LabError, ExitCode } from '../core/errors.js';

export interface MmdebstrapOptions {
  suite: string;
  target: string;
  mirror?: string;
  variant?: 'minbase' | 'apt' | 'essential';
  include: string[];
  /** Hooks: each an executable path or an mmdebstrap special hook (copy-in, copy-out, sync-in...). */
  customize?: string[];
  /** Keep docs, man pages and locales out of the image (smaller, faster to build). */
  slim?: boolean;
}

export function mmdebstrapArgv(o: MmdebstrapOptions): string[] {
  return [
    'mmdebstrap',
    `--variant=${o.variant ?? 'minbase'}`,
    '--mode=root',
    `--include=${o.include.join(',')}`,
    // A mirror that does not answer fails after retries instead of hanging.
    '--aptopt=Acquire::http::Timeout "30"',
    '--aptopt=Acquire::Retries "3"',
    ...(o.slim
      ? [
          '--dpkgopt=path-exclude=/usr/share/man/*',
          '--dpkgopt=path-exclude=/usr/share/locale/*',
          '--dpkgopt=path-exclude=/usr/share/doc/*',
          '--dpkgopt=path-include=/usr/share/doc/*/copyright',
        ]
      : []),
    ...(o.customize ?? []).map((h) => `--customize-hook=${h}`),
    o.suite,
    o.target,
    ...(o.mirror ? [o.mirror] : []),
  ];
}

/** Turn mmdebstrap's log into the one reason a user needs (unknown package, unknown suite, mirror down). */
export function explainMmdebstrapFailure(log: string, suite: string): string | undefined {
  const pkgs = [...log.matchAll(/E: Unable to locate package (\S+)|E: Package '([^']+)' has no installation candidate/g)].map((m) => m[1] ?? m[2]);
  if (pkgs.length) return `package(s) not in ${suite}: ${[...new Set(pkgs)].join(', ')}; fix image.packages in lab.yaml`;
  const noSuite = log.match(/(?:does not have a Release file|no Release file|404\s+Not Found \[IP[^\]]*\]).*$/m);
  if (noSuite || /Failed to fetch .*dists\/[a-z]+\/.*404/.test(log)) return `suite '${suite}' is not on the mirror; fix image.suite (e.g. trixie, bookworm)`;
  if (/Could not resolve|Connection timed out|Temporary failure resolving|Unable to connect/.test(log))
    return `the mirror does not answer; set image.mirror in lab.yaml or check the host's apt configuration`;
  if (/No space left on device/.test(log)) return `no free disk; free space or set KFLEX_LAB_CACHE to a larger disk`;
  return undefined;
}

/**
 * Run mmdebstrap; on failure, the one reason from its log first (an unknown suite, a package the suite does
 * not have, a mirror that does not answer), then the log's tail. Every stage's root is of the guest suite,
 * so the first stage to meet a wrong image.suite names it, whichever stage that is.
 */
export async function runMmdebstrap(argv: string[], opts: RunOptions & { logPath: string }, suite: string, what = 'mmdebstrap'): Promise<void> {
  try {
    await run(argv, opts);
  } catch (e) {
    const why = explainMmdebstrapFailure(await readFile(opts.logPath, 'utf8').catch(() => ''), suite);
    throw why ? new LabError(`${what}: ${why}\n${(e as Error).message}`, ExitCode.infra) : e;
  }
}
