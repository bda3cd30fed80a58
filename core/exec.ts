import { accessSync, constants, createWriteStream, type WriteStream } from 'node:fs';
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { LabError, ExitCode } from './errors.js';

/** A command line as an argv array: the lab never builds shell strings (zx quotes each element). */
export type Argv = readonly string[];

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Every output line is appended here (created if missing). */
  logPath?: string;
  /** Called for each stdout/stderr line, e.g. to forward it as a progress event. */
  onLine?: (line: string) => void;
  /** Hard limit; the process is killed and the run fails with the log tail. */
  timeoutMs?: number;
  input?: string;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Aborted: the process is killed with SIGKILL and the run ends as killed. */
  signal?: AbortSignal;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run argv, stream its output to the log and to onLine, and fail with the log's tail on error. */
export async function run(argv: Argv, opts: RunOptions = {}): Promise<RunResult> {
  let log: WriteStream | undefined;
  if (opts.logPath) {
    await mkdir(dirname(opts.logPath), { recursive: true });
    log = createWriteStream(opts.logPath, { flags: 'a' });
    log.write(`$ ${argv.join(' ')}\n`);
  }
  const tailer = lineSplitter((line) => {
    log?.write(`${line}\n`);
    opts.onLine?.(line);
  });
  // zx is loaded at the first command, not at start: a cached `build all` runs none.
  const { $ } = await import('zx');
  const p = $({
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env } as NodeJS.ProcessEnv,
    quiet: true,
    nothrow: true,
    input: opts.input,
    timeout: opts.timeoutMs,
    timeoutSignal: 'SIGKILL',
    signal: opts.signal,
    killSignal: 'SIGKILL',
  })`${argv}`;
  p.stdout.on('data', (d: Buffer) => tailer.push(d));
  p.stderr.on('data', (d: Buffer) => tailer.push(d));
  const out = await settleAfterKill(p, opts);
  tailer.flush();
  const code = out.exitCode ?? (out.signal ? 128 : 1);
  if (log) await new Promise<void>((r) => log!.end(() => r()));
  if (code !== 0 && !opts.allowFailure) {
    const tail = opts.logPath ? await tailOf(opts.logPath, 30) : lastLines(out.stdout + out.stderr, 30);
    const why = out.signal ? `killed by ${out.signal}${opts.timeoutMs ? ` (timeout ${Math.round(opts.timeoutMs / 1000)} s)` : ''}` : `exit ${code}`;
    throw new LabError(`${argv[0]} failed (${why})${opts.logPath ? `; log: ${opts.logPath}` : ''}\n${tail.map((l) => `  | ${l}`).join('\n')}`, ExitCode.infra);
  }
  return { code, stdout: out.stdout, stderr: out.stderr };
}

/** Seconds a killed process's output may stay open before the lab stops waiting for it. */
export const KILLED_STDIO_GRACE_MS = 5_000;

/**
 * zx settles when the child's stdio closes, not when the child dies. Something else may hold that stdio open
 * after the kill: a grandchild, or ssh's shared connection (a mux client hands its stdio to the master, which
 * keeps it while the remote command runs on: a submission hung in a guest's kernel kept `lab check` waiting
 * 24 min past its 60 s bound). So once the bound or the abort has killed the child, its streams are closed
 * after a grace period, and the result reads as killed.
 */
async function settleAfterKill<T>(p: Promise<T> & { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream }, opts: RunOptions): Promise<T> {
  let grace: NodeJS.Timeout | undefined;
  const unstick = () => {
    grace ??= setTimeout(() => {
      for (const s of [p.stdout, p.stderr]) (s as NodeJS.ReadableStream & { destroy(): void }).destroy();
    }, KILLED_STDIO_GRACE_MS);
  };
  const bound = opts.timeoutMs ? setTimeout(unstick, opts.timeoutMs) : undefined;
  opts.signal?.addEventListener('abort', unstick, { once: true });
  try {
    return await p;
  } finally {
    clearTimeout(bound);
    clearTimeout(grace);
    opts.signal?.removeEventListener('abort', unstick);
  }
}

/**
 * Output of a short probe command (stdout + stderr), or undefined when it cannot run (missing binary,
 * failure, timeout). Spawned directly, without a shell or zx: the stages probe tool versions at every
 * start, and a cached `build all` must stay a fraction of a second.
 */
export function probe(argv: Argv, timeoutMs = 20_000): Promise<string | undefined> {
  // A program that is not there is answered without a fork: the toolchain search asks for clang-25 down to
  // clang-19, and each failed spawn forks this whole process first.
  if (!argv[0]!.includes('/') && !onPath(argv[0]!)) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve(err ? undefined : stdout + stderr),
    );
  });
}

/** Whether an executable `name` is in one of PATH's directories. */
export function onPath(name: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((d) => {
    if (!d) return false;
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function lastLines(text: string, n: number): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-n);
}

export async function tailOf(path: string, n: number): Promise<string[]> {
  try {
    return lastLines(await readFile(path, 'utf8'), n);
  } catch {
    return [`(no log at ${path})`];
  }
}

function lineSplitter(emit: (line: string) => void) {
  let pending = '';
  return {
    push(chunk: Buffer) {
      pending += chunk.toString('utf8');
      const parts = pending.split(/\r?\n/);
      pending = parts.pop() ?? '';
      for (const l of parts) emit(l);
    },
    flush() {
      if (pending) emit(pending);
      pending = '';
    },
  };
}
