import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseMemcaslap,
  parseRedisBenchmarkCsv,
  parseRedisBenchmark,
  parseGbenchJson,
  gbenchFamily,
  gbenchMetrics,
  parseGuardLines,
  compareGuards,
  splitGuardLoads,
  SEED_GUARDS,
  parseMemtier,
} from '../../experiments/parsers.js';
import { LabError } from '../../core/errors.js';
import { FIXTURES } from '../helpers.js';

// Captures of real runs: memcaslap, redis-benchmark and memtier_benchmark against memcached/redis on loopback (Debian 12),
// a real Google Benchmark binary's JSON, and the seed README's dmesg lines.
const fx = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

describe('client parsers', () => {
  it('memcaslap over UDP', () => {
    expect(parseMemcaslap(fx('clients/memcaslap-udp.txt'))).toEqual({
      run_time_s: 3,
      ops: 106301,
      tps: 35425,
      net_rate_mb_s: 4.5,
      cmd_get: 95666,
      cmd_set: 10635,
      get_misses: 0,
      packet_disorder: 0,
      packet_drop: 0,
      udp_timeout: 0,
      lat_min_us: 61,
      lat_max_us: 6725,
      lat_avg_us: 225,
    });
  });

  it('memcaslap over TCP (no UDP counters)', () => {
    const m = parseMemcaslap(fx('clients/memcaslap-tcp.txt'));
    expect(m).toMatchObject({ tps: 54371, ops: 163146, cmd_get: 146828, cmd_set: 16318, get_misses: 0 });
    expect(m.packet_drop).toBeUndefined();
  });

  it('memcaslap output cut short is an error, not a zero', () => {
    const cut = fx('clients/memcaslap-udp.txt').split('Run time:')[0]!;
    expect(() => parseMemcaslap(cut)).toThrow(LabError);
    expect(() => parseMemcaslap(cut)).toThrow(/no final "Run time/);
  });

  it('redis-benchmark --csv, GET/SET and ZADD', () => {
    const gs = parseRedisBenchmarkCsv(fx('clients/redis-benchmark-getset.csv'));
    expect(gs).toMatchObject({ set_rps: 79365.08, get_rps: 84745.77, get_p99_latency_ms: 0.127 });
    expect(gs.rps).toBeCloseTo((79365.08 + 84745.77) / 2, 2);
    const z = parseRedisBenchmarkCsv(fx('clients/redis-benchmark-zadd.csv'));
    expect(z).toMatchObject({ zadd_rps: 50000, rps: 50000, zadd_avg_latency_ms: 0.136 });
    expect(() => parseRedisBenchmarkCsv(fx('clients/redis-benchmark-zadd.txt'))).toThrow(/no CSV header/);
  });

  it('redis-benchmark: the default report, -q and --csv forms of one invocation give the same metric names', () => {
    // Captured: redis-benchmark 7.0.15 -n 2000 -t get,set against redis-server on loopback (clients/README).
    const report = parseRedisBenchmark(fx('clients/redis-benchmark-n2000-getset.txt'));
    expect(report).toEqual({
      set_rps: 28169.01,
      set_avg_latency_ms: 1.503,
      set_min_latency_ms: 0.144,
      set_p50_latency_ms: 0.463,
      set_p95_latency_ms: 0.743,
      set_p99_latency_ms: 41.887,
      set_max_latency_ms: 42.271,
      get_rps: expect.any(Number),
      get_avg_latency_ms: expect.any(Number),
      get_min_latency_ms: expect.any(Number),
      get_p50_latency_ms: expect.any(Number),
      get_p95_latency_ms: expect.any(Number),
      get_p99_latency_ms: expect.any(Number),
      get_max_latency_ms: expect.any(Number),
      rps: expect.any(Number),
    });
    expect(report.rps).toBeCloseTo((report.set_rps! + report.get_rps!) / 2, 6);
    const csv = parseRedisBenchmark(fx('clients/redis-benchmark-n2000-getset.csv'));
    expect(csv).toEqual(parseRedisBenchmarkCsv(fx('clients/redis-benchmark-n2000-getset.csv')));
    expect(Object.keys(report).sort()).toEqual(Object.keys(csv).sort());
    expect(parseRedisBenchmark(fx('clients/redis-benchmark-n2000-getset-q.txt'))).toEqual({
      set_rps: 60606.06,
      set_p50_latency_ms: 0.487,
      get_rps: 62500,
      get_p50_latency_ms: 0.471,
      rps: (60606.06 + 62500) / 2,
    });
  });

  it("redis-benchmark default report of the seed's ZADD line, and of the earlier captures", () => {
    const z = parseRedisBenchmark(fx('clients/redis-benchmark-n2000-zadd.txt'));
    expect(z).toMatchObject({ zadd_rps: 7017.54, rps: 7017.54, zadd_avg_latency_ms: 1.127, zadd_p99_latency_ms: 5.951, zadd_max_latency_ms: 9.687 });
    expect(Object.keys(z).sort()).toEqual(Object.keys(parseRedisBenchmark(fx('clients/redis-benchmark-n2000-zadd.csv'))).sort());
    expect(parseRedisBenchmark(fx('clients/redis-benchmark-getset.txt'))).toMatchObject({ get_rps: 84745.77, get_p99_latency_ms: 0.151 });
    expect(parseRedisBenchmark(fx('clients/redis-benchmark-zadd.txt')).zadd_rps).toBeGreaterThan(0);
  });

  it('redis-benchmark: output without any of the three forms, or cut before its summary, is an error', () => {
    expect(() => parseRedisBenchmark('')).toThrow(/no CSV header, no "====== TEST ======" report/);
    expect(() => parseRedisBenchmark(fx('clients/memtier-redis.txt'))).toThrow(LabError);
    const cut = fx('clients/redis-benchmark-n2000-zadd.txt').split('Summary:')[0]!;
    expect(() => parseRedisBenchmark(cut)).toThrow(/did the run finish/);
  });

  it('redis-benchmark 6.0 --csv: header-less "TEST","RPS" rows (captured from a 6.0.16 build)', () => {
    // Captured: redis-benchmark built from redis 6.0.16 (clients/README) against redis-server 7.0.15 on loopback.
    const gs = parseRedisBenchmark(fx('clients/redis-benchmark6-getset.csv'));
    expect(gs).toEqual({ set_rps: 8163.27, get_rps: 17391.3, rps: (8163.27 + 17391.3) / 2 });
    expect(parseRedisBenchmarkCsv(fx('clients/redis-benchmark6-getset.csv'))).toEqual(gs);
    // The custom command's title is its whole command line: the metric takes its first word.
    expect(parseRedisBenchmarkCsv(fx('clients/redis-benchmark6-zadd.csv'))).toEqual({ zadd_rps: 3944.77, rps: 3944.77 });
    // A quoted cell that is not a rate is neither form.
    expect(() => parseRedisBenchmarkCsv('"SET","fast"\n')).toThrow(/no CSV header .* and no header-less "TEST","RPS" rows/);
  });

  it('Google Benchmark JSON, including the bare Infinity it writes for manual-time runs', () => {
    const r = parseGbenchJson(fx('gbench/gbench.json'));
    expect(r.map((b) => b.family)).toEqual(['Uniform_std_map_update', 'Zipfian_std_map_lookup']);
    expect(r[0]!.ns_per_op).toBeCloseTo(86.17126, 4);
    expect(r[0]!.items_per_second).toBeCloseTo(28327817.4, 0);
    expect(r[1]!.items_per_second).toBeUndefined();
    expect(() => parseGbenchJson('{"context":{}}')).toThrow(/no "benchmarks" array/);
    // printf's %e of a zero time (the arena runner's, on a guest whose clock was jiffies): inf and -nan, and no time.
    const zero =
      '{"benchmarks":[{"name":"Zipfian/bpf_hashmap_update","run_type":"iteration","iterations":2000,' +
      '"real_time":0.000000e+00,"time_unit":"ns","items_per_second":inf,"x":-nan}]}';
    expect(parseGbenchJson(zero)[0]).toMatchObject({
      ns_per_op: undefined,
      items_per_second: undefined,
      error: expect.stringMatching(/measured 0 ns for 2000 iterations/),
    });
  });

  it('Google Benchmark suffixes are cut from the registered name, which may itself contain "/"', () => {
    expect(gbenchFamily('Zipfian/ffkx_rbtree_update/key:32/val:64/items:100000/trans:0/iterations:100000/manual_time/threads:1')).toEqual({
      family: 'Zipfian/ffkx_rbtree_update',
      args: 'key:32/val:64/items:100000/trans:0/iterations:100000/manual_time/threads:1',
    });
    expect(gbenchFamily('BM_memcpy/8/manual_time')).toEqual({ family: 'BM_memcpy', args: '8/manual_time' });
    expect(gbenchFamily('BM_x/min_time:0.500s/repeats:3/process_time/real_time/threads:4').family).toBe('BM_x');
    expect(gbenchFamily('BM_t<std::string>/Zipfian').family).toBe('BM_t<std::string>/Zipfian');
  });
});

// ffkx-bench's real names (its registration, rebuilt with Google Benchmark: see ffkx-bench/README).
describe('ffkx-bench names and JSON', () => {
  const SUFFIX = 'key:32/val:64/items:100000/trans:0/iterations:100000/manual_time/threads:1';
  // BenchDataStructures.cpp: FFKX_BENCHMARK_DS for 9 data structures (3 ops), FFKX_BENCHMARK for 4 sketches.
  const ds = [
    'bpf_rbtree',
    'ffkx_rbtree',
    'bpf_hashmap',
    'ffkx_hashmap',
    'bpf_linked_list',
    'bpf_graph_linked_list',
    'ffkx_linked_list',
    'bpf_skiplist',
    'ffkx_skiplist',
  ];
  const sketches = ['bpf_countsketch', 'bpf_countminsketch', 'ffkx_countsketch', 'ffkx_countminsketch'];
  const expected = [
    ...ds.flatMap((d) => ['Uniform', 'Zipfian'].flatMap((dist) => ['update', 'lookup', 'delete'].map((op) => `${dist}/${d}_${op}`))),
    ...sketches.flatMap((k) => ['Uniform', 'Zipfian'].map((dist) => `${dist}/${k}`)),
  ];

  it('--benchmark_list_tests: 62 names, each the registered Name() plus the same suffixes', () => {
    const lines = fx('ffkx-bench/list-tests.txt').trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['Benchmark size: 100000', 'Benchmark iterations: 100000']);
    const names = lines.slice(2).map(gbenchFamily);
    expect(names.map((n) => n.family)).toEqual(expected);
    expect(new Set(names.map((n) => n.args))).toEqual(new Set([SUFFIX]));
  });

  it('a Zipfian JSON keys every metric on the whole benchmark name (no collapse into "Zipfian")', () => {
    const results = parseGbenchJson(fx('ffkx-bench/zipfian.json'));
    expect(results.map((r) => r.family)).toEqual(expected.filter((n) => n.startsWith('Zipfian/')));
    const { metrics, errors } = gbenchMetrics(results);
    expect(errors).toEqual([]);
    expect(Object.keys(metrics).filter((k) => k.endsWith('.ns_per_op'))).toHaveLength(31);
    expect(metrics['Zipfian.ns_per_op']).toBeUndefined();
    expect(metrics['Zipfian/ffkx_rbtree_update.ns_per_op']).toBeCloseTo(320, 3);
    expect(metrics['Zipfian/bpf_rbtree_update.ns_per_op']).toBeCloseTo(400, 3);
    expect(metrics['Zipfian/bpf_linked_list_lookup.ns_per_op']).toBeCloseTo(90000, 1);
    expect(metrics['Zipfian/ffkx_countminsketch.items_per_second']).toBeCloseTo(1e9 / 50, -2);
  });

  it('an errored benchmark (its skeleton did not load) gives no number, not real_time 0', () => {
    const results = parseGbenchJson(fx('ffkx-bench/zipfian-skiplist-error.json'));
    const bad = results.find((r) => r.family === 'Zipfian/ffkx_skiplist_update')!;
    expect(bad).toMatchObject({ error: 'Failed to load skeleton: INTERNAL: bpf_object__load failed: -12' });
    expect(bad.ns_per_op).toBeUndefined();
    const { metrics, errors } = gbenchMetrics(results);
    expect(metrics['Zipfian/ffkx_skiplist_update.ns_per_op']).toBeUndefined();
    expect(metrics['Zipfian/ffkx_skiplist_lookup.ns_per_op']).toBeCloseTo(275, 3);
    expect(metrics.benchmarks_failed).toBe(1);
    expect(errors).toEqual(['Zipfian/ffkx_skiplist_update: Failed to load skeleton: INTERNAL: bpf_object__load failed: -12']);
  });

  // Captured: standin.cpp (STANDIN_REP_STEP=0.1, STANDIN_FAIL=ffkx_skiplist_update) --benchmark_repetitions=3
  // --benchmark_report_aggregates_only=true with libbenchmark 1.7.1 (ffkx-bench/README).
  it('--benchmark_report_aggregates_only: each run is read from its median aggregate; a run that failed keeps its error rows', () => {
    const results = parseGbenchJson(fx('ffkx-bench/zipfian-aggregates-only.json'));
    const ok = results.filter((r) => !r.error);
    expect(ok.map((r) => [r.family, r.aggregate, r.repetitions])).toEqual([
      ['Zipfian/bpf_rbtree_update', 'median', 3],
      ['Zipfian/ffkx_rbtree_update', 'median', 3],
      ['Zipfian/bpf_skiplist_update', 'median', 3],
    ]);
    // The name is the run's, without the _median suffix, so the metric keys equal an iteration run's.
    expect(ok[0]!.name).toBe('Zipfian/bpf_rbtree_update/key:32/val:64/items:100000/trans:0/iterations:100000/manual_time/threads:1');
    const { metrics, errors } = gbenchMetrics(results);
    // 400, 440, 480 ns over the three repetitions (each 10% slower than the first): the median is 440.
    expect(metrics['Zipfian/bpf_rbtree_update.ns_per_op']).toBeCloseTo(440, 6);
    expect(metrics['Zipfian/ffkx_rbtree_update.ns_per_op']).toBeCloseTo(352, 6);
    expect(metrics['Zipfian/bpf_skiplist_update.ns_per_op']).toBeCloseTo(550, 6);
    expect(metrics['Zipfian/ffkx_rbtree_update.items_per_second']).toBeCloseTo(1e9 / 352, -1);
    // The failed run has no aggregates (fewer than two good repetitions): its three error rows are kept.
    expect(errors).toEqual(Array(3).fill('Zipfian/ffkx_skiplist_update: Failed to load skeleton: INTERNAL: bpf_object__load failed: -12'));
  });

  it('the mean aggregate when there is no median; a file with neither, or with no benchmark, is an error', () => {
    const agg = (stat: string, t: number) => ({
      name: `Z/ffkx_a/iterations:1_${stat}`,
      run_name: 'Z/ffkx_a/iterations:1',
      run_type: 'aggregate',
      aggregate_name: stat,
      repetitions: 5,
      iterations: 5,
      real_time: t,
      time_unit: 'us',
    });
    expect(parseGbenchJson(JSON.stringify({ benchmarks: [agg('mean', 2), agg('stddev', 1)] }))).toMatchObject([
      { family: 'Z/ffkx_a', ns_per_op: 2000, aggregate: 'mean', repetitions: 5 },
    ]);
    // Before Google Benchmark 1.5 there is no run_name: the _<statistic> suffix is cut from the name.
    const { run_name: _, ...old } = agg('median', 3);
    expect(parseGbenchJson(JSON.stringify({ benchmarks: [old] }))[0]).toMatchObject({ name: 'Z/ffkx_a/iterations:1', family: 'Z/ffkx_a', ns_per_op: 3000 });
    expect(() => parseGbenchJson(JSON.stringify({ benchmarks: [agg('stddev', 1), agg('cv', 0.1)] }))).toThrow(
      /2 rows, none an iteration row and no "median" or "mean" aggregate \(aggregates: stddev, cv\)/,
    );
    expect(() => parseGbenchJson('{"context":{},"benchmarks":[]}')).toThrow(/"benchmarks" array is empty: no benchmark ran/);
  });

  it('a name registered with two argument sets keeps them apart; repetitions give their median', () => {
    const run = (name: string, t: number) => ({ name, run_type: 'iteration', iterations: 1, real_time: t, time_unit: 'us' });
    const doc = JSON.stringify({
      benchmarks: [
        run('Z/ffkx_a/key:8/iterations:1', 1),
        run('Z/ffkx_a/key:16/iterations:1', 2),
        run('Z/bpf_a/key:8/iterations:1', 3),
        run('Z/bpf_a/key:8/iterations:1', 5),
        run('Z/bpf_a/key:8/iterations:1', 4),
      ],
    });
    const { metrics } = gbenchMetrics(parseGbenchJson(doc));
    expect(metrics).toEqual({ 'Z/ffkx_a/key:8/iterations:1.ns_per_op': 1000, 'Z/ffkx_a/key:16/iterations:1.ns_per_op': 2000, 'Z/bpf_a.ns_per_op': 4000 });
  });
});

describe('memtier_benchmark', () => {
  it('memtier_benchmark --protocol=redis (ALL STATS table; --- cells skipped)', () => {
    // Captured from memtier_benchmark built from its upstream source, against redis-server on loopback.
    const m = parseMemtier(fx('clients/memtier-redis.txt'));
    expect(m).toMatchObject({
      ops_sec: 91417.06,
      totals_ops_sec: 91417.06,
      sets_ops_sec: 9142.51,
      gets_ops_sec: 82274.55,
      gets_misses_sec: 82253.22,
      totals_avg_latency: 0.08774,
      totals_p99_latency: 0.199,
    });
    expect(m.sets_hits_sec).toBeUndefined();
  });

  it('memtier: refuses output without its ALL STATS table', () => {
    expect(() => parseMemtier('Writing results to stdout\n')).toThrow(/no "ALL STATS" table/);
  });

  // Captured: memtier_benchmark 2.1.1 built from its tag (clients/README) against redis-server 7.0.15 on loopback.
  it('--run-count=3: reads the AGGREGATED AVERAGE RESULTS table, not the best or worst run', () => {
    const m = parseMemtier(fx('clients/memtier-run-count3.txt'));
    expect(m).toMatchObject({
      ops_sec: 33354.09,
      totals_ops_sec: 33354.09,
      sets_ops_sec: 3337.61,
      gets_ops_sec: 30016.48,
      gets_misses_sec: 30016.48,
      totals_avg_latency: 0.23978,
      totals_p50_latency: 0.167,
      run_count: 3,
      best_ops_sec: 35274.09,
      worst_ops_sec: 31566.94,
    });
  });

  it('--run-count=2 with its latency histograms: the aggregated table stops before its histogram', () => {
    const m = parseMemtier(fx('clients/memtier-run-count2-histogram.txt'));
    expect(m).toMatchObject({ ops_sec: 37045.56, run_count: 2, best_ops_sec: 44320.35, worst_ops_sec: 29770.77, totals_kb_sec: 1700.19 });
    expect(Object.keys(m).filter((k) => k.startsWith('set_') || k.startsWith('get_'))).toEqual([]);
  });

  it('a --run-count output cut before its aggregated table is an error, not the best run', () => {
    const cut = fx('clients/memtier-run-count3.txt').split('AGGREGATED')[0]!;
    expect(() => parseMemtier(cut)).toThrow(/BEST\/WORST RUN RESULTS .* no "AGGREGATED AVERAGE RESULTS" table/);
  });

  it('the ZADD stand-in (--command): one row per command (Zadds) and Totals', () => {
    expect(parseMemtier(fx('clients/memtier-zadd-standin.txt'))).toEqual({
      zadds_ops_sec: 6441.22,
      zadds_avg_latency: 0.68667,
      zadds_p50_latency: 0.511,
      zadds_p99_latency: 1.599,
      zadds_p99_9_latency: 1.599,
      zadds_kb_sec: 406.77,
      totals_ops_sec: 6441.22,
      totals_avg_latency: 0.68667,
      totals_p50_latency: 0.511,
      totals_p99_latency: 1.599,
      totals_p99_9_latency: 1.599,
      totals_kb_sec: 813.54,
      ops_sec: 6441.22,
    });
  });
});

describe('guard elision', () => {
  it("reproduces the seed's 15 rows: 78 of 99 guards elided", () => {
    const lines = parseGuardLines(fx('guards/seed-dmesg.txt'));
    expect(lines).toHaveLength(15);
    const c = compareGuards(lines);
    expect(c.exact).toBe(true);
    expect([c.measured_total, c.measured_elided, c.expected_total, c.expected_elided]).toEqual([99, 78, 99, 78]);
    expect(c.rows.map((r) => r.label)).toEqual(SEED_GUARDS.map((g) => g.label));
  });

  it('reads messages printed without a newline, run together on one line', () => {
    // The verifier prints no newline: the same messages can arrive glued together (derived from the seed's lines).
    const glued = fx('guards/seed-dmesg.txt')
      .split('\n')
      .map((l) => l.replace(/^\[[^\]]+\] /, ''))
      .join('');
    const c = compareGuards(parseGuardLines(`[709104.842956] ${glued}\n`));
    expect(c.exact).toBe(true);
  });

  it('notices a changed count and a missing program, by position', () => {
    const text = fx('guards/seed-dmesg.txt').replace('range_analysis_call=29 elided=25', 'range_analysis_call=29 elided=24');
    const c = compareGuards(parseGuardLines(text));
    expect(c.exact).toBe(false);
    expect(c.rows.filter((r) => !r.match).map((r) => r.label)).toEqual(['RBTree Delete']);
    const short = compareGuards(parseGuardLines(fx('guards/seed-dmesg.txt').split('\n').slice(0, 14).join('\n')));
    expect(short.exact).toBe(false);
    expect(short.rows.at(-1)!.measured).toBeUndefined();
  });

  // Assembled from the sources (guards/README): a Zipfian ffkx-bench run loads the skeleton once per benchmark.
  it('a Zipfian run: 31 loads of the skeleton, each printing the 15 programs among 24 others, all equal to the seed', () => {
    const lines = parseGuardLines(fx('guards/zipfian-31-blocks-dmesg.txt'));
    expect(lines.length).toBeGreaterThan(31 * 39);
    const loads = splitGuardLoads(lines);
    expect(loads.map((l) => [l.status, l.rows.length, l.marked])).toEqual(Array(31).fill(['complete', 15, true]));
    const c = compareGuards(lines);
    expect(c).toMatchObject({ exact: true, blocks: 31, blocks_agreeing: 31, loads_found: 31, loads_complete: 31, differing: [], deviations: [], cut_off: [] });
    expect(c.summary).toBe("31 loads in the log: 31 complete, 31 of them equal to the seed's table");
    // Per load, not summed over the 31 loads.
    expect([c.measured_total, c.measured_elided]).toEqual([99, 78]);
  });

  it('one load that differs makes the whole log deviate, and says which load and which program', () => {
    const c = compareGuards(parseGuardLines(fx('guards/zipfian-block7-differs-dmesg.txt')));
    expect(c).toMatchObject({ exact: false, blocks: 31, blocks_agreeing: 30 });
    expect(c.differing).toEqual([{ label: 'RBTree Delete', prog: 'bench_ffkx_rbtr', blocks: 1 }]);
    expect(c.deviations).toEqual(['load 7 of 31: RBTree Delete (bench_ffkx_rbtr) range_analysis_call=29 elided=24, seed 29/25']);
    // The first load agrees, so the table itself still reads 78 of 99.
    expect(c.rows.every((r) => r.match)).toBe(true);
  });

  // Assembled (guards/README): five loads in one process, the first with libbpf's feature probes in its
  // source order, load 3 rejected at RBTree Delete and printed twice (libbpf's retry), nothing after it.
  it('five loads, one rejected and retried: 4 complete loads agree, the rejected one is named, nothing else loses its place', () => {
    const lines = parseGuardLines(fx('guards/five-loads-one-rejected-dmesg.txt'));
    expect(splitGuardLoads(lines).map((l) => [l.status, l.rows.length, l.attempts])).toEqual([
      ['complete', 15, 1],
      ['complete', 15, 1],
      ['rejected', 6, 2],
      ['complete', 15, 1],
      ['complete', 15, 1],
    ]);
    const c = compareGuards(lines);
    expect(c).toMatchObject({ exact: false, loads_found: 5, loads_complete: 4, loads_agreeing: 4, loads_rejected: 1, blocks: 4, blocks_agreeing: 4 });
    expect(c.deviations).toEqual([
      'load 3 of 5: RBTree Delete (bench_ffkx_rbtr) rejected at range_analysis_call=17 elided=14 ' +
        "(printed 2 times: libbpf's retry with a log), 9 table programs after it not loaded",
    ]);
    expect(c.differing).toEqual([{ label: 'RBTree Delete', prog: 'bench_ffkx_rbtr', blocks: 1 }]);
    expect(c.summary).toBe("5 loads in the log: 4 complete, 4 of them equal to the seed's table; 1 rejected");
  });

  // Derived from the 31-load log: its first 33 messages dropped (the first load's preamble and the table up to
  // Skiplist Update), as when the kernel's ring buffer overwrote the head of a correct run.
  it('a correct run whose head was overwritten: the cut-off head is said, the 30 complete loads agree', () => {
    const text = fx('guards/zipfian-31-blocks-dmesg.txt')
      .trimEnd()
      .split('\n')
      .slice(1 + 32)
      .join('\n');
    const loads = splitGuardLoads(parseGuardLines(text));
    expect(loads[0]).toMatchObject({ status: 'head', start: 10, marked: false });
    expect(loads[0]!.rows).toHaveLength(5);
    const c = compareGuards(parseGuardLines(text));
    expect(c).toMatchObject({ exact: true, loads_found: 30, loads_complete: 30, loads_agreeing: 30, deviations: [] });
    expect(c.cut_off).toEqual(['the head: the log begins inside a load, at Skiplist Update (5 of 15 table rows; the rest was overwritten)']);
  });

  it('a load that stops inside the table without a retry: in the middle a deviation, at the end of the log the cut-off tail', () => {
    const all = fx('guards/zipfian-31-blocks-dmesg.txt').trimEnd().split('\n');
    const probes = all.map((l, i) => (/prog= range/.test(l) ? i : -1)).filter((i) => i >= 0);
    // Load 14 (its probe line is the 16th: the first load has three unnamed lines) loses everything after Skiplist Update.
    const from = probes[15]!;
    const skip = all.findIndex((l, i) => i > from && l.includes('prog=bench_ffkx_skip'));
    const middle = [...all.slice(0, skip + 1), ...all.slice(probes[16]!)].join('\n');
    const c = compareGuards(parseGuardLines(middle));
    expect(c).toMatchObject({ exact: false, loads_found: 31, loads_complete: 30, loads_agreeing: 30, loads_stopped: 1 });
    expect(c.deviations).toEqual([
      'load 14 of 31: stops after Skiplist Update (bench_ffkx_skip): Skiplist Lookup (bench_ffkx_skip) ' +
        'and the rest not verified (rejected before range analysis?)',
    ]);
    const lastSkip = all.findLastIndex((l) => l.includes('prog=bench_ffkx_skip range_analysis_call=15'));
    const tail = compareGuards(parseGuardLines(all.slice(0, lastSkip + 1).join('\n')));
    expect(tail).toMatchObject({ exact: true, loads_found: 31, loads_complete: 30, loads_agreeing: 30, loads_stopped: 0, deviations: [] });
    expect(tail.cut_off).toEqual(['the tail: the log ends inside load 31, after 11 of 15 table rows']);
  });

  it('a filtered log (dmesg | grep ffkx_: no probe lines) is split by the table order, a retry still recognised', () => {
    const raw = fx('guards/five-loads-one-rejected-dmesg.txt').split('\n');
    const c = compareGuards(parseGuardLines(raw.filter((l) => l.includes('ffkx_')).join('\n')));
    expect(c).toMatchObject({ loads_found: 5, loads_complete: 4, loads_agreeing: 4, loads_rejected: 1, exact: false });
  });

  it('input without a single guard message is refused with the reason (empty, binary, another log)', () => {
    expect(() => parseGuardLines('')).toThrow(/no "prog=NAME range_analysis_call=N elided=M" message/);
    expect(() => parseGuardLines('\u0000\u0001\u00ff\u0007ELF\u0002\u0001')).toThrow(LabError);
    expect(() => parseGuardLines(fx('clients/memcaslap-udp.txt'))).toThrow(/cannot parse guard-elision log output/);
  });

  it('a log with verifier messages but none from bench_ffkx_* programs deviates with that reason', () => {
    const c = compareGuards(parseGuardLines('[ 1.0] prog=ffkx_memcache_ range_analysis_call=3 elided=3\n[ 1.1] prog= range_analysis_call=0 elided=0\n'));
    expect(c).toMatchObject({ exact: false, blocks: 0, blocks_agreeing: 0 });
    expect(c.deviations).toEqual(["no bench_ffkx_* program in the log (1 other verifier messages): ffkx-bench's data-structure programs were not loaded"]);
  });
});
