import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import type { SummaryRow } from '../experiments/summary.js';
import { paramsSlug, type CellRecord } from '../experiments/cells.js';
import { LAB_ROOT } from '../core/paths.js';
import {
  bootstrapRatio,
  combineVerdicts,
  EXPECT_PATTERN,
  INTERVAL_LEVEL,
  judgeInterval,
  MIN_REPETITIONS,
  parseExpect,
  ratioWithInterval,
  worstOf,
  type Expectation,
  type Interval,
  type IntervalVerdict,
} from './interval.js';

const Expect = z.string().regex(EXPECT_PATTERN, 'expect is one of >N, >=N, <N, <=N (the bound the ratio must clear)');

const ClaimSchema = z.object({
  id: z.string(),
  wording: z.string(),
  experiment: z.string(),
  /** The one variant whose cells hold both families (family-ratio, exact-table): its rows alone are judged. */
  variant: z.string().optional(),
  metric: z.string(),
  comparison: z.union([
    z.object({ kind: z.literal('ratio'), numerator: z.string(), denominator: z.string(), expect: Expect }),
    z.object({ kind: z.literal('family-ratio'), numerator: z.string(), denominator: z.string(), expect: Expect }),
    z.object({ kind: z.literal('exact-table') }),
  ]),
  paper_value: z.number().nullable(),
  paper_source: z.string(),
});
export type Claim = z.infer<typeof ClaimSchema>;

export const CLAIMS_FILE = join(LAB_ROOT, 'report', 'claims.yaml');

export function loadClaims(file = CLAIMS_FILE): Claim[] {
  return z.object({ claims: z.array(ClaimSchema) }).parse(parse(readFileSync(file, 'utf8'))).claims;
}

export type Verdict = IntervalVerdict | 'not run';

export interface Side {
  variant: string;
  median?: number;
  min?: number;
  max?: number;
  cv?: number;
  n: number;
  reason?: string;
  /** The good repetitions' values, in repetition order: what the interval is drawn from. */
  values?: number[];
}

export interface ClaimVerdict {
  claim: Claim;
  verdict: Verdict;
  /** Why it is `not run`; for the other verdicts, what was compared (and for `deviates`/`inconclusive`, where). */
  reason?: string;
  /**
   * The ratio the verdict rests on (the single point's; with several points or pairs, the worst one's), or the
   * elided count of the guard table.
   */
  measured?: number;
  /** The bootstrap interval of `measured` (absent with too few repetitions, and for the guard table). */
  interval?: Interval;
  /** With several points or pairs: the one named worst (its params, or its benchmark). */
  worst?: string;
  /** Per-variant medians with spread, for the table, including baselines that ran alone. */
  sides: Side[];
  /** family-ratio claims: every numerator/denominator pair that was measured, with its ratio and interval. */
  pairs?: BenchPair[];
  /** ratio claims over several parameter points: each point's sides, ratio and interval (`sides` is then the first point's). */
  points?: PointRatio[];
}

export interface PointRatio {
  /** The parameter point, as summary rows name it (`set_get=10-90,threads=1`). */
  params: string;
  sides: Side[];
  ratio?: number;
  interval?: Interval;
  verdict?: IntervalVerdict;
}

export interface BenchPair {
  /** The benchmark without its implementation prefix: `Zipfian/rbtree_update`. */
  benchmark: string;
  numerator: string;
  denominator: string;
  numerator_median: number;
  denominator_median: number;
  ratio: number;
  /** Set by judgeClaims: the interval over the cells' repetitions of each side, and the pair's verdict. */
  interval?: Interval;
  verdict?: IntervalVerdict;
  n?: [number, number];
}

/**
 * Pair each numerator benchmark with its denominator counterpart by name, as the paper compares them:
 * `Zipfian/ffkx_rbtree_update` with `Zipfian/bpf_rbtree_update` (the prefix is replaced in the segment
 * that carries it, nothing else). A benchmark without a counterpart (`bpf_graph_linked_list_*`, an
 * eBPF-only baseline, or a side whose run failed) is listed in `unpaired`, not guessed.
 */
export function pairBenchmarks(values: Map<string, number>, numPrefix: string, denPrefix: string): { pairs: BenchPair[]; unpaired: string[] } {
  const pairs: BenchPair[] = [];
  const used = new Set<string>();
  for (const [name, num] of values) {
    const parts = name.split('/');
    const at = parts.findIndex((p) => p.startsWith(numPrefix));
    if (at < 0) continue;
    const rest = parts[at]!.slice(numPrefix.length);
    const peer = [...parts.slice(0, at), denPrefix + rest, ...parts.slice(at + 1)].join('/');
    const den = values.get(peer);
    if (den === undefined || !(den > 0) || !(num > 0)) continue;
    used.add(name).add(peer);
    pairs.push({
      benchmark: [...parts.slice(0, at), rest, ...parts.slice(at + 1)].join('/'),
      numerator: name,
      denominator: peer,
      numerator_median: num,
      denominator_median: den,
      ratio: num / den,
    });
  }
  const unpaired = [...values.keys()].filter((k) => !used.has(k) && k.split('/').some((p) => p.startsWith(numPrefix) || p.startsWith(denPrefix)));
  return { pairs, unpaired };
}

/** The inputs of one claim: its experiment's summary rows and its cells. */
interface Evidence {
  rows: SummaryRow[];
  records: CellRecord[];
}

/** The good repetitions' values of one metric, in (params, repetition) order. */
function repetitionValues(ev: Evidence, variant: string, metric: string, params?: string): number[] {
  return ev.records
    .filter((r) => r.status === 'ok' && r.variant === variant && (params === undefined || paramsSlug(r.params) === params))
    .sort((a, b) => paramsSlug(a.params).localeCompare(paramsSlug(b.params)) || a.rep - b.rep)
    .map((r) => r.metrics?.[metric])
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
}

function sideOf(ev: Evidence, variant: string, metric: string, params?: string): Side {
  const r = ev.rows.find((x) => x.variant === variant && x.metric === metric && (params === undefined || x.params === params));
  const any = ev.rows.find((x) => x.variant === variant && (params === undefined || x.params === params));
  return {
    variant,
    median: r?.median,
    min: r?.min,
    max: r?.max,
    cv: r?.cv,
    n: r?.n_ok ?? 0,
    reason: r ? undefined : (any?.reason ?? (any ? `no ${metric} measured` : 'not in this run')),
    values: r ? repetitionValues(ev, variant, metric, params) : undefined,
  };
}

/** What an interval says against the bound, in words. */
function against(verdict: IntervalVerdict, interval: Interval | undefined, e: Expectation): string {
  if (!interval) return `: an interval needs at least ${MIN_REPETITIONS} repetitions on each side`;
  return verdict === 'reproduced' ? ` clears ${e.text}` : verdict === 'deviates' ? ` lies entirely outside ${e.text}` : ` straddles ${e.bound}`;
}

/** A single point's ratio, its interval and the repetitions behind it, against the bound. */
function pointText(p: PointRatio & { ratio: number; verdict: IntervalVerdict }, e: Expectation): string {
  const reps = p.sides.map((s) => `${s.values?.length ?? 0} ${s.variant}`).join(' / ');
  if (!p.interval) return `${Number(p.ratio.toPrecision(3))} with no interval (${reps} repetitions)${against(p.verdict, undefined, e)}`;
  const level = Math.round(INTERVAL_LEVEL * 100);
  return `${ratioWithInterval(p.ratio, p.interval)} (${level}% bootstrap interval over ${reps} repetitions)${against(p.verdict, p.interval, e)}`;
}

/**
 * What compiled the seed's guard table: the authors' LLVM built from llvm-project main ("latest LLVM (> 18.0)"),
 * its version never recorded, so no compiler of a run is known to be it.
 */
export const SEED_GUARD_COMPILER: string | undefined = undefined;

/** What compiles the lab's bench skeleton, whose verifier log the guard table is read from (images/kflex.ts: CLANG=clang-19 ./build.sh). */
export const LAB_GUARD_COMPILER = 'clang-19';

/**
 * Set the measured numbers beside each claim. A side that did not run makes the claim `not run` with its reason.
 * `guardCompiler` is what compiled the guard table's bytecode (default LAB_GUARD_COMPILER); `seedCompiler` the
 * seed's (default SEED_GUARD_COMPILER, unknown): only when they are the same does the table compare exactly.
 */
export function judgeClaims(
  claims: Claim[],
  rows: SummaryRow[],
  records: CellRecord[],
  o: { guardCompiler?: string; seedCompiler?: string } = {},
): ClaimVerdict[] {
  const compilers = { run: o.guardCompiler ?? LAB_GUARD_COMPILER, seed: 'seedCompiler' in o ? o.seedCompiler : SEED_GUARD_COMPILER };
  return claims.map((claim) => {
    const mine = (r: { experiment: string; variant: string }) => r.experiment === claim.experiment && (!claim.variant || r.variant === claim.variant);
    const ev = { rows: rows.filter(mine), records: records.filter(mine) };
    const c = claim.comparison;
    if (c.kind === 'ratio') return judgeRatio(claim, c, ev);
    if (c.kind === 'family-ratio') return judgeFamily(claim, c, ev);
    return judgeExactTable(claim, ev, compilers);
  });
}

type RatioComparison = { numerator: string; denominator: string; expect: string };

function judgePoint(claim: Claim, c: RatioComparison, e: Expectation, ev: Evidence, params?: string): PointRatio {
  const sides = [sideOf(ev, c.numerator, claim.metric, params), sideOf(ev, c.denominator, claim.metric, params)];
  const [num, den] = sides as [Side, Side];
  if (num.median === undefined || !den.median) return { params: params ?? '', sides };
  const interval = bootstrapRatio(num.values ?? [], den.values ?? [], `${claim.id}|${params ?? ''}`);
  return { params: params ?? '', sides, ratio: num.median / den.median, interval, verdict: judgeInterval(interval, e) };
}

function notRunReason(points: PointRatio[]): string {
  const missing = [...new Set(points.flatMap((p) => p.sides.filter((s) => s.median === undefined).map((s) => `${s.variant}: ${s.reason}`)))];
  return missing.join('; ') || 'baseline is zero';
}

/**
 * A ratio claim (numerator variant / denominator variant), judged at every parameter point: each point's ratio of
 * medians gets its bootstrap interval and verdict; the claim holds only where it holds at each point, so any
 * deviating point deviates, else any inconclusive point is inconclusive, and the worst point is named.
 */
function judgeRatio(claim: Claim, c: RatioComparison, ev: Evidence): ClaimVerdict {
  const e = parseExpect(c.expect);
  const params = [...new Set(ev.rows.filter((x) => x.variant === c.numerator || x.variant === c.denominator).map((x) => x.params))];
  if (params.length <= 1) {
    const p = judgePoint(claim, c, e, ev, params[0]);
    if (p.ratio === undefined) return { claim, verdict: 'not run', reason: notRunReason([p]), sides: p.sides };
    const what = pointText(p as PointRatio & { ratio: number; verdict: IntervalVerdict }, e);
    return { claim, verdict: p.verdict!, measured: p.ratio, interval: p.interval, reason: what, sides: p.sides };
  }
  const points = params.map((p) => judgePoint(claim, c, e, ev, p));
  const measured = points.filter((p): p is PointRatio & { ratio: number; verdict: IntervalVerdict } => p.ratio !== undefined);
  const sides = points[0]!.sides;
  if (!measured.length) return { claim, verdict: 'not run', reason: notRunReason(points), sides, points };
  const worst = worstOf(measured, e)!;
  const unmeasured = points.filter((p) => p.ratio === undefined).map((p) => p.params);
  const reason =
    `per point against ${e.text}: ${points
      .map((p) => `${p.params} ${p.ratio === undefined ? 'not run' : `${ratioWithInterval(p.ratio, p.interval)} ${p.verdict}`}`)
      .join('; ')}` + `; worst: ${worst.params}${unmeasured.length ? `; not measured: ${unmeasured.join(', ')}` : ''}`;
  const verdict = combineVerdicts(measured.map((p) => p.verdict));
  return { claim, verdict, measured: worst.ratio, interval: worst.interval, worst: worst.params, reason, sides, points };
}

/** Each benchmark's good repetitions over the experiment's cells, keyed on the benchmark name (metric without `.<metric>`). */
function benchmarkValues(ev: Evidence, metric: string): Map<string, number[]> {
  const suffix = `.${metric}`;
  const out = new Map<string, number[]>();
  for (const r of ev.rows.filter((x) => x.metric.endsWith(suffix) && x.median !== undefined)) {
    const name = r.metric.slice(0, -suffix.length);
    if (!out.has(name)) out.set(name, repetitionValues(ev, r.variant, r.metric));
  }
  return out;
}

/**
 * A family-ratio claim: every numerator/denominator pair of benchmarks gets its ratio of medians, its bootstrap
 * interval over the cells and its verdict. Every pair must hold: the worst pair decides and is named; the
 * geometric mean is shown, never judged (it would hide one structure that is 3x slower).
 */
function judgeFamily(claim: Claim, c: RatioComparison, ev: Evidence): ClaimVerdict {
  const e = parseExpect(c.expect);
  const values = benchmarkValues(ev, claim.metric);
  const medians = new Map(
    ev.rows.filter((r) => r.metric.endsWith(`.${claim.metric}`) && r.median !== undefined).map((r) => [r.metric.slice(0, -claim.metric.length - 1), r.median!]),
  );
  const { pairs, unpaired } = pairBenchmarks(medians, c.numerator, c.denominator);
  const sides: Side[] = [
    { variant: claim.variant ?? 'kflex', n: ev.rows[0]?.n_ok ?? 0, reason: ev.rows[0]?.reason ?? (ev.rows.length ? undefined : 'not in this run') },
  ];
  if (!pairs.length)
    return {
      claim,
      verdict: 'not run',
      reason: sides[0]!.reason ?? `no ${c.numerator}/${c.denominator} pair with both sides measured (${medians.size} benchmarks)`,
      sides,
      pairs,
    };
  for (const p of pairs) {
    const [nv, dv] = [values.get(p.numerator) ?? [], values.get(p.denominator) ?? []];
    p.n = [nv.length, dv.length];
    p.interval = bootstrapRatio(nv, dv, `${claim.id}|${p.benchmark}`);
    p.verdict = judgeInterval(p.interval, e);
  }
  const judged = pairs as Array<BenchPair & { verdict: IntervalVerdict }>;
  const worst = worstOf(judged, e)!;
  const count = (v: IntervalVerdict) => judged.filter((p) => p.verdict === v).length;
  const geo = Math.exp(pairs.reduce((a, p) => a + Math.log(p.ratio), 0) / pairs.length);
  const reason =
    `worst pair ${worst.benchmark} ${ratioWithInterval(worst.ratio, worst.interval, worst.n)}${against(worst.verdict, worst.interval, e)}; ` +
    `${pairs.length} ${c.numerator}/${c.denominator} ${claim.metric} pairs against ${e.text}: ` +
    `${count('reproduced')} reproduced, ${count('inconclusive')} inconclusive, ${count('deviates')} deviate; ` +
    `geometric mean ${Number(geo.toPrecision(3))}` +
    `${unpaired.length ? `; not paired: ${unpaired.join(', ')}` : ''}`;
  const verdict = combineVerdicts(judged.map((p) => p.verdict));
  return { claim, verdict, measured: worst.ratio, interval: worst.interval, worst: worst.benchmark, reason, sides, pairs };
}

/**
 * The guard table: reproduced only when every skeleton load in the log equals the seed's table. The counts follow
 * the bytecode (KFlex-linux a6d0177 verifier.c adjust_ptr_min_max_vals counts heap-pointer arithmetic per verifier
 * visit and reads no map size, so a scaled heap cannot change them; another clang can): unless the run's compiler
 * is the seed's, the verdict says so instead of claiming an exact comparison.
 */
function judgeExactTable(claim: Claim, ev: Evidence, compilers: { run: string; seed?: string }): ClaimVerdict {
  const side = (metric: string) => sideOf(ev, 'kflex', metric);
  const exact = side('exact');
  const elided = side('measured_elided');
  if (exact.median === undefined) return { claim, verdict: 'not run', reason: exact.reason, sides: [elided] };
  const blocks = side('blocks').median;
  const agreeing = side('blocks_agreeing').median;
  const of = blocks === undefined ? '' : `${agreeing ?? 0} of ${blocks} skeleton loads`;
  const rest = loadsNote(ev, blocks);
  const same = compilers.seed !== undefined && compilers.run === compilers.seed;
  const caveat = same ? '' : `; ${compilerCaveat(compilers)}`;
  if (exact.median === 1)
    return {
      claim,
      verdict: 'reproduced',
      measured: elided.median,
      reason: `${of ? `${of} match` : 'the log matches'} the seed's table${same ? ' exactly' : ''}${rest}${caveat}`,
      sides: [elided],
    };
  // Rows named by the guards experiment: `differs.<label> (<program>)` = blocks in which that row differs.
  const differs = ev.rows
    .filter((r) => r.metric.startsWith('differs.') && (r.median ?? 0) > 0)
    .map((r) => `${r.metric.slice('differs.'.length)} in ${r.median} block${r.median === 1 ? '' : 's'}`);
  const what = differs.length ? differs.join('; ') : 'no bench_ffkx_* program in the log';
  return {
    claim,
    verdict: 'deviates',
    measured: elided.median,
    reason: `${of ? `${of} match the seed's table${rest}; ` : ''}differs: ${what}${caveat}`,
    sides: [elided],
  };
}

/** Why a guard table compiled by another clang is not an exact comparison with the seed's. */
export function compilerCaveat(compilers: { run: string; seed?: string }): string {
  return (
    `guard counts depend on the bytecode, so on the clang version: this run's skeleton was compiled by ${compilers.run}, ` +
    `the seed's by ${compilers.seed ?? "the authors' LLVM (> 18, built from llvm-project, version not recorded)"}, ` +
    "so this compares the verifier's counts on this run's bytecode, not an exact reproduction of the seed's " +
    "(the heap's size cannot change them: the verifier's range analysis reads no map size)"
  );
}

/** The loads that are not complete (rejected, stopped) and the log's cut-off ends, from the guards metrics. */
function loadsNote(ev: Evidence, complete: number | undefined): string {
  const m = (k: string) => ev.rows.find((r) => r.variant === 'kflex' && r.metric === k)?.median;
  const found = m('loads_found');
  const notes = [
    found !== undefined && complete !== undefined && found > complete ? `${found - complete} of ${found} loads not complete` : '',
    m('loads_rejected') ? `${m('loads_rejected')} rejected by the verifier` : '',
    m('loads_stopped') ? `${m('loads_stopped')} stopped inside the table` : '',
    m('cut_head') ? "the log's head was cut off" : '',
    m('cut_tail') ? 'the log ends inside a load' : '',
  ].filter(Boolean);
  return notes.length ? ` (${notes.join('; ')})` : '';
}
