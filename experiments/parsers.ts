/** Parsers from real client output to metrics. Each is tested on captures in test/fixtures. */
import { LabError, ExitCode } from '../core/errors.js';

export type Metrics = Record<string, number>;

function fail(what: string, why: string): never {
  throw new LabError(`cannot parse ${what} output: ${why}`, ExitCode.checkFailed);
}

/**
 * memcaslap (libmemcached-tools): the final `Run time: 20.0s Ops: N TPS: X Net_rate: Y M/s` line, the
 * `cmd_get/cmd_set/get_misses` counters, the UDP `packet_drop/udp_timeout` counters, and the final
 * per-type `Avg` latency (us) of the last `Global` rows.
 */
export function parseMemcaslap(out: string): Metrics {
  const final = out.match(/Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+) Net_rate: ([\d.]+)M\/s/);
  if (!final) fail('memcaslap', 'no final "Run time: ... TPS:" line (did the run finish?)');
  const m: Metrics = { run_time_s: Number(final[1]), ops: Number(final[2]), tps: Number(final[3]), net_rate_mb_s: Number(final[4]) };
  for (const k of ['cmd_get', 'cmd_set', 'get_misses', 'packet_disorder', 'packet_drop', 'udp_timeout']) {
    const v = out.match(new RegExp(`^${k}: (\\d+)`, 'm'));
    if (v) m[k] = Number(v[1]);
  }
  // "Total Statistics (N events)" block: Avg in microseconds.
  const total = out.match(/Total Statistics \(\d+ events\)\s*\n\s*Min:\s*(\d+)\s*\n\s*Max:\s*(\d+)\s*\n\s*Avg:\s*(\d+)/);
  if (total) Object.assign(m, { lat_min_us: Number(total[1]), lat_max_us: Number(total[2]), lat_avg_us: Number(total[3]) });
  return m;
}

/**
 * redis-benchmark --csv: one row per test with rps and latency percentiles (ms). Metric names are prefixed by
 * the test. redis-benchmark up to 6.0 writes no header and only the rate, one `"TEST","RPS"` row per test
 * (src/redis-benchmark.c at 6.0.16, showLatencyReport(): `printf("\"%s\",\"%.2f\"\n", config.title, reqpersec)`);
 * 6.2 and later write a `"test","rps","avg_latency_ms",...` header and one row of those columns per test.
 */
export function parseRedisBenchmarkCsv(out: string): Metrics {
  const lines = out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('"'));
  const header = lines.find((l) => l.startsWith('"test"'));
  if (!header) return parseRedisBenchmarkCsv60(lines);
  const cols = splitCsv(header);
  const m: Metrics = {};
  for (const l of lines.filter((x) => x !== header)) {
    const cells = splitCsv(l);
    const test = redisTestKey(cells[0] ?? '');
    cols.slice(1).forEach((c, i) => {
      const v = Number(cells[i + 1]);
      if (!Number.isNaN(v)) m[`${test}_${c}`] = v;
    });
  }
  if (!Object.keys(m).length) fail('redis-benchmark', 'CSV has no data rows');
  return withMeanRps(m);
}

/** A header-less row of redis-benchmark <= 6.0: `"SET","8163.27"` (two cells, the second a rate). */
const CSV60_ROW = /^"((?:[^"]|"")*)","(\d+(?:\.\d+)?)"$/;

function parseRedisBenchmarkCsv60(lines: string[]): Metrics {
  const m: Metrics = {};
  for (const l of lines) {
    const row = l.match(CSV60_ROW);
    if (row) m[`${redisTestKey(row[1]!.replace(/""/g, '"'))}_rps`] = Number(row[2]);
  }
  if (!Object.keys(m).length)
    fail('redis-benchmark', 'no CSV header ("test","rps",... of 6.2 and later) and no header-less "TEST","RPS" rows of 6.0 and earlier (run it with --csv)');
  return withMeanRps(m);
}

/**
 * redis-benchmark in any of its three output forms: --csv (with the header of 6.2+ or the header-less rows of
 * 6.0 and earlier), the default report (one `====== TEST ======`
 * section per test ending in `throughput summary` and a `latency summary (msec)` table), or -q (one
 * `TEST: N requests per second, p50=X msec` line per test). The metric names are the same for all three
 * (`set_rps`, `set_p99_latency_ms`, ..., and `rps`, the mean over the tests), so a hand capture
 * compares with what the experiments record.
 */
export function parseRedisBenchmark(out: string): Metrics {
  // The live progress line is rewritten in place with \r: split on it so it never joins a report line.
  const text = out.replace(/\r\n?/g, '\n');
  if (/^\s*"test",/m.test(text) || /^\s*"(?:[^"]|"")*","\d+(?:\.\d+)?"\s*$/m.test(text)) return parseRedisBenchmarkCsv(text);
  if (/^\s*====== .+ ======\s*$/m.test(text)) return parseRedisBenchmarkReport(text);
  const m: Metrics = {};
  for (const q of text.matchAll(/^\s*(\S.*?): ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?\s*$/gm)) {
    const test = redisTestKey(q[1]!);
    m[`${test}_rps`] = Number(q[2]);
    if (q[3] !== undefined) m[`${test}_p50_latency_ms`] = Number(q[3]);
  }
  if (!Object.keys(m).length) fail('redis-benchmark', 'no CSV header, no "====== TEST ======" report and no "-q" lines ("TEST: N requests per second")');
  return withMeanRps(m);
}

function parseRedisBenchmarkReport(text: string): Metrics {
  const m: Metrics = {};
  const sections = text.split(/^\s*====== (.+) ======\s*$/m);
  // split() with a capture group alternates: [before, title1, body1, title2, body2, ...]
  for (let i = 1; i + 1 < sections.length; i += 2) {
    const test = redisTestKey(sections[i]!);
    const body = sections[i + 1]!;
    const rps = body.match(/^\s*(?:throughput summary: )?([\d.]+) requests per second\s*$/m);
    if (!rps) continue;
    m[`${test}_rps`] = Number(rps[1]);
    // "latency summary (msec):", then a line of column names and a line of values.
    const lines = body.split('\n');
    const at = lines.findIndex((l) => l.includes('latency summary (msec):'));
    if (at < 0 || lines[at + 2] === undefined) continue;
    const cols = lines[at + 1]!.trim().split(/\s+/);
    const vals = lines[at + 2]!.trim().split(/\s+/).map(Number);
    cols.forEach((c, j) => {
      if (vals[j] !== undefined && !Number.isNaN(vals[j])) m[`${test}_${c}_latency_ms`] = vals[j]!;
    });
  }
  if (!Object.keys(m).length) fail('redis-benchmark', 'no "====== TEST ======" section has a "requests per second" line (did the run finish?)');
  return withMeanRps(m);
}

/** The test's first word, lower case: "SET" -> set, "zadd f__rand_int__f ..." -> zadd. */
function redisTestKey(title: string): string {
  return title.trim().split(/\s+/)[0]!.toLowerCase();
}

function withMeanRps(m: Metrics): Metrics {
  const rps = Object.entries(m)
    .filter(([k]) => k.endsWith('_rps'))
    .map(([, v]) => v);
  if (rps.length) m.rps = rps.reduce((a, b) => a + b, 0) / rps.length;
  return m;
}

function splitCsv(line: string): string[] {
  return [...line.matchAll(/"((?:[^"]|"")*)"/g)].map((x) => x[1]!.replace(/""/g, '"'));
}

/**
 * memtier_benchmark's result table: rows Sets / Gets / Waits / Totals (or one row per --command, e.g. Zadds, then
 * Totals) with Ops/sec, Hits/sec, Misses/sec, Avg. Latency, the percentiles and KB/sec; column names are read
 * from the header line, `---` cells are left out. With --run-count=1 the table is `ALL STATS`; with more runs
 * memtier prints `BEST RUN RESULTS`, `WORST RUN RESULTS` and `AGGREGATED AVERAGE RESULTS (N runs)` instead
 * (memtier_benchmark.cpp at 2.1.1, main(): `if (cfg.run_count > 1)`): the aggregated table is read, `run_count`
 * is N, and the best and worst runs' Totals Ops/sec are kept as `best_ops_sec` / `worst_ops_sec`.
 */
export function parseMemtier(out: string): Metrics {
  const text = out.replace(/\r\n?/g, '\n');
  const agg = text.match(/^AGGREGATED AVERAGE RESULTS \((\d+) runs\)\s*$/m);
  if (!agg && /^(?:BEST|WORST) RUN RESULTS\s*$/m.test(text))
    fail('memtier_benchmark', 'BEST/WORST RUN RESULTS of a --run-count run but no "AGGREGATED AVERAGE RESULTS" table (was the output cut off?)');
  const title = agg ? agg[0].trim() : 'ALL STATS';
  const m = memtierTable(text, title);
  if (!m) fail('memtier_benchmark', 'no "ALL STATS" table (nor the "AGGREGATED AVERAGE RESULTS" of a --run-count run)');
  if (m.totals_ops_sec === undefined) fail('memtier_benchmark', `no Totals row in its "${title}" table`);
  m.ops_sec = m.totals_ops_sec;
  if (agg) {
    m.run_count = Number(agg[1]);
    const best = memtierTable(text, 'BEST RUN RESULTS')?.totals_ops_sec;
    const worst = memtierTable(text, 'WORST RUN RESULTS')?.totals_ops_sec;
    if (best !== undefined) m.best_ops_sec = best;
    if (worst !== undefined) m.worst_ops_sec = worst;
  }
  return m;
}

/**
 * One table of memtier's (run_stats::print -> output_table::print): its title line, a `====` line, the header,
 * a `----` line, then one row per type up to the first line that is not a row (a blank line, or the
 * `Request Latency Distribution` histogram when --hide-histogram is not given). Undefined when the title is absent.
 */
function memtierTable(text: string, title: string): Metrics | undefined {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.trim() === title);
  if (at < 0) return undefined;
  const hi = lines.findIndex((l, i) => i > at && /Ops\/sec/.test(l));
  if (hi < 0) fail('memtier_benchmark', `no header with Ops/sec under "${title}"`);
  const header = lines[hi]!.trim()
    .split(/\s{2,}/)
    .map((h) => h.trim());
  const m: Metrics = {};
  for (const l of lines.slice(hi + 1)) {
    if (/^-+\s*$/.test(l)) continue;
    const row = l.trim().match(/^([A-Z][a-z0-9_]*)\s+(\S.*)$/);
    if (!row) break;
    const vals = row[2]!.trim().split(/\s+/).map(Number);
    header.slice(1).forEach((h, i) => {
      const key = `${row[1]!.toLowerCase()}_${h
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '_')
        .replace(/_$/, '')}`;
      if (vals[i] !== undefined && !Number.isNaN(vals[i])) m[key] = vals[i]!;
    });
  }
  return m;
}

export interface GbenchResult {
  /** The run's name as Google Benchmark prints it, e.g. `Zipfian/ffkx_rbtree_update/key:32/.../threads:1`. */
  name: string;
  /** The registered benchmark name with the suffixes Google Benchmark appends removed: `Zipfian/ffkx_rbtree_update`. */
  family: string;
  /** The removed suffixes (`key:32/val:64/items:100000/trans:0/iterations:100000/manual_time/threads:1`). */
  args: string;
  /** Absent when the run was skipped or errored (its real_time is a meaningless 0). */
  ns_per_op?: number;
  items_per_second?: number;
  iterations: number;
  /** SkipWithError's message (`error_occurred`), or SkipWithMessage's (`skipped`, Google Benchmark >= 1.8). */
  error?: string;
  /** Set when the run has only aggregate rows (--benchmark_report_aggregates_only): the statistic its numbers are. */
  aggregate?: 'median' | 'mean';
  /** The repetitions behind an aggregate. */
  repetitions?: number;
}

/**
 * The segments Google Benchmark appends to a registered name (BenchmarkName::str: args, min_time,
 * min_warmup_time, iterations, repeats, time type, threads): `key:32`, a bare `8`, `iterations:100000`,
 * `min_time:0.500s`, `manual_time`, `threads:1`. Registered names may contain `/` themselves
 * (ffkx-bench's `->Name("Zipfian/ffkx_rbtree_update")`), so only these segments are cut, from the first one on.
 */
const GBENCH_SUFFIX = /^(?:[A-Za-z_]\w*:-?\d+(?:\.\d+)?s?|-?\d+|manual_time|real_time|process_time)$/;

export function gbenchFamily(name: string): { family: string; args: string } {
  const parts = name.split('/');
  let i = 1;
  while (i < parts.length && !GBENCH_SUFFIX.test(parts[i]!)) i++;
  return { family: parts.slice(0, i).join('/'), args: parts.slice(i).join('/') };
}

type GbenchRow = Record<string, unknown>;

/**
 * Google Benchmark JSON (--benchmark_out_format=json): per benchmark run ns/op and items/s, or why it has none.
 *
 * With --benchmark_repetitions=N the file holds the N `iteration` rows of each run and then its `aggregate`
 * rows (`_mean`, `_median`, `_stddev`, `_cv`); --benchmark_report_aggregates_only=true leaves out the
 * iteration rows (src/benchmark.cc, Report(): report_one), except for a run with fewer than two good
 * repetitions, which has no aggregates (src/statistics.cc, ComputeStats()). A run with iteration rows gives
 * one result per row; a run with aggregates only gives one result, from its `median` aggregate (else its
 * `mean`), marked with `aggregate` and `repetitions`. An empty file, or one with no usable row, is an error.
 */
export function parseGbenchJson(out: string): GbenchResult[] {
  let doc: { benchmarks?: GbenchRow[] };
  try {
    // Google Benchmark writes bare Infinity/NaN (e.g. items/s of a manual-time run that set no time); printf's
    // %e writes inf/nan (a zero time): neither is a number JSON knows, and neither is a measurement.
    doc = JSON.parse(out.replace(/:\s*-?(Infinity|NaN|inf|nan)\b/gi, ': null'));
  } catch (e) {
    fail('Google Benchmark JSON', (e as Error).message);
  }
  if (!Array.isArray(doc.benchmarks)) fail('Google Benchmark JSON', 'no "benchmarks" array');
  if (!doc.benchmarks.length) fail('Google Benchmark JSON', 'its "benchmarks" array is empty: no benchmark ran (did --benchmark_filter match nothing?)');
  const iterations = doc.benchmarks.filter((b) => (b.run_type ?? 'iteration') === 'iteration');
  const withIterations = new Set(iterations.map(gbenchRunName));
  const aggregates = doc.benchmarks.filter((b) => b.run_type === 'aggregate' && !withIterations.has(gbenchRunName(b)));
  const results = [...iterations.map((b) => gbenchResult(b)), ...gbenchFromAggregates(aggregates)];
  if (!results.length) {
    const kinds = [...new Set(aggregates.map((b) => String(b.aggregate_name)))].join(', ');
    fail(
      'Google Benchmark JSON',
      `${doc.benchmarks.length} rows, none an iteration row and no "median" or "mean" aggregate (aggregates: ${kinds || 'none'}): ` +
        'rerun without --benchmark_report_aggregates_only, or with the default statistics',
    );
  }
  return results;
}

/** The run a row belongs to: `run_name` (Google Benchmark >= 1.5), else the name without its `_<aggregate>` suffix. */
function gbenchRunName(b: GbenchRow): string {
  if (typeof b.run_name === 'string') return b.run_name;
  const name = String(b.name);
  const agg = b.run_type === 'aggregate' && typeof b.aggregate_name === 'string' ? `_${b.aggregate_name}` : '';
  return agg && name.endsWith(agg) ? name.slice(0, -agg.length) : name;
}

const GBENCH_TIME_SCALE: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };

function gbenchResult(b: GbenchRow, name = String(b.name)): GbenchResult {
  const error =
    b.error_occurred === true
      ? String(b.error_message ?? 'error')
      : b.skipped === true
        ? String(b.skip_message ?? 'skipped')
        : // A zero time is no measurement: a manual-time run that set none, or a clock that could not resolve it.
          Number(b.real_time) === 0 && Number(b.iterations) > 0
          ? `measured 0 ns for ${b.iterations} iterations: the clock could not resolve them (no time is reported)`
          : undefined;
  const ips = b.items_per_second === undefined || b.items_per_second === null ? undefined : Number(b.items_per_second);
  return {
    name,
    ...gbenchFamily(name),
    ns_per_op: error ? undefined : Number(b.real_time) * (GBENCH_TIME_SCALE[String(b.time_unit ?? 'ns')] ?? 1),
    items_per_second: error ? undefined : ips,
    iterations: Number(b.iterations),
    ...(error ? { error } : {}),
  };
}

/** One result per run that has only aggregate rows: its median (the statistic gbenchMetrics takes of repetitions), else its mean. */
function gbenchFromAggregates(rows: GbenchRow[]): GbenchResult[] {
  const byRun = new Map<string, GbenchRow[]>();
  for (const b of rows) byRun.set(gbenchRunName(b), [...(byRun.get(gbenchRunName(b)) ?? []), b]);
  const out: GbenchResult[] = [];
  for (const [run, rs] of byRun) {
    const pick = (['median', 'mean'] as const).map((k) => ({ k, b: rs.find((b) => b.aggregate_name === k) })).find((x) => x.b);
    if (!pick) continue;
    out.push({ ...gbenchResult(pick.b!, run), aggregate: pick.k, repetitions: Number(pick.b!.repetitions ?? pick.b!.iterations) });
  }
  return out;
}

/**
 * Metrics keyed on each benchmark's whole registered name (`Zipfian/ffkx_rbtree_update.ns_per_op`), so the
 * ffkx_/bpf_ pairs stay apart. A name registered with several argument sets keeps its arguments in the key;
 * repetitions of one run give their median. Errored runs give no number: they are listed in `errors`.
 */
export function gbenchMetrics(results: GbenchResult[]): { metrics: Metrics; errors: string[] } {
  const ok = results.filter((r) => r.ns_per_op !== undefined && Number.isFinite(r.ns_per_op));
  const argSets = new Map<string, Set<string>>();
  for (const r of ok) argSets.set(r.family, (argSets.get(r.family) ?? new Set()).add(r.args));
  const byKey = new Map<string, GbenchResult[]>();
  for (const r of ok) {
    const key = argSets.get(r.family)!.size > 1 ? `${r.family}/${r.args}` : r.family;
    byKey.set(key, [...(byKey.get(key) ?? []), r]);
  }
  const metrics: Metrics = {};
  for (const [key, rs] of byKey) {
    metrics[`${key}.ns_per_op`] = middle(rs.map((r) => r.ns_per_op!));
    const ips = rs.map((r) => r.items_per_second).filter((x): x is number => x !== undefined && Number.isFinite(x));
    if (ips.length) metrics[`${key}.items_per_second`] = middle(ips);
  }
  const errors = results.filter((r) => r.error !== undefined).map((r) => `${r.family}: ${r.error}`);
  if (errors.length) metrics.benchmarks_failed = errors.length;
  return { metrics, errors };
}

function middle(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// The guard-elision log (the verifier's prog=... messages), split by skeleton load: experiments/guard-log.ts.
export {
  parseGuardLines,
  compareGuards,
  splitGuardLoads,
  SEED_GUARDS,
  GUARD_PROG_PREFIX,
  type GuardLine,
  type GuardExpectation,
  type GuardLoad,
  type GuardRow,
  type GuardComparison,
} from './guard-log.js';
