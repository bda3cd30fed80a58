/**
 * Pure summaries of a run's cells.json for the `bmc` and `arena` benchmarks of test/bench/run.ts (issues 18
 * and 19): records in, rows and printable lines out. Nothing here runs or reads anything.
 *
 *   bmc    memcache/userspace and memcache/bmc: per variant the median tps with min..max over the ok
 *          repetitions, BMC's hits (metric bmc_hits) per repetition, and bmc/userspace as the ratio of the
 *          medians with its spread over the repetition pairs (rep i against rep i, both ok).
 *   arena  datastructures/arena: for each arena_X/bpf_X pair the ratio arena ns/op / bpf ns/op of each ok
 *          repetition (both from the same cell: one run of kflex-arena-bench), its median and min..max,
 *          beside the median empty_floor ns/op (the harness's own cost per operation). The per-run
 *          equivalent over one Google Benchmark JSON is arenaPairSummary (experiments/arena-support.ts).
 */
import type { CellRecord } from '../../experiments/cells.js';
import { median } from '../../experiments/summary.js';

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spreadOf(xs: number[]): Spread | undefined {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (!ok.length) return undefined;
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
}

/** A cell that did not give its numbers: its repetition, status and the first line of its reason. */
export interface NotOk {
  rep: number;
  status: string;
  reason: string;
}

const firstLine = (s: string | undefined) => (s ?? '').split('\n')[0]!.trim() || '(no reason recorded)';
const notOk = (r: CellRecord): NotOk => ({ rep: r.rep, status: r.status, reason: firstLine(r.reason) });

// ---------------------------------------------------------------------------------------------------------
// bmc

export interface BmcRep {
  rep: number;
  tps: number;
  /** bmc only: BMC's cache hits and hits / GETs BMC received. */
  hits?: number;
  hitRatio?: number;
}

export interface BmcVariantRow {
  variant: string;
  /** Cells of this variant in the run (ok or not). */
  cells: number;
  ok: BmcRep[];
  notOk: NotOk[];
  tps?: Spread;
}

export interface BmcSummary {
  userspace: BmcVariantRow;
  bmc: BmcVariantRow;
  /** median(bmc tps) / median(userspace tps), and bmc_i / userspace_i over the repetitions both have ok. */
  ratio?: { ofMedians: number; min: number; max: number; n: number };
}

const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

function bmcVariant(records: CellRecord[], variant: string): BmcVariantRow {
  const cells = records.filter((r) => r.experiment === 'memcache' && r.variant === variant).sort((a, b) => a.rep - b.rep);
  const ok: BmcRep[] = [];
  const bad: NotOk[] = [];
  for (const r of cells) {
    const tps = num(r.metrics?.tps);
    if (r.status !== 'ok' || tps === undefined) {
      bad.push(r.status === 'ok' ? { rep: r.rep, status: 'ok', reason: 'no tps metric' } : notOk(r));
      continue;
    }
    const hits = num(r.metrics?.bmc_hits);
    const hitRatio = num(r.metrics?.bmc_hit_ratio);
    ok.push({ rep: r.rep, tps, ...(hits !== undefined ? { hits } : {}), ...(hitRatio !== undefined ? { hitRatio } : {}) });
  }
  const tps = spreadOf(ok.map((x) => x.tps));
  return { variant, cells: cells.length, ok, notOk: bad, ...(tps ? { tps } : {}) };
}

/** memcache/userspace against memcache/bmc from a run's cells.json records. */
export function bmcSummary(records: CellRecord[]): BmcSummary {
  const userspace = bmcVariant(records, 'userspace');
  const bmc = bmcVariant(records, 'bmc');
  const pairs = bmc.ok.flatMap((b) => {
    const u = userspace.ok.find((x) => x.rep === b.rep);
    return u && u.tps > 0 ? [b.tps / u.tps] : [];
  });
  const ratio =
    userspace.tps && bmc.tps && userspace.tps.median > 0 && pairs.length
      ? { ofMedians: bmc.tps.median / userspace.tps.median, min: Math.min(...pairs), max: Math.max(...pairs), n: pairs.length }
      : undefined;
  return { userspace, bmc, ...(ratio ? { ratio } : {}) };
}

/** Why the bmc cells gave no number, as one sentence naming the way out (undefined when one is ok). */
export function bmcMissing(s: BmcSummary, sourceGiven: boolean): string | undefined {
  if (s.bmc.ok.length) return undefined;
  if (!s.bmc.cells) return 'no memcache/bmc cell in this run';
  const skipped = s.bmc.notOk.filter((c) => c.status === 'skipped');
  const why = [...new Set(s.bmc.notOk.map((c) => `${c.status}: ${c.reason}`))].join(' | ');
  if (skipped.length === s.bmc.notOk.length && !sourceGiven)
    return `all ${s.bmc.cells} skipped, BMC is not built (KFLEX_BMC_SRC is not set; set it to a checkout of rs3lab/bmc-cache): ${why}`;
  return `none ok of ${s.bmc.cells}: ${why}`;
}

const f0 = (x: number) => x.toFixed(0);
const f2 = (x: number) => x.toFixed(2);
const spreadText = (s: Spread, f: (x: number) => string, unit = '') => `median ${f(s.median)}${unit} (${f(s.min)}..${f(s.max)}, n=${s.n})`;

/** The bmc benchmark's lines as [label, value] (run.ts pads and prints them). */
export function bmcLines(s: BmcSummary, sourceGiven: boolean): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const v of [s.userspace, s.bmc]) {
    const label = `  memcache/${v.variant} tps`;
    const bad = v.notOk.length ? `; not ok: ${v.notOk.map((c) => `rep ${c.rep} ${c.status}: ${c.reason}`).join(' | ')}` : '';
    if (v.tps) out.push([label, `${spreadText(v.tps, f0, ' tps')} of ${v.cells} cells; per rep ${v.ok.map((r) => f0(r.tps)).join(' ')}${bad}`]);
    else if (v.variant === 'bmc') out.push([label, `not measured: ${bmcMissing(s, sourceGiven)}`]);
    else out.push([label, `not measured: ${v.cells ? `none ok of ${v.cells}${bad}` : 'no cell in this run'}`]);
  }
  if (s.bmc.ok.length)
    out.push([
      '  BMC hits per repetition (bmc_hits)',
      s.bmc.ok.map((r) => `rep ${r.rep} ${r.hits ?? '?'}${r.hitRatio !== undefined ? ` (${(100 * r.hitRatio).toFixed(0)}% of GETs)` : ''}`).join(', '),
    ]);
  if (s.ratio)
    out.push([
      '  bmc / userspace tps',
      `${f2(s.ratio.ofMedians)} (ratio of medians); rep by rep ${f2(s.ratio.min)}..${f2(s.ratio.max)} (n=${s.ratio.n} pairs)`,
    ]);
  else out.push(['  bmc / userspace tps', 'no ratio: needs an ok repetition of both variants']);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// arena

export interface ArenaPairRow {
  dist: string;
  /** `hashmap_update` etc.: arena_<benchmark> against bpf_<benchmark>. */
  benchmark: string;
  arena?: Spread;
  bpf?: Spread;
  /** arena / bpf of each ok repetition where the cell has both. */
  ratio?: Spread;
}

export interface ArenaSummary {
  cells: number;
  ok: number;
  notOk: NotOk[];
  pairs: ArenaPairRow[];
  /** empty_floor ns/op per distribution over the ok repetitions. */
  floor: Record<string, Spread>;
  /** arena_ benchmarks without a bpf_ counterpart (the skip list): ns/op over the ok repetitions. */
  unpaired: Array<{ dist: string; benchmark: string; ns: Spread }>;
}

/** `Zipfian/arena_hashmap_update.ns_per_op` -> dist, side, benchmark; metrics with a `/args` suffix are not read. */
function parseArenaMetric(key: string): { dist: string; side: 'arena' | 'bpf' | 'floor'; benchmark: string } | undefined {
  const m = key.match(/^([^/]+)\/(?:(empty_floor)|(arena|bpf)_([^/]+))\.ns_per_op$/);
  if (!m) return undefined;
  if (m[2]) return { dist: m[1]!, side: 'floor', benchmark: 'empty_floor' };
  return { dist: m[1]!, side: m[3] as 'arena' | 'bpf', benchmark: m[4]! };
}

/** datastructures/arena from a run's cells.json records. */
export function arenaSummary(records: CellRecord[]): ArenaSummary {
  const cells = records.filter((r) => r.experiment === 'datastructures' && r.variant === 'arena').sort((a, b) => a.rep - b.rep);
  const ok = cells.filter((r) => r.status === 'ok' && r.metrics);
  const order: string[] = [];
  const values = new Map<string, { dist: string; benchmark: string; arena: number[]; bpf: number[]; ratios: number[] }>();
  const floors = new Map<string, number[]>();
  for (const r of ok) {
    const byKey = new Map<string, { arena?: number; bpf?: number }>();
    for (const [key, v] of Object.entries(r.metrics!)) {
      const m = parseArenaMetric(key);
      if (!m || typeof v !== 'number' || !Number.isFinite(v)) continue;
      if (m.side === 'floor') {
        floors.set(m.dist, [...(floors.get(m.dist) ?? []), v]);
        continue;
      }
      const k = `${m.dist}/${m.benchmark}`;
      if (!values.has(k)) {
        order.push(k);
        values.set(k, { dist: m.dist, benchmark: m.benchmark, arena: [], bpf: [], ratios: [] });
      }
      values.get(k)![m.side].push(v);
      byKey.set(k, { ...byKey.get(k), [m.side]: v });
    }
    for (const [k, { arena, bpf }] of byKey) if (arena !== undefined && bpf !== undefined && bpf > 0) values.get(k)!.ratios.push(arena / bpf);
  }
  const pairs: ArenaPairRow[] = [];
  const unpaired: ArenaSummary['unpaired'] = [];
  for (const k of order) {
    const v = values.get(k)!;
    const arena = spreadOf(v.arena);
    const bpf = spreadOf(v.bpf);
    if (arena && !bpf) {
      unpaired.push({ dist: v.dist, benchmark: v.benchmark, ns: arena });
      continue;
    }
    const ratio = spreadOf(v.ratios);
    pairs.push({ dist: v.dist, benchmark: v.benchmark, ...(arena ? { arena } : {}), ...(bpf ? { bpf } : {}), ...(ratio ? { ratio } : {}) });
  }
  const floor: Record<string, Spread> = {};
  for (const [dist, xs] of floors) {
    const s = spreadOf(xs);
    if (s) floor[dist] = s;
  }
  return { cells: cells.length, ok: ok.length, notOk: cells.filter((r) => !ok.includes(r)).map(notOk), pairs, floor, unpaired };
}

/** The arena benchmark's lines as [label, value] (run.ts pads and prints them). */
export function arenaLines(s: ArenaSummary): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const bad = s.notOk.length ? `; not ok: ${s.notOk.map((c) => `rep ${c.rep} ${c.status}: ${c.reason}`).join(' | ')}` : '';
  out.push(['  datastructures/arena cells', `${s.ok} ok of ${s.cells}${bad}`]);
  if (!s.ok) return out;
  for (const [dist, f] of Object.entries(s.floor)) out.push([`  ${dist}/empty_floor (the floor)`, spreadText(f, f0, ' ns/op')]);
  for (const p of s.pairs) {
    const floor = s.floor[p.dist];
    const side = (x: Spread | undefined) => (x ? `${f0(x.median)}` : '-');
    const beside = `arena ${side(p.arena)} / bpf ${side(p.bpf)} ns/op; floor ${floor ? f0(floor.median) : '-'} ns/op`;
    out.push([`  ${p.dist}/${p.benchmark} arena/bpf`, p.ratio ? `${spreadText(p.ratio, f2)}; ${beside}` : `no ratio (a side has no ok repetition); ${beside}`]);
  }
  for (const u of s.unpaired) out.push([`  ${u.dist}/arena_${u.benchmark} (no bpf_ pair)`, spreadText(u.ns, f0, ' ns/op')]);
  return out;
}
