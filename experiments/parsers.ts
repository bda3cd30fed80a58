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

/** redis-benchmark --csv: one row per test with rps and latency percentiles (ms). Metric names are prefixed by the test. */
export function parseRedisBenchmarkCsv(out: string): Metrics {
  const lines = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('"'));
  const header = lines.find((l) => l.startsWith('"test"'));
  if (!header) fail('redis-benchmark', 'no CSV header (run it with --csv)');
  const cols = splitCsv(header);
  const m: Metrics = {};
  for (const l of lines.filter((x) => x !== header)) {
    const cells = splitCsv(l);
    const test = (cells[0] ?? '').split(' ')[0]!.toLowerCase();
    cols.slice(1).forEach((c, i) => {
      const v = Number(cells[i + 1]);
      if (!Number.isNaN(v)) m[`${test}_${c}`] = v;
    });
  }
  if (!Object.keys(m).length) fail('redis-benchmark', 'CSV has no data rows');
  const rps = Object.entries(m).filter(([k]) => k.endsWith('_rps')).map(([, v]) => v);
  m.rps = rps.reduce((a, b) => a + b, 0) / rps.length;
  return m;
}

function splitCsv(line: string): string[] {
  return [...line.matchAll(/"((?:[^"]|"")*)"/g)].map((x) => x[1]!.replace(/""/g, '"'));
}

/**
 * memtier_benchmark's final `ALL STATS` table: rows Sets / Gets / Totals with Ops/sec, Hits/sec,
 * Misses/sec and Avg. Latency (ms). Column positions are read from the header line.
 */
export function parseMemtier(out: string): Metrics {
  const start = out.indexOf('ALL STATS');
  if (start < 0) fail('memtier_benchmark', 'no "ALL STATS" table');
  const lines = out.slice(start).split('\n');
  const headerLine = lines.find((l) => /Ops\/sec/.test(l));
  if (!headerLine) fail('memtier_benchmark', 'no header with Ops/sec');
  const header = headerLine.trim().split(/\s{2,}/).map((h) => h.trim());
  const m: Metrics = {};
  for (const l of lines) {
    const row = l.trim().match(/^(Sets|Gets|Totals)\s+(.*)$/);
    if (!row) continue;
    const vals = row[2]!.trim().split(/\s+/).map(Number);
    header.slice(1).forEach((h, i) => {
      const key = `${row[1]!.toLowerCase()}_${h.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/_$/, '')}`;
      if (vals[i] !== undefined && !Number.isNaN(vals[i])) m[key] = vals[i]!;
    });
  }
  if (m.totals_ops_sec === undefined) fail('memtier_benchmark', 'no Totals row');
  m.ops_sec = m.totals_ops_sec;
  return m;
}

export interface GbenchResult {
  name: string;
  /** Benchmark family without Google Benchmark's /iterations:N and /manual_time suffixes. */
  family: string;
  ns_per_op: number;
  items_per_second?: number;
  iterations: number;
}

/** Google Benchmark JSON (--benchmark_out_format=json): per benchmark ns/op and items/s. */
export function parseGbenchJson(out: string): GbenchResult[] {
  let doc: { benchmarks?: Array<Record<string, unknown>> };
  try {
    // Google Benchmark writes bare Infinity/NaN (e.g. items/s of a manual-time run that set no time).
    doc = JSON.parse(out.replace(/:\s*(-?Infinity|NaN)\b/g, ': null'));
  } catch (e) {
    fail('Google Benchmark JSON', (e as Error).message);
  }
  if (!Array.isArray(doc.benchmarks)) fail('Google Benchmark JSON', 'no "benchmarks" array');
  const scale: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };
  return doc.benchmarks
    .filter((b) => (b.run_type ?? 'iteration') === 'iteration')
    .map((b) => ({
      name: String(b.name),
      family: String(b.name).split('/')[0]!,
      ns_per_op: Number(b.real_time) * (scale[String(b.time_unit ?? 'ns')] ?? 1),
      items_per_second: b.items_per_second === undefined || b.items_per_second === null ? undefined : Number(b.items_per_second),
      iterations: Number(b.iterations),
    }));
}

export interface GuardLine {
  prog: string;
  range_analysis_call: number;
  elided: number;
}

/**
 * The KFlex verifier's `prog=NAME range_analysis_call=N elided=M` messages. They are printed without
 * a newline, so several can share one kernel-log line: match anywhere, in order. NAME is cut to 15 chars.
 */
export function parseGuardLines(text: string): GuardLine[] {
  return [...text.matchAll(/prog=(\S{1,15}?) range_analysis_call=(\d+) elided=(\d+)/g)].map((m) => ({ prog: m[1]!, range_analysis_call: Number(m[2]), elided: Number(m[3]) }));
}

export interface GuardExpectation extends GuardLine {
  label: string;
}

/** The seed README's table, in order: the exact expected result of experiment 5. */
export const SEED_GUARDS: GuardExpectation[] = [
  { prog: 'bench_ffkx_link', range_analysis_call: 4, elided: 4, label: 'Linked List Update' },
  { prog: 'bench_ffkx_link', range_analysis_call: 1, elided: 1, label: 'Linked List Lookup' },
  { prog: 'bench_ffkx_link', range_analysis_call: 2, elided: 2, label: 'Linked List Delete' },
  { prog: 'bench_ffkx_rbtr', range_analysis_call: 15, elided: 15, label: 'RBTree Update' },
  { prog: 'bench_ffkx_rbtr', range_analysis_call: 2, elided: 2, label: 'RBTree Lookup' },
  { prog: 'bench_ffkx_rbtr', range_analysis_call: 29, elided: 25, label: 'RBTree Delete' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 2, elided: 0, label: 'Hashmap Init' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 10, elided: 8, label: 'Hashmap Update' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 4, elided: 3, label: 'Hashmap Lookup' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 3, elided: 2, label: 'Hashmap Delete' },
  { prog: 'bench_ffkx_skip', range_analysis_call: 15, elided: 10, label: 'Skiplist Update' },
  { prog: 'bench_ffkx_skip', range_analysis_call: 3, elided: 2, label: 'Skiplist Lookup' },
  { prog: 'bench_ffkx_skip', range_analysis_call: 9, elided: 4, label: 'Skiplist Delete' },
  { prog: 'bench_ffkx_coun', range_analysis_call: 0, elided: 0, label: 'Countminsketch' },
  { prog: 'bench_ffkx_coun', range_analysis_call: 0, elided: 0, label: 'Countsketch' },
];

export interface GuardComparison {
  rows: Array<GuardExpectation & { measured?: GuardLine; match: boolean }>;
  expected_total: number;
  expected_elided: number;
  measured_total: number;
  measured_elided: number;
  exact: boolean;
}

/** Compare measured lines with the seed's table, position by position (names alone are ambiguous). */
export function compareGuards(measured: GuardLine[], expected: GuardExpectation[] = SEED_GUARDS): GuardComparison {
  const ffkx = measured.filter((g) => g.prog.startsWith('bench_ffkx_'));
  const rows = expected.map((e, i) => {
    const m = ffkx[i];
    return { ...e, measured: m, match: !!m && m.prog === e.prog && m.range_analysis_call === e.range_analysis_call && m.elided === e.elided };
  });
  const sum = (xs: GuardLine[], k: 'range_analysis_call' | 'elided') => xs.reduce((a, x) => a + x[k], 0);
  return {
    rows,
    expected_total: sum(expected, 'range_analysis_call'),
    expected_elided: sum(expected, 'elided'),
    measured_total: sum(ffkx, 'range_analysis_call'),
    measured_elided: sum(ffkx, 'elided'),
    exact: rows.every((r) => r.match) && ffkx.length === expected.length,
  };
}
