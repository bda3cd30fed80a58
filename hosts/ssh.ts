import type { Host, HostExecOptions } from '../core/host.js';
import { run, type RunResult } from '../core/exec.js';
import { shellLine } from '../core/shell.js';
import type { HostSpec } from './config.js';

/**
 * How the lab reaches a user's machine: the user's own OpenSSH setup (ssh_config, ProxyJump, agent, keys),
 * never the lab's key or a forced known_hosts. Only non-interactive behaviour and bounds are added.
 */
export interface OpenSshTarget {
  /** 'server' or 'client': names the host in logs and messages. */
  role: string;
  destination: string;
  user?: string;
  port?: number;
  /** ssh -F FILE; undefined: OpenSSH's default (~/.ssh/config). */
  sshConfig?: string;
  /** A ControlPath for connection sharing (one TCP/SSH handshake per host for the whole run). */
  controlPath?: string;
}

export function targetOf(role: string, h: HostSpec, sshConfig: string | undefined, controlPath?: string): OpenSshTarget {
  return { role, destination: h.destination, user: h.user, port: h.port, sshConfig, controlPath };
}

/** Options common to ssh and scp: the user's config file, then only what a batch run needs. */
export function openSshOptions(t: OpenSshTarget): string[] {
  const o: Array<[string, string]> = [
    // No password or passphrase prompt can be answered: fail instead of hanging.
    ['BatchMode', 'yes'],
    ['ConnectTimeout', '10'],
    ['ServerAliveInterval', '5'],
    ['ServerAliveCountMax', '6'],
    ['LogLevel', 'ERROR'],
  ];
  if (t.user) o.push(['User', t.user]);
  if (t.port) o.push(['Port', String(t.port)]);
  // Idle masters exit by themselves: a lab killed with SIGKILL leaves no ssh behind for long.
  if (t.controlPath) o.push(['ControlMaster', 'auto'], ['ControlPath', t.controlPath], ['ControlPersist', '120']);
  return [...(t.sshConfig ? ['-F', t.sshConfig] : []), ...o.flatMap(([k, v]) => ['-o', `${k}=${v}`])];
}

/** ssh argv for a remote argv: each element quoted for the remote shell, so it arrives as one word. */
export function openSshArgv(t: OpenSshTarget, remote: readonly string[], opts: { tty?: boolean } = {}): string[] {
  return ['ssh', ...openSshOptions(t), ...(opts.tty ? ['-t'] : []), '--', t.destination, ...(remote.length ? [shellLine(remote)] : [])];
}

/** scp's remote spec (hosts.yaml refuses ssh:// destinations, so `dest:path` is always right). */
export function scpRemote(t: OpenSshTarget, path: string): string {
  return `${t.destination}:${path}`;
}

export function openScpArgv(t: OpenSshTarget, from: string, to: string): string[] {
  return ['scp', ...openSshOptions(t), '-q', '--', from, to];
}

/** `sudo -n --` before argv when the host asks for it: no password prompt, never a shell string. */
export function withSudo(argv: readonly string[], sudo: boolean): string[] {
  return sudo ? ['sudo', '-n', '--', ...argv] : [...argv];
}

/** One of the user's machines as a Host: commands over their OpenSSH, as root through sudo if configured. */
export class OpenSshHost implements Host {
  constructor(
    readonly target: OpenSshTarget,
    readonly sudo: boolean,
  ) {}
  get name() {
    return this.target.role;
  }
  /** The same machine without sudo: for what must see the login session (e.g. $SSH_CONNECTION). */
  asLoginUser(): OpenSshHost {
    return new OpenSshHost(this.target, false);
  }
  exec(argv: readonly string[], opts: HostExecOptions = {}): Promise<RunResult> {
    return run(openSshArgv(this.target, withSudo(argv, this.sudo)), {
      timeoutMs: opts.timeoutMs ?? 10 * 60_000,
      onLine: opts.onLine,
      logPath: opts.logPath,
      allowFailure: opts.allowFailure,
      input: opts.input,
      signal: opts.signal,
    });
  }
  /** As the login user (scp cannot sudo): remote paths must be writable by them, e.g. under /tmp. */
  async copyIn(localPath: string, remotePath: string): Promise<void> {
    await run(openScpArgv(this.target, localPath, scpRemote(this.target, remotePath)), { timeoutMs: 5 * 60_000 });
  }
  async copyOut(remotePath: string, localPath: string): Promise<void> {
    await run(openScpArgv(this.target, scpRemote(this.target, remotePath), localPath), { timeoutMs: 5 * 60_000 });
  }
  /** Stop the shared connection, if any (idempotent). */
  async closeMaster(): Promise<void> {
    if (!this.target.controlPath) return;
    await run(['ssh', ...openSshOptions(this.target), '-O', 'exit', '--', this.target.destination], { timeoutMs: 15_000, allowFailure: true }).catch(
      () => undefined,
    );
  }
}
