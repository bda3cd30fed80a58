import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError, ExitCode } from './errors.js';
import { pidAlive } from './host-probe.js';
import { LAB_ROOT, labModule } from './paths.js';

/**
 * A run's reaper (vm/reaper.ts, hosts/reaper.ts) is a detached process that tears the run's testbed down when
 * the lab process is gone, even after SIGKILL. While it does, nothing else may touch that testbed: each reaper
 * keeps a record in the run's testbed directory (`reaper.<pid>.json`: its pid, the lab pid it watches, its
 * phase, its log), written by the lab when it starts the reaper and removed by the reaper when it leaves, and
 * `reproduce --resume` waits for the live ones (bounded) or refuses, naming them (awaitReapers).
 */
export interface ReaperRecord {
  /** The reaper's pid. */
  pid: number;
  /** The lab process it watches. */
  labPid: number;
  /** watching: the lab runs; tearing-down: the lab is gone and the reaper is stopping what it started. */
  phase: 'watching' | 'tearing-down';
  /** What it tears down, in words. */
  what: string;
  log: string;
  since: string;
}

const recordPath = (dir: string, pid: number) => join(dir, `reaper.${pid}.json`);

/** Written whole (a temporary file, then rename): a resume polling the directory never reads half of one. */
export function writeReaperRecord(dir: string, r: ReaperRecord): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${recordPath(dir, r.pid)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(r, null, 2)}\n`);
  renameSync(tmp, recordPath(dir, r.pid));
}

/** The reaper's own record, moved to a phase (called by the reaper; nothing when it has none). */
export function setReaperPhase(dir: string, phase: ReaperRecord['phase'], pid = process.pid): void {
  const r = readReaperRecords(dir).find((x) => x.pid === pid);
  if (r) writeReaperRecord(dir, { ...r, phase, since: new Date().toISOString() });
}

/** Called by a reaper as it leaves, whatever happened. */
export function clearReaperRecord(dir: string, pid = process.pid): void {
  rmSync(recordPath(dir, pid), { force: true });
}

export function readReaperRecords(dir: string): ReaperRecord[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^reaper\.\d+\.json$/.test(n));
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    try {
      return [JSON.parse(readFileSync(join(dir, n), 'utf8')) as ReaperRecord];
    } catch {
      return [];
    }
  });
}

/** Whether pid is a live reaper: alive, and (where /proc says) a reaper, not a process that got its pid since. */
export function reaperAlive(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('reaper');
  } catch {
    return true;
  }
}

/**
 * Start a reaper module (e.g. 'hosts/reaper') detached, and record it in `dir` at once: a lab killed right
 * after this call still leaves a record for a resume to find. Returns the reaper's pid.
 */
export function startReaperProcess(module: string, args: string[], o: { dir: string; labPid: number; what: string; log: string }): number | undefined {
  // dist/<module>.js under the compiled CLI, <module>.ts through tsx otherwise (cwd: where tsx resolves).
  const m = labModule(module);
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const child = spawn(process.execPath, [...m.nodeArgs, m.path, ...args], { detached: true, stdio: 'ignore', cwd: LAB_ROOT });
  child.unref();
  if (child.pid) writeReaperRecord(o.dir, { pid: child.pid, labPid: o.labPid, phase: 'watching', what: o.what, log: o.log, since: new Date().toISOString() });
  return child.pid;
}

export interface AwaitReapersOptions {
  /** How long a teardown may take before the resume refuses; longer than the reapers' own bounds (hosts: 2 x (120 + 30) + 30 s). */
  timeoutMs?: number;
  pollMs?: number;
  say?: (message: string) => void;
  /** For tests: whether a pid is a live reaper / a live process. */
  reaperAlive?: (pid: number) => boolean;
  pidAlive?: (pid: number) => boolean;
}

export const REAPER_WAIT_MS = 6 * 60_000;

/**
 * Before a resume touches the run's testbed (`dir`): refuse while the run's own lab process still runs, and
 * wait, up to `timeoutMs`, while the reaper of a killed run is still tearing down; past the bound, refuse
 * naming the reaper's pid, its log and what to do. Records of reapers that are gone are stale and ignored.
 */
export async function awaitReapers(dir: string, o: AwaitReapersOptions = {}): Promise<void> {
  const isReaper = o.reaperAlive ?? reaperAlive;
  const isAlive = o.pidAlive ?? pidAlive;
  const deadline = Date.now() + (o.timeoutMs ?? REAPER_WAIT_MS);
  let said = false;
  for (;;) {
    const live = readReaperRecords(dir).filter((r) => isReaper(r.pid));
    const running = live.find((r) => r.labPid !== process.pid && isAlive(r.labPid));
    if (running)
      throw new LabError(
        `--resume: this run is still running in lab process ${running.labPid} (its reaper, pid ${running.pid}, watches it); ` +
          'a second lab on the same testbed would race it',
        ExitCode.usage,
        `wait for it to end, or stop it (kill ${running.labPid}: its reaper then tears its testbed down, log ${running.log}), then resume`,
      );
    const r = live[0];
    if (!r) return;
    const what = `${r.phase === 'tearing-down' ? 'tearing down' : 'about to tear down'} ${r.what}`;
    if (Date.now() >= deadline)
      throw new LabError(
        `--resume: the reaper of the killed run (pid ${r.pid}, for lab pid ${r.labPid}) is still ${what} after ` +
          `${Math.round((o.timeoutMs ?? REAPER_WAIT_MS) / 1000)} s; resuming now would race it`,
        ExitCode.infra,
        `see its log (${r.log}) and run the same command again once pid ${r.pid} is gone; if it hangs, kill ${r.pid}, ` +
          "then stop what it left: 'kflex-lab hosts prepare --undo' with the run's --testbed or --profile (hosts: only what the lab recorded) " +
          "or 'kflex-lab clean' (VMs)",
      );
    if (!said) o.say?.(`waiting for the reaper of the killed run (pid ${r.pid}, for lab pid ${r.labPid}): it is ${what} (log ${r.log})`);
    said = true;
    await new Promise((res) => setTimeout(res, o.pollMs ?? 250));
  }
}
