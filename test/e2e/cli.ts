import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { LAB, ROOT } from '../helpers.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI (bin/kflex-lab.mjs) and collect its output; the test's timeout bounds it. */
export function lab(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LAB, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (process.env.KFLEX_TEST_VERBOSE) process.stderr.write(d);
    });
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export function spawnLab(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [LAB, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Fail with everything the CLI said, so a red CI run explains itself. */
export function explain(r: CliResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`;
}

/** A lab event as recorded by --events (JSON lines). */
export type RecordedEvent = { t: string; type: string; [k: string]: unknown };

/** The events a lab wrote to its --events file so far. */
export function readEvents(file: string): RecordedEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RecordedEvent);
}

/** Wait until an event matching pred is in the file (or the timeout), polling. */
export async function waitForEvent(file: string, pred: (e: RecordedEvent) => boolean, timeoutMs: number): Promise<RecordedEvent | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const hit = readEvents(file).find(pred);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

/** A lab in the background: its output so far, and its exit; waits give up when it has exited. */
export function backgroundLab(args: string[], env: Record<string, string> = {}) {
  const child = spawnLab(args, env);
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (process.env.KFLEX_TEST_VERBOSE) process.stderr.write(d);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let code: number | null | undefined;
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (c) => {
      code = c;
      r(c);
    }),
  );
  return {
    child,
    exited,
    output: () => out,
    /** The first event matching pred, or undefined once the lab has exited or the timeout passed. */
    async waitFor(file: string, pred: (e: RecordedEvent) => boolean, timeoutMs: number): Promise<RecordedEvent | undefined> {
      const t0 = Date.now();
      while (Date.now() - t0 < timeoutMs) {
        const hit = readEvents(file).find(pred);
        if (hit || code !== undefined) return hit;
        await new Promise((r) => setTimeout(r, 200));
      }
      return undefined;
    },
  };
}
