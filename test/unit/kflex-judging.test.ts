import { testCaps } from './support/caps.js';
import { describe, it, expect } from 'vitest';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { datastructures, guards, guardDiffersMetric } from '../../experiments/kflex-bench.js';
import { parseGbenchJson, gbenchMetrics } from '../../experiments/parsers.js';
import { summarize } from '../../experiments/summary.js';
import { unmetRequirement } from '../../experiments/requirements.js';
import type { CellRecord } from '../../experiments/cells.js';
import { compilerCaveat, judgeClaims, loadClaims, pairBenchmarks } from '../../report/claims.js';
import type { CellContext } from '../../experiments/types.js';
import type { Metrics } from '../../experiments/parsers.js';
import { FIXTURES, tempDir } from '../helpers.js';

const fx = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

/** The verdict's note that the lab's clang-19 is not known to be the seed's compiler (report/claims.ts compilerCaveat). */
const CLANG = `; ${compilerCaveat({ run: 'clang-19' })}`;

const rec = (experiment: string, metrics: Metrics): CellRecord => ({
  experiment,
  variant: 'kflex',
  params: {},
  rep: 1,
  status: 'ok',
  metrics,
  started: '',
  seconds: 1,
});
const verdictOf = (id: string, records: CellRecord[]) => judgeClaims(loadClaims(), summarize(records), records).find((v) => v.claim.id === id)!;
/** The same metrics as n repetitions (cells rep 1..n). */
const reps = (n: number, r: CellRecord): CellRecord[] => Array.from({ length: n }, (_, i) => ({ ...r, rep: i + 1 }));

/** A cell context that answers ffkx-bench's two commands from a fixture, and records what it logs. */
function benchCtx(json: string, runDir = tempDir()): CellContext & { logged: string[] } {
  const logged: string[] = [];
  return {
    params: { filter: 'Zipfian' },
    runDir,
    server: { name: 'server' },
    log: (l: string) => logged.push(l),
    logged,
    exec: async (_h: unknown, name: string) => ({ code: 0, stdout: name === 'json' ? json : '', stderr: '' }),
    phase: () => undefined,
  } as unknown as CellContext & { logged: string[] };
}

describe('data structures: ffkx_X_op against bpf_X_op', () => {
  // The synthetic ns/op of ffkx-bench/zipfian.json (see ffkx-bench/standin.cpp): ffkx / bpf for each pair.
  const RATIOS: Record<string, number> = {
    'Zipfian/rbtree_update': 320 / 400,
    'Zipfian/rbtree_lookup': 180 / 200,
    'Zipfian/rbtree_delete': 330 / 300,
    'Zipfian/hashmap_update': 90 / 100,
    'Zipfian/hashmap_lookup': 55 / 50,
    'Zipfian/hashmap_delete': 60 / 80,
    'Zipfian/linked_list_update': 110 / 120,
    'Zipfian/linked_list_lookup': 99000 / 90000,
    'Zipfian/linked_list_delete': 64000 / 80000,
    'Zipfian/skiplist_update': 400 / 500,
    'Zipfian/skiplist_lookup': 275 / 250,
    'Zipfian/skiplist_delete': 360 / 450,
    'Zipfian/countsketch': 48 / 60,
    'Zipfian/countminsketch': 50 / 50,
  };
  const geo = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

  it('pairs the 14 ffkx_/bpf_ benchmarks of a Zipfian run by name and judges every pair', async () => {
    const out = await datastructures.runCell(benchCtx(fx('ffkx-bench/zipfian.json')), datastructures.variants[0]!);
    // Three repetitions of the synthetic (noise-free) run: every interval is the ratio itself.
    const v = verdictOf('datastructures-ops', reps(3, rec('datastructures', out.metrics)));
    expect(Object.fromEntries(v.pairs!.map((p) => [p.benchmark, p.ratio]))).toEqual(
      Object.fromEntries(Object.entries(RATIOS).map(([k, r]) => [k, expect.closeTo(r, 9)])),
    );
    expect(v.pairs!.find((p) => p.benchmark === 'Zipfian/rbtree_update')).toMatchObject({
      numerator: 'Zipfian/ffkx_rbtree_update',
      denominator: 'Zipfian/bpf_rbtree_update',
    });
    // Every pair is at most 1.1 (<= 1.25): reproduced, and the worst pair is one of the four at 1.1.
    expect(v.verdict).toBe('reproduced');
    expect(v.pairs!.every((p) => p.verdict === 'reproduced' && p.interval!.lo === p.interval!.hi)).toBe(true);
    expect(v.measured).toBeCloseTo(Math.max(...Object.values(RATIOS)), 9);
    expect(['Zipfian/rbtree_delete', 'Zipfian/hashmap_lookup', 'Zipfian/linked_list_lookup', 'Zipfian/skiplist_lookup']).toContain(v.worst);
    expect(v.reason).toContain(`geometric mean ${Number(geo(Object.values(RATIOS)).toPrecision(3))}`);
    // The eBPF-only graph list has no ffkx_ twin: shown, never paired with ffkx_linked_list.
    expect(v.reason).toMatch(
      /not paired: Zipfian\/bpf_graph_linked_list_update, Zipfian\/bpf_graph_linked_list_lookup, Zipfian\/bpf_graph_linked_list_delete$/,
    );
  });

  it('the direction decides: ffkx_ slower than bpf_ on every pair deviates, the worst pair named', () => {
    const m = {
      'Zipfian/ffkx_a_update.ns_per_op': 300,
      'Zipfian/bpf_a_update.ns_per_op': 100,
      'Uniform/ffkx_a_update.ns_per_op': 200,
      'Uniform/bpf_a_update.ns_per_op': 100,
    };
    const v = verdictOf('datastructures-ops', reps(2, rec('datastructures', m)));
    expect([v.verdict, v.measured, v.worst]).toEqual(['deviates', 3, 'Zipfian/a_update']);
    // One repetition: ratios without an interval are inconclusive, however far off.
    expect(verdictOf('datastructures-ops', [rec('datastructures', m)]).verdict).toBe('inconclusive');
  });

  it('a benchmark that errored on one side leaves its pair out instead of reading 0 ns', async () => {
    const ctx = benchCtx(fx('ffkx-bench/zipfian-skiplist-error.json'));
    const out = await datastructures.runCell(ctx, datastructures.variants[0]!);
    expect(ctx.logged).toEqual(['ffkx-bench: Zipfian/ffkx_skiplist_update: Failed to load skeleton: INTERNAL: bpf_object__load failed: -12']);
    expect(out.files!['errors.txt']).toContain('Zipfian/ffkx_skiplist_update');
    const v = verdictOf('datastructures-ops', [rec('datastructures', out.metrics)]);
    expect(v.pairs!.map((p) => p.benchmark)).toEqual(['Zipfian/skiplist_lookup', 'Zipfian/skiplist_delete']);
    expect(v.reason).toMatch(/not paired: Zipfian\/bpf_skiplist_update$/);
  });

  it('a run in which every benchmark failed is a failed cell, with the first errors', async () => {
    const allBad = JSON.stringify({
      benchmarks: parseGbenchJson(fx('ffkx-bench/zipfian-skiplist-error.json'))
        .slice(3, 4)
        .map((r) => ({ name: r.name, run_type: 'iteration', error_occurred: true, error_message: r.error, iterations: 0, real_time: 0, time_unit: 'ns' })),
    });
    await expect(datastructures.runCell(benchCtx(allBad), datastructures.variants[0]!)).rejects.toThrow(
      /measured nothing for --benchmark_filter=Zipfian: every benchmark failed, e\.g\. Zipfian\/ffkx_skiplist_update: Failed to load skeleton/,
    );
  });

  it('pairing replaces the prefix only in the segment that carries it', () => {
    const { pairs, unpaired } = pairBenchmarks(
      new Map([
        ['Zipfian/ffkx_hashmap_update', 2],
        ['Zipfian/bpf_hashmap_update', 4],
        ['Zipfian/ffkx_x_bpf_update', 1],
        ['Uniform/bpf_hashmap_update', 4],
      ]),
      'ffkx_',
      'bpf_',
    );
    expect(pairs.map((p) => [p.benchmark, p.ratio])).toEqual([['Zipfian/hashmap_update', 0.5]]);
    expect(unpaired).toEqual(['Zipfian/ffkx_x_bpf_update', 'Uniform/bpf_hashmap_update']);
    expect(gbenchMetrics([]).metrics).toEqual({});
  });
});

describe('guard elision: judged per skeleton load', () => {
  const writeLogs = (runDir: string, logs: string[]) =>
    logs.forEach((log, i) => {
      const d = join(runDir, 'runs', 'datastructures', 'kflex', 'filter=Zipfian', `rep-${i + 1}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'kernel.log'), log);
    });

  it('31 agreeing loads reproduce the claim, reading 78 (one load), not 31 x 78', async () => {
    const runDir = tempDir();
    writeLogs(runDir, [fx('guards/zipfian-31-blocks-dmesg.txt')]);
    const out = await guards.runCell(benchCtx('', runDir), guards.variants[0]!);
    expect(out.metrics).toEqual({
      exact: 1,
      blocks: 31,
      blocks_agreeing: 31,
      loads_found: 31,
      loads_rejected: 0,
      loads_stopped: 0,
      cut_head: 0,
      cut_tail: 0,
      measured_total: 99,
      measured_elided: 78,
      expected_total: 99,
      expected_elided: 78,
    });
    const v = verdictOf('guard-elision', [rec('guards', out.metrics)]);
    expect([v.verdict, v.measured, v.reason]).toEqual(['reproduced', 78, `31 of 31 skeleton loads match the seed's table${CLANG}`]);
  });

  it('one differing load deviates and the verdict names the program', async () => {
    const runDir = tempDir();
    writeLogs(runDir, [fx('guards/zipfian-block7-differs-dmesg.txt')]);
    const ctx = benchCtx('', runDir);
    const out = await guards.runCell(ctx, guards.variants[0]!);
    expect(out.metrics).toMatchObject({ exact: 0, blocks: 31, blocks_agreeing: 30, [guardDiffersMetric('RBTree Delete', 'bench_ffkx_rbtr')]: 1 });
    expect(ctx.logged).toEqual([
      "guards: 31 loads in the log: 31 complete, 30 of them equal to the seed's table",
      'guards: load 7 of 31: RBTree Delete (bench_ffkx_rbtr) range_analysis_call=29 elided=24, seed 29/25',
    ]);
    const v = verdictOf('guard-elision', [rec('guards', out.metrics)]);
    expect([v.verdict, v.reason]).toEqual([
      'deviates',
      `30 of 31 skeleton loads match the seed's table; differs: RBTree Delete (bench_ffkx_rbtr) in 1 block${CLANG}`,
    ]);
  });

  // guards/five-loads-one-rejected-dmesg.txt (assembled, guards/README): load 3 of 5 rejected at RBTree Delete.
  it('a rejected load: the four complete loads agree, the verdict deviates and says one load was rejected', async () => {
    const runDir = tempDir();
    writeLogs(runDir, [fx('guards/five-loads-one-rejected-dmesg.txt')]);
    const out = await guards.runCell(benchCtx('', runDir), guards.variants[0]!);
    expect(out.metrics).toMatchObject({ exact: 0, blocks: 4, blocks_agreeing: 4, loads_found: 5, loads_rejected: 1, loads_stopped: 0 });
    const v = verdictOf('guard-elision', [rec('guards', out.metrics)]);
    expect([v.verdict, v.reason]).toEqual([
      'deviates',
      "4 of 4 skeleton loads match the seed's table (1 of 5 loads not complete; 1 rejected by the verifier); " +
        `differs: RBTree Delete (bench_ffkx_rbtr) in 1 block${CLANG}`,
    ]);
  });

  it('a correct run whose log head was overwritten reproduces, and says the head was cut off', async () => {
    const runDir = tempDir();
    writeLogs(runDir, [
      fx('guards/zipfian-31-blocks-dmesg.txt')
        .trimEnd()
        .split('\n')
        .slice(1 + 32)
        .join('\n'),
    ]);
    const out = await guards.runCell(benchCtx('', runDir), guards.variants[0]!);
    const v = verdictOf('guard-elision', [rec('guards', out.metrics)]);
    expect([v.verdict, v.measured, v.reason]).toEqual([
      'reproduced',
      78,
      `30 of 30 skeleton loads match the seed's table (the log's head was cut off)${CLANG}`,
    ]);
  });

  it("reads every datastructures cell's kernel log (two repetitions: 62 loads)", async () => {
    const runDir = tempDir();
    writeLogs(runDir, [fx('guards/zipfian-31-blocks-dmesg.txt'), fx('guards/zipfian-31-blocks-dmesg.txt')]);
    const out = await guards.runCell(benchCtx('', runDir), guards.variants[0]!);
    expect(out.metrics).toMatchObject({ exact: 1, blocks: 62, blocks_agreeing: 62 });
  });

  it('a datastructures log without any guard message fails the cell with the reason', async () => {
    const runDir = tempDir();
    writeLogs(runDir, ['[ 1.0] virtio_net virtio1 enp0s4: renamed\n']);
    await expect(guards.runCell(benchCtx('', runDir), guards.variants[0]!)).rejects.toThrow(/no "prog=NAME range_analysis_call=N elided=M" message/);
  });
});

describe('guards is skipped whenever the datastructures run that writes its log is', () => {
  const caps = (over: Parameters<typeof testCaps>[0]) =>
    testCaps(over, { kernelRelease: '6.9.0-kflex', kflexKernel: true, ffkx: true, memtier: true, serverMemoryMb: 128 * 1024, serverCpus: 8, accel: 'kvm' });
  it.each([
    ['the paper VM (32 GiB) cannot hold the 64 GiB heap', { serverMemoryMb: 32 * 1024 }],
    ['the smoke kernel has no KFlex', { kflexKernel: false }],
    ['ffkx is not in the image', { ffkx: false }],
    ['the guest has 4-level paging (no LA57): the 64 GiB heap cannot be placed', { la57: false }],
    ['everything is there', {}],
  ])('%s', (_what, over) => {
    const c = caps(over);
    const ds = unmetRequirement(datastructures.variants[0]!, c);
    expect(unmetRequirement(guards.variants[0]!, c)).toBe(ds);
    expect(ds === undefined).toBe(Object.keys(over).length === 0);
  });
  it('follows a heap size set on the datastructures variant (a scaled heap)', () => {
    const v = datastructures.variants[0]!;
    const paper = v.heapGiB;
    try {
      v.heapGiB = 4;
      expect(guards.variants[0]!.heapGiB).toBe(4);
      expect(unmetRequirement(guards.variants[0]!, caps({ serverMemoryMb: 32 * 1024 }))).toBeUndefined();
    } finally {
      v.heapGiB = paper;
    }
  });
});
