import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ARTIFACT_HEAPS } from '../core/config.js';
import type { EventBus } from '../core/events.js';
import type { Host } from '../core/host.js';
import type { Capabilities, CellContext, CellOutcome } from './types.js';
import { resetHosts } from './server.js';
import { waitUntil } from '../core/retry.js';
import { shellLine } from '../core/shell.js';
import { cellBoundSeconds, missingInput, needsRun, paramsSlug, phaseClock, readCellRecord, type CellRecord, type ExperimentCell } from './cells.js';
import { unmetRequirement } from './requirements.js';
import { kmsgSeq, kmsgSince } from './kmsg.js';
import { HeapFreeGate, heapFreeBoundSeconds } from './heaps.js';

/** What the cells run on: the testbed's two hosts and link, and how to tell that it is gone. */
export interface CellEnv {
  runDir: string;
  server: Host;
  client: Host;
  serverIp: string;
  linkIf: string;
  caps: Capabilities;
  bus: EventBus;
  resume?: boolean;
  /** undefined while the testbed is alive, else why it is gone; polled during every cell. */
  health?: () => Promise<string | undefined>;
  /** How often health is polled (ms). */
  healthIntervalMs?: number;
  /** How long a cancelled cell's own cleanup may take before the run goes on without it (ms). */
  cancelGraceMs?: number;
  /** The lab's own BPF objects built on this host, by file name. */
  objects?: Record<string, string>;
  /** Between KFlex cells, the wait for the last heap's memory (experiments/heaps.ts); tests pass their own. */
  heapGate?: HeapFreeGate;
}

/** health()'s reason if the testbed is gone now or within `ms`, else undefined. */
async function lostWithin(health: () => Promise<string | undefined>, ms: number): Promise<string | undefined> {
  let why: string | undefined;
  await waitUntil(
    async () => {
      why = await health().catch(() => undefined);
      return !!why;
    },
    ms,
    200,
  );
  return why;
}

/** Resolve with the reason as soon as health() reports the testbed gone; `stop()` ends the polling. */
function watchHealth(health: () => Promise<string | undefined>, intervalMs: number): { lost: Promise<string>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const lost = new Promise<string>((resolve) => {
    const tick = async () => {
      if (stopped) return;
      const why = await health().catch(() => undefined);
      if (why) return resolve(why);
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    timer = setTimeout(tick, intervalMs);
  });
  return {
    lost,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** The fields every record of a cell starts with, its heap (scaled or not) among them. */
function recordBase(cell: ExperimentCell): Omit<CellRecord, 'status' | 'seconds'> {
  const artifactHeap = cell.variant.heap ? ARTIFACT_HEAPS[cell.variant.heap] : cell.variant.heapGiB;
  const heap = cell.heapGiB
    ? { heap: { gib: cell.heapGiB, artifact_gib: artifactHeap ?? cell.heapGiB, scaled: !!artifactHeap && cell.heapGiB !== artifactHeap } }
    : {};
  return { experiment: cell.experiment.id, variant: cell.variant.id, params: cell.params, rep: cell.rep, started: new Date().toISOString(), ...heap };
}

type Race = { out: CellOutcome } | { error: Error } | { dead: string } | { overdue: true };

/**
 * Run the experiment's work for one cell against its bound and the testbed's health. Past its bound the
 * cell is cancelled: its commands are aborted, the hosts are reset (only what the cell started), and its
 * own cleanup is awaited (bounded), so nothing of it runs on into the next cell.
 */
async function raceCell(cell: ExperimentCell, dir: string, env: CellEnv, boundS: number, phase: CellContext['phase'], gate: HeapFreeGate): Promise<Race> {
  const abort = new AbortController();
  const watch = env.health ? watchHealth(env.health, env.healthIntervalMs ?? 1000) : undefined;
  const dead = watch?.lost.then((why) => ({ dead: why })) ?? new Promise<never>(() => {});
  let boundTimer: NodeJS.Timeout | undefined;
  const overdue = new Promise<{ overdue: true }>((resolve) => {
    boundTimer = setTimeout(() => resolve({ overdue: true }), boundS * 1000);
  });
  const ctx = cellContext(cell, dir, env, boundS * 1000, phase, abort.signal);
  const work = gate
    .before(cell, ctx)
    .then(() => cell.experiment.runCell(ctx, cell.variant))
    .then(
      (out) => ({ out }),
      (e: unknown) => ({ error: e as Error }),
    );
  try {
    const r = await Promise.race([work, dead, overdue]);
    if ('overdue' in r) {
      abort.abort();
      await resetHosts(env.server, env.client, env.linkIf);
      await Promise.race([work, new Promise((res) => setTimeout(res, env.cancelGraceMs ?? 60_000))]);
    }
    return r;
  } finally {
    watch?.stop();
    clearTimeout(boundTimer);
  }
}

/** The record of a cell that ran, from how its race ended; `lost` is set when the testbed died. */
async function recordOf(
  r: Race,
  cell: ExperimentCell,
  dir: string,
  env: CellEnv,
  boundS: number,
  waited: boolean,
): Promise<{ record: Omit<CellRecord, 'seconds' | 'started'> & Partial<CellRecord>; lost?: string }> {
  const base = recordBase(cell);
  if ('overdue' in r)
    return {
      record: {
        ...base,
        status: 'failed',
        reason:
          `exceeded its bound of ${boundS} s (2 x its estimate + 120 s${cell.heapGiB ? ' + the heap fill' : ''}${waited ? ' + the last heap freed' : ''}); ` +
          'it was cancelled and its processes were stopped',
      },
    };
  if ('dead' in r) return { record: { ...base, status: 'failed', reason: `testbed lost during this cell: ${r.dead}` }, lost: r.dead };
  if ('error' in r) {
    // A cell can fail because its machine just died: say so rather than quote a broken pipe. An SSH
    // failure can beat the process's exit by a moment, so those get a short look before they count.
    const sshLost = /exit(ed)? 255|Connection (refused|reset|closed)|closed by remote/i.test(r.error.message);
    const why = env.health ? await lostWithin(env.health, sshLost ? 3000 : 0) : undefined;
    const reason = why ? `testbed lost during this cell: ${why}\n(the cell said: ${r.error.message.split('\n')[0]})` : r.error.message;
    return { record: { ...base, status: 'failed', reason }, lost: why };
  }
  for (const [name, content] of Object.entries(r.out.files ?? {})) await writeFile(join(dir, name), content);
  await writeFile(join(dir, 'metrics.json'), `${JSON.stringify(r.out.metrics, null, 2)}\n`);
  return { record: { ...base, status: 'ok', metrics: r.out.metrics, deviations: r.out.deviations, ...(r.out.table ? { table: r.out.table } : {}) } };
}

/** The server's kernel log of this cell (experiment 5 reads experiment 4's); a wrap is a deviation of the cell. */
async function keepKernelLog(env: CellEnv, dir: string, logFrom: number): Promise<string | undefined> {
  // Without a starting sequence number a slice would hold the whole boot log (and claim a wrap).
  if (logFrom < 0) {
    await writeFile(join(dir, 'kernel.log'), 'kflex-lab: the kernel log could not be read at the start of this cell: not sliced\n');
    return undefined;
  }
  const slice = await kmsgSince(env.server, logFrom);
  await writeFile(join(dir, 'kernel.log'), slice.gap ? `${slice.gap}\n${slice.text}` : slice.text);
  return slice.gap;
}

/** One cell that is to run: start event, the race, its record, its kernel log. */
async function runOneCell(cell: ExperimentCell, dir: string, env: CellEnv, gate: HeapFreeGate): Promise<{ record: CellRecord; lost?: string }> {
  const started = Date.now();
  const clock = phaseClock(started);
  // A KFlex cell after another first waits for the last heap's memory (its `heap-free` phase): its bound grows by that wait's.
  const waits = gate.waits(cell);
  const boundS = cellBoundSeconds(cell, env.caps.accel) + (waits ? heapFreeBoundSeconds(env.caps.accel) : 0);
  clock.mark(waits ? 'heap-free' : 'server-start');
  let out: Awaited<ReturnType<typeof recordOf>>;
  try {
    const logFrom = await kmsgSeq(env.server);
    const r = await raceCell(cell, dir, env, boundS, clock.mark, gate);
    out = await recordOf(r, cell, dir, env, boundS, waits);
    if (!out.lost) {
      clock.mark('collection');
      const gap = await keepKernelLog(env, dir, logFrom);
      if (gap) out.record.deviations = [...(out.record.deviations ?? []), gap];
    }
  } catch (e) {
    out = { record: { ...recordBase(cell), status: 'failed', reason: (e as Error).message } };
  }
  const end = Date.now();
  const record = { started: new Date(started).toISOString(), ...out.record, seconds: (end - started) / 1000, ...clock.seconds(end) } as CellRecord;
  return { record, lost: out.lost };
}

/**
 * Run the cells one by one. A failed cell keeps its logs and the run goes on; with resume, cells already
 * ok or skipped are kept. When the testbed dies the running cell fails with the reason, the rest are
 * skipped with it (and marked for --resume), and `lost` says why.
 */
export async function runCells(cells: ExperimentCell[], env: CellEnv): Promise<{ records: CellRecord[]; lost?: string }> {
  const records: CellRecord[] = [];
  let lost: string | undefined;
  const gate = env.heapGate ?? new HeapFreeGate();
  for (const [n, cell] of cells.entries()) {
    const at = { index: n + 1, total: cells.length, experiment: cell.experiment.id, variant: cell.variant.id, params: paramsSlug(cell.params), rep: cell.rep };
    const emit = (r: CellRecord, status: CellRecord['status'] | 'kept' = r.status) => {
      const value = r.metrics?.[cell.experiment.headline];
      const headline = value === undefined ? undefined : { metric: cell.experiment.headline, value };
      env.bus.emit({ type: 'cell', ...at, status, headline, reason: r.reason, seconds: r.seconds });
    };
    const prev = env.resume ? await readCellRecord(env.runDir, cell.path) : undefined;
    if (prev && !needsRun(prev)) {
      records.push(prev);
      emit(prev, 'kept');
      continue;
    }
    const dir = join(env.runDir, cell.path);
    await mkdir(dir, { recursive: true });
    const skip = lost
      ? `not run: the testbed was lost during an earlier cell (${lost.split('\n')[0]}); finish with --resume`
      : (unmetRequirement(cell.variant, env.caps, cell.heapGiB) ?? missingInput(cell, records));
    let record: CellRecord;
    if (skip) record = { ...recordBase(cell), status: 'skipped', reason: skip, seconds: 0, ...(lost ? { rerun: true } : {}) };
    else {
      env.bus.emit({ type: 'cell-start', ...at });
      const r = await runOneCell(cell, dir, env, gate);
      record = r.record;
      if (r.lost) {
        lost = r.lost;
        env.bus.emit({ type: 'testbed-lost', why: lost });
      }
    }
    await writeFile(join(dir, 'status.json'), `${JSON.stringify(record, null, 2)}\n`);
    records.push(record);
    emit(record);
  }
  return { records, lost };
}

function cellContext(cell: ExperimentCell, dir: string, env: CellEnv, boundMs: number, phase: CellContext['phase'], signal: AbortSignal): CellContext {
  return {
    phase,
    boundMs,
    signal,
    server: env.server,
    client: env.client,
    serverIp: env.serverIp,
    linkIf: env.linkIf,
    params: cell.params,
    settings: cell.settings,
    rep: cell.rep,
    cellDir: dir,
    caps: env.caps,
    runDir: env.runDir,
    objects: env.objects ?? {},
    log: (line) => env.bus.emit({ type: 'line', stage: 'experiments', line }),
    async exec(host, name, argv, opts = {}) {
      if (signal.aborted) throw new Error(`${name}: not started, the cell was cancelled`);
      // The exact command, on which host, is kept beside its output.
      await writeFile(join(dir, `${name}.cmd`), `${host.name}$ ${shellLine(argv)}\n`);
      const r = await host.exec(argv, { ...opts, allowFailure: true, signal });
      await writeFile(join(dir, `${name}.stdout`), r.stdout);
      await writeFile(join(dir, `${name}.stderr`), r.stderr);
      if (r.code !== 0 && !opts.allowFailure) throw new Error(`${name} on ${host.name} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' / ')}`);
      return r;
    },
  };
}
