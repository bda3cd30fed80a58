/**
 * The arena data-structure benchmark (issue 19) in the server guest: pure builders and parsers for the
 * `datastructures/arena` variant. Nothing here runs anything; the cell does.
 *
 * kflex-arena-bench (bpf/arena/runner.c, installed by the arena stage at ARENA_RUNNER) runs every
 * benchmark on a freshly loaded structure, times each batch of operations inside the program with
 * bpf_ktime_get_ns (SEC("syscall") programs cannot use BPF_PROG_TEST_RUN's repeat/duration), reads the
 * structure back after each benchmark and writes Google Benchmark JSON named like ffkx-bench
 * (`Zipfian/arena_rbtree_update` beside `Zipfian/bpf_rbtree_update`), so parseGbenchJson, gbenchMetrics and
 * pairBenchmarks(values, 'arena_', 'bpf_') read it unchanged. A structure that fails its check prints a
 * `CHECK FAILED:` line (parseArenaChecks), gets `error_occurred` in the JSON and makes the runner exit 1.
 */
import { ARENA_GUEST_DIR } from '../core/guest.js';
import type { Deviation } from '../core/rundir.js';
import type { GbenchResult } from './parsers.js';

export const ARENA_RUNNER_PATH = `${ARENA_GUEST_DIR}/kflex-arena-bench`;

/**
 * KFlex's workload (rs3lab/KFlex 567387b, bench/BenchDataStructures.cpp and bench/BenchRandomUtil.hpp):
 * kBenchmarkSize = 100'000 items and kBenchmarkIterations = kBenchmarkSize operations (lines 50-51);
 * key 32 and value 64 bytes, the only sizes registered (line 561, `_FFKX_BENCHMARK_DS(..., 32, 64, ...)`),
 * each buffer the key id repeated (CreateKeyValueBuffer, lines 84-97); Uniform on [0, size]
 * (BenchRandomUtil.hpp:15-23) and Zipf(size, q = 1.00001, v = 0.99999) (BenchRandomUtil.hpp:25-32);
 * a lookup or delete benchmark first fills the structure with the update program over the same keys
 * (PopulateDataStructure, lines 207-243). The runner's defaults are these.
 */
export const ARENA_ARTIFACT = {
  items: 100_000,
  iterations: 100_000,
  keySize: 32,
  valueSize: 64,
  zipfQ: 1.00001,
  zipfV: 0.99999,
  source: 'rs3lab/KFlex@567387b bench/BenchDataStructures.cpp:50-51,84-97,207-243,561; bench/BenchRandomUtil.hpp:15-32',
} as const;

/** The structures, as their names appear in the benchmark names (Dist/<structure>_<op>). */
export const ARENA_STRUCTURES = [
  'bpf_hashmap',
  'arena_hashmap',
  'bpf_rbtree',
  'arena_rbtree',
  'bpf_linked_list',
  'arena_linked_list',
  'arena_skiplist',
] as const;
export type ArenaStructure = (typeof ARENA_STRUCTURES)[number];
/** arena_X beside bpf_X; the skip list has no kernel-managed counterpart upstream (KFlex's bpf_skiplist calls its fork's kfuncs). */
export const ARENA_PAIRS = ['hashmap', 'rbtree', 'linked_list'] as const;
export const ARENA_OPS = ['update', 'lookup', 'delete'] as const;
export const ARENA_DISTS = ['Uniform', 'Zipfian'] as const;
export type ArenaDist = (typeof ARENA_DISTS)[number];
/** The structures whose operations walk the list: sized by --list-items. */
export const ARENA_LIST_STRUCTURES: readonly ArenaStructure[] = ['bpf_linked_list', 'arena_linked_list'];

export interface ArenaBenchOptions {
  /** Where the JSON goes (in the guest). */
  out: string;
  /** Keys per distribution and operations per benchmark (ffkx-bench: 100000). */
  items: number;
  /** The same for the linked lists, whose lookup and delete walk the list (default: items). */
  listItems?: number;
  repetitions: number;
  /** Operations per BPF_PROG_TEST_RUN call (the runner's default 1024). */
  batch?: number;
  seed?: number;
  /** Distributions to run (default both). */
  dists?: readonly ArenaDist[];
  /** POSIX ERE over `Dist/structure_op`; overrides dists. */
  filter?: string;
  /** Pin the runner to this CPU (ffkx-bench's bench.sh: taskset -c 0). */
  cpu?: number;
  /** TEST ONLY: make this structure's update drop keys, so its check must fail. */
  breakStructure?: ArenaStructure;
  runner?: string;
}

/** The runner's --filter for a set of distributions: `^(Uniform|Zipfian)/`. */
export function arenaDistFilter(dists: readonly ArenaDist[]): string {
  return `^(${[...dists].join('|')})/`;
}

/** argv of one kflex-arena-bench run. */
export function arenaBenchArgv(o: ArenaBenchOptions): string[] {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`arena bench: ${name} must be an integer >= ${min}, got ${v}`);
    return String(v);
  };
  const argv = [o.runner ?? ARENA_RUNNER_PATH, '--out', o.out, '--items', int('items', o.items, 1), '--repetitions', int('repetitions', o.repetitions, 1)];
  if (o.listItems !== undefined) argv.push('--list-items', int('listItems', o.listItems, 1));
  if (o.batch !== undefined) argv.push('--batch', int('batch', o.batch, 1));
  if (o.seed !== undefined) argv.push('--seed', int('seed', o.seed, 0));
  if (o.filter !== undefined) argv.push('--filter', o.filter);
  else if (o.dists && o.dists.length < ARENA_DISTS.length) argv.push('--filter', arenaDistFilter(o.dists));
  if (o.cpu !== undefined) argv.push('--cpu', int('cpu', o.cpu, 0));
  if (o.breakStructure !== undefined) argv.push('--break', o.breakStructure);
  return argv;
}

/** Every benchmark the runner registers, in its order, as `Dist/structure_op` (and `Dist/empty_floor`). */
export function arenaBenchmarkNames(dists: readonly ArenaDist[] = ARENA_DISTS): string[] {
  return dists.flatMap((d) => [`${d}/empty_floor`, ...ARENA_STRUCTURES.flatMap((s) => ARENA_OPS.map((op) => `${d}/${s}_${op}`))]);
}

export interface ArenaCheckFailure {
  /** The run's full name (`Zipfian/arena_rbtree_update/key:32/.../manual_time`). */
  benchmark: string;
  /** 1-based, as printed. */
  repetition: number;
  reason: string;
}

export interface ArenaChecks {
  failures: ArenaCheckFailure[];
  /** The runner's closing count of failed runs (undefined when it printed none: every run passed, or it died). */
  failedRuns?: number;
}

/** The runner's correctness verdicts from its stderr: one `CHECK FAILED: <name> (repetition N): <why>` per failed run. */
export function parseArenaChecks(stderr: string): ArenaChecks {
  const failures: ArenaCheckFailure[] = [];
  for (const line of stderr.split('\n')) {
    const m = line.match(/^CHECK FAILED: (\S+) \(repetition (\d+)\): (.*)$/);
    if (m) failures.push({ benchmark: m[1]!, repetition: Number(m[2]), reason: m[3]!.trim() });
  }
  const closing = stderr.match(/^(\d+) benchmark run\(s\) failed their check or did not run/m);
  return { failures, ...(closing ? { failedRuns: Number(closing[1]) } : {}) };
}

export interface ArenaPairSummary {
  dist: string;
  /** `hashmap_update` etc. */
  benchmark: string;
  /** ns/op of each good repetition, in repetition order. */
  arena: number[];
  bpf: number[];
  /** arena/bpf of repetition i against repetition i: median, min, max (undefined when a side has none). */
  ratio?: { median: number; min: number; max: number; n: number };
  /** The empty floor's median ns/op for the same distribution (the harness's own cost per operation). */
  floor?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * For each arena_X/bpf_X pair and operation: every repetition's ns/op, the per-repetition ratios' median and
 * range, and the empty floor beside it, from parseGbenchJson's results (errored runs carry no time).
 */
export function arenaPairSummary(results: readonly GbenchResult[]): ArenaPairSummary[] {
  const times = (family: string) => results.filter((r) => r.family === family && r.ns_per_op !== undefined).map((r) => r.ns_per_op!);
  const out: ArenaPairSummary[] = [];
  for (const dist of ARENA_DISTS) {
    const floors = times(`${dist}/empty_floor`);
    for (const s of ARENA_PAIRS)
      for (const op of ARENA_OPS) {
        const arena = times(`${dist}/arena_${s}_${op}`);
        const bpf = times(`${dist}/bpf_${s}_${op}`);
        if (!arena.length && !bpf.length) continue;
        const n = Math.min(arena.length, bpf.length);
        const rs = Array.from({ length: n }, (_, i) => arena[i]! / bpf[i]!);
        out.push({
          dist,
          benchmark: `${s}_${op}`,
          arena,
          bpf,
          ...(n ? { ratio: { median: median(rs), min: Math.min(...rs), max: Math.max(...rs), n } } : {}),
          ...(floors.length ? { floor: median(floors) } : {}),
        });
      }
  }
  return out;
}

/** What every arena run does differently from ffkx-bench, whatever its size. */
export const ARENA_STANDING_DEVIATIONS: readonly Deviation[] = [
  {
    topic: 'arena benchmark: the structures',
    artifact: "ffkx_* structures on KFlex's heap against bpf_* baselines that call kfuncs of the KFlex-linux fork",
    lab:
      "upstream BPF arenas (libarena's buddy allocator and rbtree, bpf_arena_htab.h buckets, bpf_arena_list.h, a skip list of the lab's) " +
      'against BPF_MAP_TYPE_HASH and the upstream bpf_rbtree_*/bpf_list_* graph API; no bpf_skiplist (upstream has none)',
    why: "KFlex's heaps and guards exist only in its fork; arenas are their upstream successor (KFlex's archived README)",
    affects: 'datastructures/arena',
  },
  {
    topic: 'arena benchmark: timing',
    artifact: 'bpf_ktime_get_ns around each single operation in a tc program, one BPF_PROG_TEST_RUN per operation (manual time)',
    lab: 'bpf_ktime_get_ns around each batch of operations in a SEC("syscall") program (up to 1024 per call); ns/op = batch time / operations',
    why: 'the kernel refuses repeat/duration for syscall programs, and arena allocation needs a sleepable program; the empty floor times the same loop',
    affects: 'datastructures/arena',
  },
  {
    topic: 'arena benchmark: keys',
    artifact: 'absl::BitGen seeded by the OS on every run',
    lab: 'the same distributions from a seeded splitmix64 (--seed), the Zipf CDF inverted exactly',
    why: 'reproducible runs: the checks compare the structure with the keys',
    affects: 'datastructures/arena',
  },
];

/** What the run does differently from ffkx-bench's workload: each item a recorded deviation. */
export function arenaDeviations(o: { items: number; listItems?: number; why?: string }): Deviation[] {
  const out: Deviation[] = [];
  const a = ARENA_ARTIFACT;
  if (o.items !== a.items)
    out.push({
      topic: 'arena benchmark scaled down',
      artifact: `${a.items} items and ${a.iterations} operations per benchmark (${a.source})`,
      lab: `${o.items} items and ${o.items} operations; same key/value sizes, distributions and Zipf parameters`,
      why: o.why ?? 'the full size takes too long in this testbed',
      affects: 'datastructures/arena',
    });
  if (o.listItems !== undefined && o.listItems !== o.items)
    out.push({
      topic: 'arena benchmark lists scaled down',
      artifact: `${a.items} items in each linked list (every lookup and delete walks it: O(n) per operation)`,
      lab: `${o.listItems} items and operations for bpf_linked_list and arena_linked_list`,
      why: 'n^2 list steps per benchmark; a bpf_list walk pops and pushes every node it passes',
      affects: 'datastructures/arena (linked_list pairs)',
    });
  return out;
}
