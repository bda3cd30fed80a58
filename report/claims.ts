import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import type { SummaryRow } from '../experiments/runner.js';
import { LAB_ROOT } from '../core/paths.js';

const ClaimSchema = z.object({
  id: z.string(),
  wording: z.string(),
  experiment: z.string(),
  metric: z.string(),
  comparison: z.union([
    z.object({ kind: z.literal('ratio'), numerator: z.string(), denominator: z.string(), expect: z.string() }),
    z.object({ kind: z.literal('family-ratio'), numerator: z.string(), denominator: z.string(), expect: z.string() }),
    z.object({ kind: z.literal('exact-table') }),
  ]),
  paper_value: z.number().nullable(),
  paper_source: z.string(),
  tolerance: z.number(),
});
export type Claim = z.infer<typeof ClaimSchema>;

export const CLAIMS_FILE = join(LAB_ROOT, 'report', 'claims.yaml');

export function loadClaims(file = CLAIMS_FILE): Claim[] {
  return z.object({ claims: z.array(ClaimSchema) }).parse(parse(readFileSync(file, 'utf8'))).claims;
}

export interface ClaimVerdict {
  claim: Claim;
  verdict: 'reproduced' | 'deviates' | 'not run';
  /** Why it is `not run`; for the other verdicts, what was compared (and for `deviates`, what differs). */
  reason?: string;
  /** The measured comparison (ratio, or elided count), when both sides ran. */
  measured?: number;
  /** Per-variant medians with spread, for the table, including baselines that ran alone. */
  sides: Array<{ variant: string; median?: number; min?: number; max?: number; cv?: number; n: number; reason?: string }>;
  /** family-ratio claims: every numerator/denominator pair that was measured, with its ratio. */
  pairs?: BenchPair[];
  /** ratio claims over several parameter points: each point's sides and ratio (`sides` is then the first point's). */
  points?: PointRatio[];
}

export interface PointRatio {
  /** The parameter point, as summary rows name it (`set_get=10-90,threads=1`). */
  params: string;
  sides: ClaimVerdict['sides'];
  ratio?: number;
}

export interface BenchPair {
  /** The benchmark without its implementation prefix: `Zipfian/rbtree_update`. */
  benchmark: string;
  numerator: string;
  denominator: string;
  numerator_median: number;
  denominator_median: number;
  ratio: number;
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

function satisfies(x: number, expect: string): boolean {
  const m = expect.match(/^(>=|<=|>|<)\s*([\d.]+)$/);
  if (!m) return false;
  const v = Number(m[2]);
  return m[1] === '>' ? x > v : m[1] === '<' ? x < v : m[1] === '>=' ? x >= v : x <= v;
}

/** Set the measured numbers beside each claim. A side that did not run makes the claim `not run` with its reason. */
export function judgeClaims(claims: Claim[], rows: SummaryRow[]): ClaimVerdict[] {
  return claims.map((claim) => {
    const mine = rows.filter((r) => r.experiment === claim.experiment);
    const side = (variant: string, metric = claim.metric, params?: string) => {
      const r = mine.find((x) => x.variant === variant && x.metric === metric && (params === undefined || x.params === params));
      const any = mine.find((x) => x.variant === variant && (params === undefined || x.params === params));
      return {
        variant,
        median: r?.median,
        min: r?.min,
        max: r?.max,
        cv: r?.cv,
        n: r?.n_ok ?? 0,
        reason: r ? undefined : (any?.reason ?? (any ? `no ${metric} measured` : 'not in this run')),
      };
    };
    const c = claim.comparison;
    if (c.kind === 'ratio') {
      const judge = (ratio: number) =>
        claim.paper_value === null ? satisfies(ratio, c.expect) : Math.abs(ratio - claim.paper_value) <= claim.tolerance * claim.paper_value;
      // Every parameter point is judged (the paper profile's memcache has two): the claim holds only where it holds at each.
      const params = [...new Set(mine.filter((x) => x.variant === c.numerator || x.variant === c.denominator).map((x) => x.params))];
      if (params.length > 1) {
        const points: PointRatio[] = params.map((p) => {
          const [num, den] = [side(c.numerator, claim.metric, p), side(c.denominator, claim.metric, p)];
          return { params: p, sides: [num, den], ratio: num.median !== undefined && den.median ? num.median / den.median : undefined };
        });
        const measured = points.filter((p) => p.ratio !== undefined);
        const sides = points[0]!.sides;
        if (!measured.length) {
          const missing = [...new Set(points.flatMap((p) => p.sides.filter((s) => s.median === undefined).map((s) => `${s.variant}: ${s.reason}`)))];
          return { claim, verdict: 'not run', reason: missing.join('; ') || 'baseline is zero', sides, points };
        }
        const geo = Math.exp(measured.reduce((a, p) => a + Math.log(p.ratio!), 0) / measured.length);
        const failing = measured.filter((p) => !judge(p.ratio!));
        const unmeasured = points.filter((p) => p.ratio === undefined).map((p) => p.params);
        const reason =
          `per point: ${points.map((p) => `${p.params} ${p.ratio === undefined ? 'not run' : p.ratio.toFixed(2)}`).join('; ')}` +
          `${failing.length ? `; ${failing.length} of ${measured.length} measured points do not hold` : ''}` +
          `${unmeasured.length ? `; not measured: ${unmeasured.join(', ')}` : ''}`;
        return { claim, verdict: failing.length ? 'deviates' : 'reproduced', measured: geo, reason, sides, points };
      }
      const num = side(c.numerator);
      const den = side(c.denominator);
      const sides = [num, den];
      if (num.median === undefined || den.median === undefined || den.median === 0) {
        const missing = [num, den].filter((s) => s.median === undefined).map((s) => `${s.variant}: ${s.reason}`);
        return { claim, verdict: 'not run', reason: missing.join('; ') || 'baseline is zero', sides };
      }
      const ratio = num.median / den.median;
      return { claim, verdict: judge(ratio) ? 'reproduced' : 'deviates', measured: ratio, sides };
    }
    if (c.kind === 'family-ratio') {
      const suffix = `.${claim.metric}`;
      const values = new Map(
        mine.filter((r) => r.metric.endsWith(suffix) && r.median !== undefined).map((r) => [r.metric.slice(0, -suffix.length), r.median!] as const),
      );
      const { pairs, unpaired } = pairBenchmarks(values, c.numerator, c.denominator);
      const sides = [{ variant: 'kflex', n: mine[0]?.n_ok ?? 0, reason: mine[0]?.reason ?? (mine.length ? undefined : 'not in this run') }];
      if (!pairs.length)
        return {
          claim,
          verdict: 'not run',
          reason: sides[0]!.reason ?? `no ${c.numerator}/${c.denominator} pair with both sides measured (${values.size} benchmarks)`,
          sides,
          pairs,
        };
      const geo = Math.exp(pairs.reduce((a, p) => a + Math.log(p.ratio), 0) / pairs.length);
      const reason =
        `geometric mean of ${pairs.length} ${c.numerator}/${c.denominator} ${claim.metric} ratios ` +
        `(${pairs.map((p) => `${p.benchmark} ${p.ratio.toFixed(2)}`).join(', ')})` +
        `${unpaired.length ? `; not paired: ${unpaired.join(', ')}` : ''}`;
      return { claim, verdict: satisfies(geo, c.expect) ? 'reproduced' : 'deviates', measured: geo, reason, sides, pairs };
    }
    const exact = side('kflex', 'exact');
    const elided = side('kflex', 'measured_elided');
    if (exact.median === undefined) return { claim, verdict: 'not run', reason: exact.reason, sides: [elided] };
    const blocks = side('kflex', 'blocks').median;
    const agreeing = side('kflex', 'blocks_agreeing').median;
    const of = blocks === undefined ? '' : `${agreeing ?? 0} of ${blocks} skeleton loads`;
    if (exact.median === 1)
      return {
        claim,
        verdict: 'reproduced',
        measured: elided.median,
        reason: `${of ? `${of} match` : 'the log matches'} the seed's table exactly`,
        sides: [elided],
      };
    // Rows named by the guards experiment: `differs.<label> (<program>)` = blocks in which that row differs.
    const differs = mine
      .filter((r) => r.metric.startsWith('differs.') && (r.median ?? 0) > 0)
      .map((r) => `${r.metric.slice('differs.'.length)} in ${r.median} block${r.median === 1 ? '' : 's'}`);
    const what = differs.length ? differs.join('; ') : 'no bench_ffkx_* program in the log';
    return { claim, verdict: 'deviates', measured: elided.median, reason: `${of ? `${of} match the seed's table; ` : ''}differs: ${what}`, sides: [elided] };
  });
}
