import type { RunResult } from './exec.js';

export interface HostExecOptions {
  timeoutMs?: number;
  onLine?: (line: string) => void;
  logPath?: string;
  allowFailure?: boolean;
  input?: string;
  /** Aborted: the command is killed (a cell past its bound is cancelled, not abandoned). */
  signal?: AbortSignal;
}

/**
 * A machine the experiments drive: today a VM of the lab, later a bare-metal host over SSH.
 * Commands are argv arrays; implementations quote them for the remote shell.
 */
export interface Host {
  readonly name: string;
  exec(argv: readonly string[], opts?: HostExecOptions): Promise<RunResult>;
  copyIn(localPath: string, remotePath: string): Promise<void>;
  copyOut(remotePath: string, localPath: string): Promise<void>;
}
