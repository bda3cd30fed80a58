import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import {
  awaitReapers,
  clearReaperRecord,
  readReaperRecords,
  setReaperPhase,
  startReaperProcess,
  writeReaperRecord,
  type ReaperRecord,
} from '../../core/reaping.js';
import { LabError, ExitCode } from '../../core/errors.js';
import { tempDir } from '../helpers.js';

const REAPER = 4101;
const LAB = 4100;

function record(dir: string, o: Partial<ReaperRecord> = {}): ReaperRecord {
  const r: ReaperRecord = {
    pid: REAPER,
    labPid: LAB,
    phase: 'tearing-down',
    what: 'the processes the cells started on the hosts',
    log: join(dir, 'hosts-reaper.log'),
    since: '2026-12-02T00:00:00.000Z',
    ...o,
  };
  writeReaperRecord(dir, r);
  return r;
}

async function refusal(p: Promise<unknown>): Promise<LabError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    return e as LabError;
  }
  throw new Error('expected a LabError');
}

describe("a resume never races a killed run's reaper", () => {
  it('goes on at once when no reaper is recorded, or only reapers that are gone (stale records)', async () => {
    const dir = tempDir();
    await awaitReapers(join(dir, 'no-such-dir'));
    record(dir);
    const said: string[] = [];
    await awaitReapers(dir, { reaperAlive: () => false, pidAlive: () => false, say: (m) => said.push(m) });
    expect(said).toEqual([]);
  });

  it('waits while the reaper tears down, saying which pid and where its log is, and goes on when it has left', async () => {
    const dir = tempDir();
    const r = record(dir);
    const said: string[] = [];
    const t0 = Date.now();
    // The reaper leaves after 300 ms: its record goes (as hosts/reaper.ts and vm/reaper.ts do in finally).
    setTimeout(() => clearReaperRecord(dir, REAPER), 300);
    await awaitReapers(dir, { reaperAlive: (pid) => pid === REAPER, pidAlive: () => false, pollMs: 20, timeoutMs: 10_000, say: (m) => said.push(m) });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(said).toEqual([
      `waiting for the reaper of the killed run (pid ${REAPER}, for lab pid ${LAB}): ` +
        `it is tearing down the processes the cells started on the hosts (log ${r.log})`,
    ]);
    expect(readReaperRecords(dir)).toEqual([]);
  });

  it('refuses past the bound, naming the reaper pid, its log and what to do', async () => {
    const dir = tempDir();
    const r = record(dir, { phase: 'watching' });
    const e = await refusal(awaitReapers(dir, { reaperAlive: () => true, pidAlive: () => false, pollMs: 10, timeoutMs: 100 }));
    expect(e.exitCode).toBe(ExitCode.infra);
    expect(e.message).toBe(
      `--resume: the reaper of the killed run (pid ${REAPER}, for lab pid ${LAB}) is still about to tear down the processes the cells ` +
        'started on the hosts after 0 s; resuming now would race it',
    );
    expect(e.hint).toBe(
      `see its log (${r.log}) and run the same command again once pid ${REAPER} is gone; if it hangs, kill ${REAPER}, then stop what it left: ` +
        "'kflex-lab hosts prepare --undo' with the run's --testbed or --profile (hosts: only what the lab recorded) or 'kflex-lab clean' (VMs)",
    );
  });

  it('refuses at once while the run itself is still running in its lab process', async () => {
    const dir = tempDir();
    record(dir, { phase: 'watching' });
    const e = await refusal(awaitReapers(dir, { reaperAlive: () => true, pidAlive: (pid) => pid === LAB, timeoutMs: 60_000 }));
    expect(e.exitCode).toBe(ExitCode.usage);
    expect(e.message).toMatch(new RegExp(`still running in lab process ${LAB} \\(its reaper, pid ${REAPER}, watches it\\)`));
    expect(e.hint).toMatch(new RegExp(`kill ${LAB}: its reaper then tears its testbed down`));
  });

  it('a reaper moves its own record to tearing-down and removes it as it leaves', () => {
    const dir = tempDir();
    record(dir, { pid: process.pid, phase: 'watching' });
    setReaperPhase(dir, 'tearing-down');
    expect(readReaperRecords(dir)).toMatchObject([{ pid: process.pid, phase: 'tearing-down' }]);
    clearReaperRecord(dir);
    expect(existsSync(join(dir, `reaper.${process.pid}.json`))).toBe(false);
  });

  it('a real reaper is recorded the moment it starts, and the resume waits until it has left', async () => {
    const dir = tempDir();
    // The "lab": a process that ends soon; the VM reaper then finds no VM set to tear down and leaves.
    const lab = spawn('sleep', ['1'], { stdio: 'ignore' });
    const pid = startReaperProcess('vm/reaper', [String(lab.pid), dir], { dir, labPid: lab.pid!, what: `the VM set in ${dir}`, log: join(dir, 'reaper.log') });
    expect(readReaperRecords(dir)).toMatchObject([{ pid, labPid: lab.pid, phase: 'watching' }]);
    // While the lab runs, a resume refuses; once it is gone, the resume waits for the reaper to leave.
    expect((await refusal(awaitReapers(dir, { pidAlive: (p) => p === lab.pid && lab.exitCode === null }))).message).toMatch(/still running in lab process/);
    await new Promise((r) => lab.once('exit', r));
    await awaitReapers(dir, { pollMs: 50, timeoutMs: 20_000 });
    expect(readReaperRecords(dir)).toEqual([]);
  }, 30_000);
});
