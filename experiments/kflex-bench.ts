import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Experiment, Requirement, VariantDef } from './types.js';
import type { Deviation } from '../core/rundir.js';
import { count, text } from './grid.js';
import { ARENA_VARIANT, arenaProfileDeviations, runArenaCell } from './arena.js';
import { FFKX, KFLEX_KERNEL } from './requirements.js';
import { parseGbenchJson, gbenchMetrics, parseGuardLines, compareGuards, SEED_GUARDS } from './parsers.js';
import { KFLEX_GUEST_DIR } from '../core/guest.js';
import { LabError, ExitCode } from '../core/errors.js';

/**
 * The kfuncs ffkx-bench's bpf_* baselines call: KFlex 567387b bpf/bench_data_structures.bpf.c declares each
 * `__ksym` (not `__weak`: lines 198-248 the linked lists, 302-324 the rbtree, 770-792 the skiplist).
 * KFlex-linux defines them built in, not in a module: kernel/bpf/helpers.c (the code index's version,
 * 620a8f23, whose signatures match those declarations; that it is a6d01774's own was not checked: the tree is
 * over the lab's fetch limit) has them as `__bpf_kfunc` under "// Benchmarking function" and under "// BPF Bench" in
 * generic_btf_ids, which kfunc_init() registers for SCHED_CLS (ffkx-bench's SEC("tc") programs) among others;
 * kernel/bpf/Makefile line 9 builds helpers.o for CONFIG_BPF_SYSCALL. The paper profile's bpf-xdp fragment
 * sets BPF_SYSCALL=y and DEBUG_INFO_BTF=y, which puts them in vmlinux's BTF, where libbpf looks for them.
 *
 * All 62 benchmarks share one skeleton, loaded once per benchmark: libbpf resolves every extern at load and
 * fails the load on a missing non-weak kfunc (KFlex's vendored libbpf/src/libbpf.c:8275,
 * bpf_object__resolve_ksym_func_btf_id: "not found in kernel or module BTFs"), so every benchmark, ffkx_*
 * included, would end "Failed to load skeleton". A kernel without one of them skips the whole run instead.
 */
export const BENCH_KFUNCS = [
  'bpf_bench_linked_list_update',
  'bpf_bench_linked_list_lookup',
  'bpf_bench_linked_list_delete',
  'bpf_bench_graph_linked_list_update',
  'bpf_bench_graph_linked_list_lookup',
  'bpf_bench_graph_linked_list_delete',
  'bpf_bench_rbtree_update',
  'bpf_bench_rbtree_lookup',
  'bpf_bench_rbtree_delete',
  'bpf_bench_skiplist_update',
  'bpf_bench_skiplist_lookup',
  'bpf_bench_skiplist_delete',
] as const;

/** One bpf_bench_* kfunc as a kernel BTF requirement: a KFlex kernel at the pinned commit has it built in. */
export function benchKfunc(name: string): Extract<Requirement, { kind: 'btf' }> {
  return {
    kind: 'btf',
    name,
    missing:
      `guest kernel {release} has no kfunc ${name} in its BTF: ffkx-bench's bpf_* baselines call it, and without it ` +
      'its one skeleton (bench_data_structures.bpf.o, every benchmark ffkx_* included) cannot load. KFlex-linux builds it ' +
      'into vmlinux (kernel/bpf/helpers.c, CONFIG_BPF_SYSCALL; in the BTF with CONFIG_DEBUG_INFO_BTF): use the pinned KFlex-linux',
    planned: KFLEX_KERNEL.planned,
  };
}

/** ffkx-bench's KFlex run: bench_data_structures.bpf.c declares `ffkx_heap(64, 0)`, loaded once per benchmark. */
const BENCH_VARIANT: VariantDef = {
  id: 'kflex',
  description: 'taskset -c 0 ffkx-bench --benchmark_filter=<filter>',
  requires: [KFLEX_KERNEL, ...BENCH_KFUNCS.map(benchKfunc), FFKX],
  heapGiB: 64,
  heap: 'bench',
  // Each of the (31 Zipfian) benchmarks loads the skeleton and frees it again: the next heap can be allocated
  // while the last one is still being freed (RCU, then a workqueue: experiments/heaps.ts).
  heapCopies: 2,
};

/** Experiment 4: ffkx-bench (Google Benchmark), pinned to CPU 0 as the authors' script does. */
export const datastructures: Experiment = {
  id: 'datastructures',
  title: 'Data structures: bpf_* vs ffkx_* (ffkx-bench), and bpf_* vs arena_* on upstream BPF arenas (kflex-arena-bench)',
  claims: ['datastructures-ops', 'arena-datastructures-ops'],
  headline: 'ns_per_op',
  chart: 'pairs',
  grid: {
    filter: text('benchmark name regex: ffkx-bench --benchmark_filter, kflex-arena-bench --filter'),
    items: count('keys per distribution and operations per benchmark (kflex-arena-bench --items; ffkx-bench: 100000)'),
    list_items: count('the same for the linked lists (kflex-arena-bench --list-items)'),
  },
  deviations: (profile) => [
    ...arenaProfileDeviations(profile),
    {
      topic: 'Google Benchmark output flag',
      artifact: 'README: --benchmark_output',
      lab: '--benchmark_out=FILE --benchmark_out_format=json',
      why: '--benchmark_output is not a Google Benchmark flag',
      affects: 'datastructures',
    },
    benchmarkSelection((profile.experiments.datastructures?.grid?.filter ?? ['Zipfian']).map(String)),
  ],
  parsers: { gbench: parseGbenchJson },
  variants: [BENCH_VARIANT, ARENA_VARIANT],
  // Each benchmark reloads its skeleton with a 64 GiB heap: minutes, not seconds.
  // ffkx-bench reloads its skeleton with a 64 GiB heap per benchmark: minutes each; the arena runner's scaled run is short.
  estimateCellSeconds: (_s, accel, variant) => (variant?.id === 'arena' ? (accel === 'tcg' ? 1800 : 300) : accel === 'tcg' ? 3600 : 900),
  async runCell(ctx, variant) {
    if (variant.id === 'arena') return runArenaCell(ctx);
    const filter = String(ctx.params.filter ?? 'Zipfian');
    // No server: ffkx-bench loads its skeleton (and fills its heap) inside the measured run.
    ctx.phase('measurement');
    await ctx.exec(
      ctx.server,
      'bench',
      [
        'taskset',
        '-c',
        '0',
        `${KFLEX_GUEST_DIR}/ffkx-bench`,
        `--benchmark_filter=${filter}`,
        '--benchmark_out=/tmp/ffkx-bench.json',
        '--benchmark_out_format=json',
      ],
      { timeoutMs: 4 * 3600_000 },
    );
    ctx.phase('collection');
    const json = (await ctx.exec(ctx.server, 'json', ['cat', '/tmp/ffkx-bench.json'])).stdout;
    const results = parseGbenchJson(json);
    const { metrics, errors } = gbenchMetrics(results);
    for (const e of errors) ctx.log(`ffkx-bench: ${e}`);
    // A benchmark that errored (e.g. its skeleton did not load) has real_time 0: it must not become a number.
    if (!results.some((r) => r.ns_per_op !== undefined))
      throw new LabError(
        `ffkx-bench measured nothing for --benchmark_filter=${filter}: ` +
          `${results.length ? `every benchmark failed, e.g. ${errors.slice(0, 3).join(' / ')}` : 'no benchmark matched the filter'}`,
        ExitCode.checkFailed,
      );
    return { metrics, files: { 'gbench.json': json, ...(errors.length ? { 'errors.txt': `${errors.join('\n')}\n` } : {}) } };
  },
};

/**
 * Which benchmarks run: the README runs ./ffkx-bench whole (62 benchmarks, Uniform and Zipfian), the authors'
 * bench.sh (KFlex 567387b) runs `taskset -c 0 ./ffkx-bench --benchmark_filter=Zipfian --benchmark_format=csv`.
 * The lab runs the profile's filter (bench.sh's by default), pinned to CPU 0 as bench.sh does.
 */
export function benchmarkSelection(filters: string[]): Deviation {
  return {
    topic: 'benchmark selection',
    artifact: "README: ./ffkx-bench (all 62 benchmarks); the authors' bench.sh: taskset -c 0 ./ffkx-bench --benchmark_filter=Zipfian --benchmark_format=csv",
    lab: `taskset -c 0 ffkx-bench ${filters.map((f) => `--benchmark_filter=${f}`).join(' or ')} (JSON output)`,
    why:
      filters.length === 1 && filters[0] === 'Zipfian'
        ? "bench.sh's selection (31 Zipfian benchmarks): the README's Uniform half is not measured, and the guard log holds 31 skeleton loads"
        : "the profile's filter: neither the README's whole run nor bench.sh's Zipfian selection",
    affects: 'datastructures, guards',
  };
}

/**
 * What the guard counts depend on (KFlex-linux a6d0177, kernel/bpf/verifier.c, adjust_ptr_min_max_vals()):
 * every BPF_ADD/BPF_SUB on a heap pointer counts one range_analysis_call per verifier visit; a constant
 * offset keeps the pointer trusted while the accumulated heap_off stays in [S16_MIN, S16_MAX - 8) (the
 * +-32 KiB guard window) and counts one elided (the counter also moves when the window is left: it counts
 * constant offsets that do not overflow s32); a variable offset marks it MEM_HEAP_UNTRUSTED, guarded at the
 * next access. Nothing there reads the heap map's size, and ffkx_heap(N) (bpf/include/ffkx_heap.bpf.h) sets
 * only the map's max_entries: a scaled heap compares exactly. The counts follow the bytecode, so the compiler
 * matters: the artifact asks for "latest LLVM (> 18.0)" built from llvm-project, unpinned.
 */
export const GUARD_COUNTS_COMPILER: Deviation = {
  topic: 'guard counts and the compiler',
  artifact: "the seed's table: bytecode from the authors' clang, built from llvm-project ('latest LLVM (> 18.0)', no version recorded)",
  lab: "the skeleton compiled by Debian trixie's clang-19 in the kflex stage (images/kflex.ts: CLANG=clang-19 ./build.sh)",
  why:
    "range_analysis_call/elided count the verifier's visits of heap-pointer arithmetic (constant offsets within +-32 KiB elided, " +
    "variable ones guarded): they follow the bytecode and the verifier's path exploration, not the heap's size; another clang " +
    'can change them without KFlex changing',
  affects: 'guards',
};

/**
 * Experiment 5: the verifier's guard-elision messages from the kernel log captured around experiment 4's
 * cells in the same run. Each benchmark loads the whole skeleton, so the log holds one block of the 15
 * programs per benchmark: every block must equal the seed's table.
 *
 * Its only input is that log, so it has exactly the requirements of experiment 4's KFlex run (its
 * requirement list and heap size, read from that variant): wherever that run is skipped for a requirement,
 * this one is skipped with the same reason.
 */
export const guards: Experiment = {
  id: 'guards',
  title: 'Guard elision (verifier range analysis)',
  claims: ['guard-elision'],
  headline: 'measured_elided',
  chart: 'table',
  grid: {},
  deviations: () => [GUARD_COUNTS_COMPILER],
  parsers: { guards: (t) => compareGuards(parseGuardLines(t), SEED_GUARDS) },
  variants: [
    {
      id: 'kflex',
      description: "the KFlex verifier's prog=... range_analysis_call=N elided=M messages of the datastructures run (same requirements)",
      requires: BENCH_VARIANT.requires,
      // Read through, so a heap size set on the datastructures variant (e.g. a scaled heap) applies here too.
      get heapGiB() {
        return BENCH_VARIANT.heapGiB;
      },
      heap: 'bench',
      logOf: { experiment: 'datastructures', variant: 'kflex' },
    },
  ],
  estimateCellSeconds: () => 1,
  async runCell(ctx) {
    ctx.phase('collection');
    const logs = await kernelLogsOf(join(ctx.runDir, 'runs', 'datastructures'));
    if (!logs.length)
      throw new LabError('no kernel log from experiment 4 (datastructures) in this run: run it first (--only datastructures guards)', ExitCode.checkFailed);
    const c = compareGuards(parseGuardLines(logs.join('\n')), SEED_GUARDS);
    const metrics: Record<string, number> = {
      exact: c.exact ? 1 : 0,
      blocks: c.blocks,
      blocks_agreeing: c.blocks_agreeing,
      // Loads split at libbpf's load-probe lines (experiments/guard-log.ts): those not complete, and the log's cut-off ends.
      loads_found: c.loads_found,
      loads_rejected: c.loads_rejected,
      loads_stopped: c.loads_stopped,
      cut_head: c.cut_off.some((x) => x.startsWith('the head')) ? 1 : 0,
      cut_tail: c.cut_off.some((x) => x.startsWith('the tail')) ? 1 : 0,
      measured_total: c.measured_total,
      measured_elided: c.measured_elided,
      expected_total: c.expected_total,
      expected_elided: c.expected_elided,
    };
    // The claim's verdict names the programs that differ: one metric per differing row of the table.
    for (const d of c.differing) metrics[guardDiffersMetric(d.label, d.prog)] = d.blocks;
    ctx.log(`guards: ${c.summary}`);
    for (const d of c.deviations) ctx.log(`guards: ${d}`);
    return { metrics, files: { 'comparison.json': JSON.stringify(c, null, 2) } };
  },
};

/** `differs.RBTree Delete (bench_ffkx_rbtr)`: in how many skeleton loads that row differs from the seed. */
export function guardDiffersMetric(label: string, prog: string): string {
  return `differs.${label} (${prog})`;
}

async function kernelLogsOf(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === 'kernel.log') files.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  }
  // Cell order (params, rep) for a stable comparison.json.
  return Promise.all(files.sort().map((f) => readFile(f, 'utf8')));
}
