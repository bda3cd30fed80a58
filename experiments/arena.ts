import type { CellContext, CellOutcome, Requirement, VariantDef } from './types.js';
import type { Profile } from '../core/config.js';
import type { Deviation } from '../core/rundir.js';
import { LabError, ExitCode } from '../core/errors.js';
import { gbenchMetrics, parseGbenchJson } from './parsers.js';
import {
  ARENA_ARTIFACT,
  ARENA_RUNNER_PATH,
  ARENA_STANDING_DEVIATIONS,
  arenaBenchArgv,
  arenaDeviations,
  arenaPairSummary,
  parseArenaChecks,
} from './arena-support.js';

/** The arena map type and its kfuncs are in the kernel's BTF (upstream since 6.9; Debian's 7.3 has them). */
export const ARENA_KERNEL: Extract<Requirement, { kind: 'btf' }> = {
  kind: 'btf',
  name: 'bpf_arena_alloc_pages',
  missing: 'guest kernel {release} has no BPF arenas: bpf_arena_alloc_pages is not in its BTF (use the smoke or upstream profile)',
  planned: (p) =>
    p.sources[p.kernel.source]?.kind === 'debian-package' &&
    /linux-source-(7|6\.(9|1[0-9]))/.test(String((p.sources[p.kernel.source] as { package?: string }).package)),
};

/** kflex-arena-bench, built by the arena stage into the image (image.arena). */
export const ARENA_BENCH: Extract<Requirement, { kind: 'program' }> = {
  kind: 'program',
  role: 'server',
  path: ARENA_RUNNER_PATH,
  notPackaged: "built by the lab's arena stage (bpf/arena) against the kernel tree: `kflex-lab hosts prepare` does not install it",
  missing: `${ARENA_RUNNER_PATH} is not in the image (image.arena is false in this profile)`,
  planned: (p) => !!p.image.arena,
};

/** The datastructures experiment's upstream variant: the lab's arena benchmark (issue 19). */
export const ARENA_VARIANT: VariantDef = {
  id: 'arena',
  description: 'taskset -c 0 kflex-arena-bench: arena_* (libarena, bpf_arena_htab.h, bpf_arena_list.h) against bpf_* (hash map, bpf_rbtree_*, bpf_list_*)',
  requires: [ARENA_KERNEL, ARENA_BENCH],
};

/** The benchmark's size in a profile: items (and list items) from the grid, else ffkx-bench's. */
function sizeOf(params: Record<string, unknown>): { items: number; listItems?: number } {
  const items = Number(params.items ?? ARENA_ARTIFACT.items);
  return { items, ...(params.list_items !== undefined ? { listItems: Number(params.list_items) } : {}) };
}

/** What every arena run of this profile does differently from ffkx-bench's workload. */
export function arenaProfileDeviations(profile: Profile): Deviation[] {
  const s = profile.experiments.datastructures;
  if (!s?.variants.includes('arena')) return [];
  const sizes = (s.grid.items ?? [ARENA_ARTIFACT.items]).map(Number);
  const lists = s.grid.list_items?.map(Number);
  return [
    ...ARENA_STANDING_DEVIATIONS,
    ...arenaDeviations({
      items: Math.min(...sizes),
      listItems: lists ? Math.min(...lists) : undefined,
      why: 'the profile scales it (datastructures.grid.items)',
    }),
  ];
}

const CLOCKSOURCE = '/sys/devices/system/clocksource/clocksource0/current_clocksource';

/**
 * One arena cell: the runner on CPU 0 (as bench.sh pins ffkx-bench), its Google Benchmark JSON read by the
 * same parser as ffkx-bench's, and its correctness checks: a structure that does not hold what the
 * operations left in it fails the cell with the runner's CHECK FAILED lines, and never reports a time.
 */
export async function runArenaCell(ctx: CellContext): Promise<CellOutcome> {
  const size = sizeOf(ctx.params);
  const filter = ctx.params.filter === undefined ? undefined : String(ctx.params.filter);
  const out = '/tmp/kflex-arena-bench.json';
  // A guest on jiffies (4 ms ticks) times each batch as 0 or a whole tick: no ns/op is measured on that clock.
  const clock = (await ctx.exec(ctx.server, 'clocksource', ['cat', CLOCKSOURCE], { allowFailure: true })).stdout.trim();
  if (/jiffies/.test(clock))
    throw new LabError(
      `the server's clocksource is ${clock} (4 ms ticks): kflex-arena-bench cannot time its batches on it. ` +
        "Under TCG the lab boots guests with the host's TSC frequency (tsc_early_khz, vm/clock.ts); see the serial log's tsc: lines for why it was refused",
      ExitCode.checkFailed,
    );
  ctx.phase('measurement');
  const r = await ctx.exec(ctx.server, 'bench', ['taskset', '-c', '0', ...arenaBenchArgv({ out, ...size, repetitions: 1, filter })], {
    timeoutMs: ctx.boundMs,
    allowFailure: true,
  });
  ctx.phase('collection');
  const checks = parseArenaChecks(r.stderr);
  if (checks.failures.length || r.code !== 0)
    throw new LabError(
      `kflex-arena-bench: ${checks.failures.length ? `${checks.failures.length} structure check(s) failed` : `exited ${r.code}`}: ` +
        (checks.failures.length ? checks.failures.map((f) => `${f.benchmark}: ${f.reason}`) : r.stderr.trim().split('\n').slice(-5)).slice(0, 5).join(' / '),
      ExitCode.checkFailed,
    );
  const json = (await ctx.exec(ctx.server, 'json', ['cat', out])).stdout;
  const results = parseGbenchJson(json);
  const errors = results.filter((b) => b.error);
  if (errors.length)
    throw new LabError(
      `kflex-arena-bench: ${errors.length} benchmark(s) have no time: ${errors
        .slice(0, 3)
        .map((b) => `${b.name}: ${b.error}`)
        .join(' / ')}`,
      ExitCode.checkFailed,
    );
  const { metrics } = gbenchMetrics(results);
  const pairs = arenaPairSummary(results);
  if (!pairs.some((p) => p.ratio))
    throw new LabError(`kflex-arena-bench measured no arena_/bpf_ pair${filter ? ` for --filter ${filter}` : ''}`, ExitCode.checkFailed);
  return { metrics, files: { 'gbench.json': json, 'pairs.json': `${JSON.stringify(pairs, null, 2)}\n` } };
}
