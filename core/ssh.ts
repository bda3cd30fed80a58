import type { Host, HostExecOptions } from './host.js';
import { run, type RunResult } from './exec.js';
import { shellLine } from './shell.js';

export interface SshTarget {
  name: string;
  host: string;
  port: number;
  user: string;
  identity: string;
  knownHosts: string;
  /** Name the pinned host key is filed under in knownHosts. */
  hostKeyAlias?: string;
  /** Extra -o options, e.g. a ProxyCommand or ProxyJump for hosts behind a bastion. */
  options?: Record<string, string>;
  /** Run ssh/scp through this prefix, e.g. ['ip', 'netns', 'exec', NS] for a VM whose forward lives in a namespace. */
  wrapper?: string[];
  /**
   * A ControlPath: every ssh/scp to this host shares one connection (under TCG each new one costs a key
   * exchange in an emulated CPU, about a second). The master stays while commands come, exits when idle or
   * when the guest goes away, and is closed when the VMs are torn down (vm/state.ts).
   */
  controlPath?: string;
}

/** Seconds an idle shared connection stays open: long enough for a student's next `kflex-lab exec`. */
export const CONTROL_PERSIST_S = 300;

/** ssh/scp options shared by every call: the lab's key, the pinned host key, no prompts, bounded connects. */
export function sshOptions(t: SshTarget): string[] {
  const o: Record<string, string> = {
    IdentityFile: t.identity,
    IdentitiesOnly: 'yes',
    UserKnownHostsFile: t.knownHosts,
    StrictHostKeyChecking: 'yes',
    BatchMode: 'yes',
    ConnectTimeout: '5',
    ServerAliveInterval: '5',
    ServerAliveCountMax: '6',
    LogLevel: 'ERROR',
    ...(t.hostKeyAlias ? { HostKeyAlias: t.hostKeyAlias } : {}),
    ...(t.controlPath ? { ControlMaster: 'auto', ControlPath: t.controlPath, ControlPersist: String(CONTROL_PERSIST_S) } : {}),
    ...t.options,
  };
  return Object.entries(o).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

export function sshArgv(t: SshTarget, remote: readonly string[], opts: { tty?: boolean } = {}): string[] {
  // The remote side is a shell: quote every argv element so it arrives as one word.
  return [
    ...(t.wrapper ?? []),
    'ssh',
    '-F',
    '/dev/null',
    ...sshOptions(t),
    ...(opts.tty ? ['-t'] : []),
    '-p',
    String(t.port),
    `${t.user}@${t.host}`,
    ...(remote.length ? ['--', shellLine(remote)] : []),
  ];
}

export function scpArgv(t: SshTarget, from: string, to: string): string[] {
  return [...(t.wrapper ?? []), 'scp', '-F', '/dev/null', ...sshOptions(t), '-q', '-P', String(t.port), from, to];
}

/** A Host reached over OpenSSH: a lab VM through its forwarded port, or a bare-metal machine. */
export class SshHost implements Host {
  constructor(readonly target: SshTarget) {}
  get name() {
    return this.target.name;
  }
  exec(argv: readonly string[], opts: HostExecOptions = {}): Promise<RunResult> {
    return run(sshArgv(this.target, argv), {
      timeoutMs: opts.timeoutMs ?? 10 * 60_000,
      onLine: opts.onLine,
      logPath: opts.logPath,
      allowFailure: opts.allowFailure,
      input: opts.input,
      signal: opts.signal,
    });
  }
  async copyIn(localPath: string, remotePath: string): Promise<void> {
    await run(scpArgv(this.target, localPath, `${this.target.user}@${this.target.host}:${remotePath}`), { timeoutMs: 5 * 60_000 });
  }
  async copyOut(remotePath: string, localPath: string): Promise<void> {
    await run(scpArgv(this.target, `${this.target.user}@${this.target.host}:${remotePath}`, localPath), { timeoutMs: 5 * 60_000 });
  }
}
