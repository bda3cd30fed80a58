import { mulberry32 } from '../core/random.js';
/**
 * The noise band behind a ratio verdict: a percentile bootstrap over the repetitions of each side, with a
 * seeded generator so the same cells always give the same interval (a report rebuilt from a run directory
 * reads exactly as the first one).
 */

/** Two-sided coverage of every interval the report shows. */
export const INTERVAL_LEVEL = 0.95;
/** Bootstrap resamples per interval. */
export const RESAMPLES = 4000;
/** Fewer good repetitions than this on either side give no interval (and the verdict is inconclusive). */
export const MIN_REPETITIONS = 2;

export interface Interval {
  lo: number;
  hi: number;
  /** 0.95: the central 95% of the bootstrap ratios. */
  level: number;
  resamples: number;
}

/** FNV-1a of the seed text, then mulberry32: small, fast, and the same sequence on every platform. */
export function seededRandom(seed: string): () => number {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  return mulberry32(h);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/**
 * The interval of median(num) / median(den): each resample draws both sides' repetitions independently with
 * replacement (the two sides ran in different cells), and the interval is the central INTERVAL_LEVEL of the
 * resampled ratios. Undefined with fewer than MIN_REPETITIONS values on a side: one repetition has no spread.
 */
export function bootstrapRatio(num: number[], den: number[], seed: string, resamples = RESAMPLES): Interval | undefined {
  if (num.length < MIN_REPETITIONS || den.length < MIN_REPETITIONS) return undefined;
  const rnd = seededRandom(seed);
  const draw = (xs: number[]) => median(xs.map(() => xs[Math.floor(rnd() * xs.length)]!));
  const ratios: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const d = draw(den);
    ratios.push(d === 0 ? Number.POSITIVE_INFINITY : draw(num) / d);
  }
  ratios.sort((a, b) => a - b);
  const tail = (1 - INTERVAL_LEVEL) / 2;
  return { lo: quantile(ratios, tail), hi: quantile(ratios, 1 - tail), level: INTERVAL_LEVEL, resamples };
}

/** A claim's `expect`: `>1`, `>=1`, `<1`, `<=1.25`. */
export interface Expectation {
  op: '>' | '>=' | '<' | '<=';
  bound: number;
  text: string;
}

export const EXPECT_PATTERN = /^(>=|<=|>|<)\s*(\d+(?:\.\d+)?)$/;

export function parseExpect(text: string): Expectation {
  const m = text.trim().match(EXPECT_PATTERN);
  if (!m) throw new Error(`expect "${text}" is not one of >N, >=N, <N, <=N`);
  return { op: m[1] as Expectation['op'], bound: Number(m[2]), text: `${m[1]}${m[2]}` };
}

export function holds(x: number, e: Expectation): boolean {
  return e.op === '>' ? x > e.bound : e.op === '>=' ? x >= e.bound : e.op === '<' ? x < e.bound : x <= e.bound;
}

export type IntervalVerdict = 'reproduced' | 'deviates' | 'inconclusive';

/**
 * reproduced: the whole interval lies on the paper's side of the bound; deviates: the whole interval lies on
 * the other side; inconclusive: it straddles the bound, or there is no interval (too few repetitions).
 */
export function judgeInterval(interval: Interval | undefined, e: Expectation): IntervalVerdict {
  if (!interval) return 'inconclusive';
  const [lo, hi] = [holds(interval.lo, e), holds(interval.hi, e)];
  return lo && hi ? 'reproduced' : !lo && !hi ? 'deviates' : 'inconclusive';
}

/** How far a ratio lies on the wrong side of the bound (larger is worse): the order in which "worst" is named. */
export function shortfall(ratio: number, e: Expectation): number {
  return e.op === '>' || e.op === '>=' ? e.bound - ratio : ratio - e.bound;
}

const SEVERITY: Record<IntervalVerdict, number> = { reproduced: 0, inconclusive: 1, deviates: 2 };

/** The verdict of several judged ratios that must all hold: any deviating one deviates, else any inconclusive one. */
export function combineVerdicts(vs: IntervalVerdict[]): IntervalVerdict {
  return vs.reduce<IntervalVerdict>((a, v) => (SEVERITY[v] > SEVERITY[a] ? v : a), 'reproduced');
}

/** The worst of several judged ratios: the most severe verdict first, then the largest shortfall. */
export function worstOf<T extends { ratio: number; verdict: IntervalVerdict }>(xs: T[], e: Expectation): T | undefined {
  return [...xs].sort((a, b) => SEVERITY[b.verdict] - SEVERITY[a.verdict] || shortfall(b.ratio, e) - shortfall(a.ratio, e))[0];
}

const num = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(3)).toString() : String(x));

/** `1.52 [1.41, 1.60]`, or `1.52 (no interval: n=1/3)`. */
export function ratioWithInterval(ratio: number, interval: Interval | undefined, n?: [number, number]): string {
  if (interval) return `${num(ratio)} [${num(interval.lo)}, ${num(interval.hi)}]`;
  return `${num(ratio)} (no interval${n ? `: n=${n[0]}/${n[1]}` : ''})`;
}
