import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import type { SummaryRow } from '../experiments/runner.js';

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

export const CLAIMS_FILE = join(dirname(fileURLToPath(import.meta.url)), 'claims.yaml');

export function loadClaims(file = CLAIMS_FILE): Claim[] {
  return z.object({ claims: z.array(ClaimSchema) }).parse(parse(readFileSync(file, 'utf8'))).claims;
}

export interface ClaimVerdict {
  claim: Claim;
  verdict: 'reproduced' | 'deviates' | 'not run';
  reason?: string;
  /** The measured comparison (ratio, or elided count), when both sides ran. */
  measured?: number;
  /** Per-variant medians with spread, for the table, including baselines that ran alone. */
  sides: Array<{ variant: string; median?: number; min?: number; max?: number; cv?: number; n: number; reason?: string }>;
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
    const side = (variant: string, metric = claim.metric) => {
      const r = mine.find((x) => x.variant === variant && x.metric === metric);
      const any = mine.find((x) => x.variant === variant);
      return { variant, median: r?.median, min: r?.min, max: r?.max, cv: r?.cv, n: r?.n_ok ?? 0, reason: r ? undefined : any?.reason ?? (any ? `no ${metric} measured` : 'not in this run') };
    };
    const c = claim.comparison;
    if (c.kind === 'ratio') {
      const num = side(c.numerator);
      const den = side(c.denominator);
      const sides = [num, den];
      if (num.median === undefined || den.median === undefined || den.median === 0) {
        const missing = [num, den].filter((s) => s.median === undefined).map((s) => `${s.variant}: ${s.reason}`);
        return { claim, verdict: 'not run', reason: missing.join('; ') || 'baseline is zero', sides };
      }
      const ratio = num.median / den.median;
      const ok = claim.paper_value === null ? satisfies(ratio, c.expect) : Math.abs(ratio - claim.paper_value) <= claim.tolerance * claim.paper_value;
      return { claim, verdict: ok ? 'reproduced' : 'deviates', measured: ratio, sides };
    }
    if (c.kind === 'family-ratio') {
      const fam = mine.filter((r) => r.metric.endsWith(`.${claim.metric}`) && r.median !== undefined);
      const ratios: number[] = [];
      for (const r of fam) {
        const name = r.metric.replace(`.${claim.metric}`, '');
        if (!name.includes(c.numerator)) continue;
        const peer = fam.find((x) => x.metric === r.metric.replace(c.numerator, c.denominator));
        if (peer?.median) ratios.push(r.median! / peer.median);
      }
      const sides = [{ variant: 'kflex', n: mine[0]?.n_ok ?? 0, reason: mine[0]?.reason ?? (mine.length ? undefined : 'not in this run') }];
      if (!ratios.length) return { claim, verdict: 'not run', reason: sides[0]!.reason ?? 'no ffkx_/bpf_ pairs measured', sides };
      const geo = Math.exp(ratios.reduce((a, x) => a + Math.log(x), 0) / ratios.length);
      return { claim, verdict: satisfies(geo, c.expect) ? 'reproduced' : 'deviates', measured: geo, sides };
    }
    const exact = side('kflex', 'exact');
    const elided = side('kflex', 'measured_elided');
    if (exact.median === undefined) return { claim, verdict: 'not run', reason: exact.reason, sides: [elided] };
    return { claim, verdict: exact.median === 1 ? 'reproduced' : 'deviates', measured: elided.median, sides: [elided] };
  });
}
