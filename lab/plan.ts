import { EXPERIMENTS } from '../experiments/index.js';
import { cpus } from 'node:os';
import type { ResolvedConfig } from '../core/config.js';
import { plan as planStages } from '../core/runner.js';
import { buildTargets, stageRegistry, TESTBED_TARGETS } from './stages.js';
import { EventBus, recordEvents } from '../core/events.js';
import { attachView } from '../core/progress.js';
import type { StageOutput } from '../core/stage.js';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { configureOnly } from '../kernel/stage.js';
import { kernelDebOutputs, installSteps } from '../kernel/deb.js';
import { planCells } from '../experiments/cells.js';
import { forecast, parseAssumeHost, thisHost, type CellForecast, type HostShape } from './sizing.js';
import type { ExperimentCell } from '../experiments/cells.js';
import type { Capabilities } from '../experiments/types.js';
import { kflexServerLimits } from './deviations.js';
import { NOFILE_MARGIN } from '../experiments/server.js';
import { HEAP_FREE_MARGIN_KB, HEAP_FREE_POLL_MS, heapFreeBoundSeconds } from '../experiments/heaps.js';
import { BENCH_KFUNCS, benchKfunc } from '../experiments/kflex-bench.js';
import { xdpQueuePairs } from '../vm/link/tap.js';

export interface StagePlan {
  id: string;
  deps: readonly string[];
  fingerprint: string;
  cached: boolean;
  minutes: number;
  description: string;
}

/** What `plan` shows: the stage graph with what is cached, estimates, and which cells a host of this shape would run. */
export async function planRun(
  config: ResolvedConfig,
  o: { assumeHost?: string; kvm?: boolean } = {},
): Promise<{
  stages: StagePlan[];
  totalMinutes: number;
  cpus: number;
  host: HostShape;
  server: { memoryMb: number; why: string; bareMetal?: boolean };
  cells: CellForecast[];
  kflex?: KflexPlan;
}> {
  const p = config.profile;
  const planned = await planStages(stageRegistry(config), TESTBED_TARGETS, config, config.cacheRoot);
  const scale = 2 / Math.max(2, cpus().length); // estimates are for a 2-core host
  const est = (id: string) => (p.estimates.minutes[id] ?? 0) * (id === 'image' ? 1 : scale);
  const stages = planned.map((s) => ({
    id: s.stage.id,
    deps: s.stage.deps,
    fingerprint: s.fingerprint,
    cached: s.cached,
    minutes: s.cached ? 0 : est(s.stage.id === 'llvm' && p.toolchain.policy === 'source' ? 'llvm-source' : s.stage.id),
    description: s.stage.description,
  }));
  const totalMinutes = stages.reduce((a, s) => a + s.minutes, 0) + est('vms') + est('experiments');
  const here = thisHost(o.kvm ?? false);
  const host = o.assumeHost ? parseAssumeHost(o.assumeHost, here) : here;
  const cells = planCells(p, {}, EXPERIMENTS);
  const f = forecast(config, cells, host);
  const kflex = kflexPlan(config, cells, f.rows, f.caps);
  return { stages, totalMinutes, cpus: cpus().length, host, server: f.server, cells: f.rows, ...(kflex ? { kflex } : {}) };
}

/** What the paper path sets up around its KFlex cells (issue 23): shown by `plan`, from the code the run uses. */
export interface KflexPlan {
  /** Per KFlex server cell and grid point: the client the cell builds, the connections it opens, the server's open-file limit. */
  servers: Array<{ cell: string; params: string; runs: boolean; client: string[]; counted: string; connections: number; nofile: number }>;
  /** The open files every server gets beyond its client's connections (experiments/server.ts NOFILE_MARGIN). */
  nofileMargin: number;
  /**
   * The wait before each KFlex cell after the first until the last heap's memory is back (experiments/heaps.ts
   * HeapFreeGate): at most boundS with KVM or on bare metal, boundTcgS under TCG.
   */
  heapFree: { heapCells: number; waits: number; boundS: number; boundTcgS: number; marginMiB: number; pollS: number };
  /** Variants that need the bpf_bench_* kfuncs in the server kernel's BTF, and whether this profile's kernel has them. */
  benchKfuncs: Array<{ cell: string; kfuncs: string[]; planned: boolean; readBy: string[] }>;
  /** The link NIC's queue pairs (vm/link/tap.ts xdpQueuePairs): the tap link gives XDP_TX queues of its own, the socket link one pair. */
  link: { backend: string; vcpus: number; tapQueuePairs: number; socketQueuePairs: number; bareMetal: boolean };
}

/**
 * The KFlex side of a plan: each server's open-file limit from the argv its cell builds (Experiment.clientArgv,
 * serverNofile), the heap-free wait between KFlex cells and its bound, the bench kfuncs, the link's queue pairs;
 * undefined for a profile that builds no KFlex (image.kflex false).
 */
export function kflexPlan(config: ResolvedConfig, cells: ExperimentCell[], rows: CellForecast[], caps: Capabilities): KflexPlan | undefined {
  const p = config.profile;
  // A profile that builds no KFlex (smoke, upstream) has no KFlex cell that runs: nothing to show.
  if (!p.image.kflex) return undefined;
  const runs = (c: ExperimentCell) => rows.some((r) => r.experiment === c.experiment.id && r.variant === c.variant.id && r.verdict === 'run');
  const servers = kflexServerLimits(cells, caps).map(({ ofCell, ...l }) => ({ ...l, runs: runs(ofCell) }));
  const heapCells = cells.filter((c) => c.heapGiB && runs(c)).length;
  const bench = new Map<string, KflexPlan['benchKfuncs'][number]>();
  for (const c of cells) {
    const names = new Set(c.variant.requires.flatMap((r) => (r.kind === 'btf' ? [r.name] : [])));
    if (c.variant.logOf || !BENCH_KFUNCS.every((k) => names.has(k))) continue;
    const cell = `${c.experiment.id}/${c.variant.id}`;
    const readBy = cells.filter((o) => o.variant.logOf?.experiment === c.experiment.id && o.variant.logOf.variant === c.variant.id);
    bench.set(cell, {
      cell,
      kfuncs: [...BENCH_KFUNCS],
      planned: BENCH_KFUNCS.every((k) => benchKfunc(k).planned(p)),
      readBy: [...new Set(readBy.map((o) => `${o.experiment.id}/${o.variant.id}`))],
    });
  }
  const vcpus = Math.max(p.vms.server.cpus, p.vms.client.cpus);
  return {
    servers,
    nofileMargin: NOFILE_MARGIN,
    heapFree: {
      heapCells,
      waits: Math.max(0, heapCells - 1),
      boundS: heapFreeBoundSeconds('kvm'),
      boundTcgS: heapFreeBoundSeconds('tcg'),
      marginMiB: HEAP_FREE_MARGIN_KB / 1024,
      pollS: HEAP_FREE_POLL_MS / 1000,
    },
    benchKfuncs: [...bench.values()],
    link: { backend: p.vms.link.backend, vcpus, tapQueuePairs: xdpQueuePairs(vcpus), socketQueuePairs: 1, bareMetal: p.testbed?.kind === 'hosts' },
  };
}

/** One bus for a verb: the progress view, and every event as a JSON line in --events FILE when given (as reproduce does). */
export function verbBus(eventsFile?: string): { bus: EventBus; detach: () => void } {
  const bus = new EventBus();
  const detachers = [attachView(bus), ...(eventsFile ? [recordEvents(bus, eventsFile)] : [])];
  return {
    bus,
    detach: () => {
      for (const d of detachers) d();
    },
  };
}

/** `build`: a stage (or all) and what it depends on, with the progress view (and --events). */
export async function build(config: ResolvedConfig, stage: string, force: string[], eventsFile?: string): Promise<Record<string, StageOutput>> {
  const { bus, detach } = verbBus(eventsFile);
  try {
    return await buildTargets(config, stage === 'all' ? [...stageRegistry(config).keys()] : [stage], bus, force);
  } finally {
    detach();
  }
}

/**
 * `build kernel --configure-only`: the profile's kernel source configured and verified in a scratch
 * directory, nothing compiled and nothing cached; the scratch directory is removed afterwards.
 */
export async function configureKernelOnly(
  config: ResolvedConfig,
): Promise<{ source: string; release: string; options: number; fragments: number; version: string; versionGuarded: Record<string, string[]> }> {
  const bus = new EventBus();
  const detach = attachView(bus);
  // On a fresh host nothing has made the cache yet.
  await mkdir(config.cacheRoot, { recursive: true });
  const dir = await mkdtemp(join(config.cacheRoot, 'kernel-configure-'));
  const logPath = join(dir, 'configure.log');
  try {
    const log = (line: string) => bus.emit({ type: 'step', scope: 'kernel', message: line });
    bus.emit({ type: 'step', scope: 'kernel', message: `configuring only (log ${logPath})` });
    const r = await configureOnly(config, dir, log, { logPath, onLine: (line) => bus.emit({ type: 'line', stage: 'kernel', line }) });
    return { source: r.source, release: r.release, options: r.options, fragments: r.fragments, version: r.version, versionGuarded: r.versionGuarded };
  } finally {
    detach();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `build kernel --deb`: the kernel-deb stage, its packages, and the steps to install and boot them on a host. */
export async function buildKernelDebs(config: ResolvedConfig, force: string[]) {
  const debs = kernelDebOutputs((await build(config, 'kernel-deb', force))['kernel-deb']!);
  const k = config.profile.kernel;
  const described = [k.base, ...k.fragments, ...(Object.keys(k.extra).length ? [`${Object.keys(k.extra).length} extra options`] : [])].join(' + ');
  return { debs, steps: installSteps({ ...debs, kflex: config.profile.image.kflex, config: described }) };
}
