import type { ExperimentView } from '../experiments/types.js';
import { capabilityLine } from '../core/progress.js';
import type { Manifest, Deviation, HostFacts, FetchedSource, StageRecord } from '../core/rundir.js';
import type { LabEvent } from '../core/events.js';
import type { Source } from '../core/config.js';
import type { Params } from '../experiments/types.js';
import { paramsSlug, type CellRecord } from '../experiments/cells.js';
import type { SummaryRow } from '../experiments/summary.js';
import type { ClaimVerdict } from './claims.js';
import type { Interval } from './interval.js';

/** A line of a run's events.jsonl: the event and when it was recorded. */
export type TimedEvent = LabEvent & { t: string };

/** The deviation topics that change what was measured (as opposed to how the lab got there). */
export const IN_FORCE_TOPICS = ['scaled heap', 'client load', 'substitution'] as const;

export const fmt = (x: number | undefined, digits = 3): string =>
  x === undefined || !Number.isFinite(x) ? '–' : Math.abs(x) >= 1000 ? Math.round(x).toLocaleString('en-US') : Number(x.toPrecision(digits)).toString();

const short = (s: string | undefined, n = 12) => (s ? s.slice(0, n) : '');

// ---------------------------------------------------------------- summary

export interface VerdictCounts {
  reproduced: number;
  deviates: number;
  inconclusive: number;
  notRun: number;
}

export function verdictCounts(verdicts: ClaimVerdict[]): VerdictCounts {
  return {
    reproduced: verdicts.filter((v) => v.verdict === 'reproduced').length,
    deviates: verdicts.filter((v) => v.verdict === 'deviates').length,
    inconclusive: verdicts.filter((v) => v.verdict === 'inconclusive').length,
    notRun: verdicts.filter((v) => v.verdict === 'not run').length,
  };
}

/** The accelerator the VMs ran on, and the banner an evaluator must see first when it makes numbers incomparable. */
export function acceleratorFacts(m: Manifest): { accel: HostFacts['accel']; banner?: string } {
  const accel = m.host.accel ?? 'unknown';
  if (accel === 'tcg') return { accel, banner: 'TCG (software emulation, no KVM): functional only: not performance-comparable with the paper.' };
  return { accel };
}

/** Structured deviations of the run; runs written before they were structured carry strings. */
export function structuredDeviations(m: Manifest): Deviation[] {
  return (m.deviations ?? []).map((d: Deviation | string) => (typeof d === 'string' ? { topic: '—', artifact: '', lab: d, why: '', affects: '' } : d));
}

export function inForce(m: Manifest): Deviation[] {
  return structuredDeviations(m).filter((d) => (IN_FORCE_TOPICS as readonly string[]).includes(d.topic));
}

/** Deviations that change what a claim's ratio means, shown beside the claim (besides a scaled heap). */
export const CLAIM_FLAG_TOPICS: Readonly<Record<string, string>> = { 'XDP TX queues': 'XDP_TX locked' };

/**
 * Whether a deviation's `affects` names this experiment and one of these variants: 'memcache (kflex)' names
 * memcache/kflex only; a bare 'memcache' every variant of it.
 */
export function affectsVariants(d: Deviation, experiment: string, variants: readonly string[]): boolean {
  if (d.affects === 'all') return true;
  return d.affects.split(',').some((part) => {
    const m = part.trim().match(/^(\S+)(?:\s+\((\S+)\))?/);
    return m?.[1] === experiment && (m[2] === undefined || variants.includes(m[2]));
  });
}

/** Whether a deviation's `affects` names this experiment (a comma list, each item possibly followed by its params). */
export function affectsExperiment(d: Deviation, experiment: string): boolean {
  if (d.affects === 'all') return true;
  return d.affects.split(',').some((part) => part.trim().split(/\s+/)[0] === experiment);
}

// ---------------------------------------------------------------- badges

/** `ok` null: a fact the evaluator needs that is neither met nor unmet. */
export interface EvidenceItem {
  ok: boolean | null;
  text: string;
}

export interface BadgeEvidence {
  badge: 'Available' | 'Functional' | 'Reproduced';
  /** What the badge asks for, in the lab's words (the evaluator decides whether it is met). */
  asks: string;
  items: EvidenceItem[];
  /** How much of the evidence is there, in one phrase. */
  tally: string;
}

type StageManifests = Record<string, StageRecord | undefined>;

function stageManifests(m: Manifest): StageManifests {
  return Object.fromEntries(Object.entries(m.stages ?? {}).map(([k, v]) => [k, v.manifest]));
}

/** How a source is pinned by the profile: a commit or a digest, or why it is not. */
export function pinning(src: Source): { pinned: boolean; how: string } {
  switch (src.kind) {
    case 'git':
      return src.commit
        ? { pinned: true, how: `git commit ${short(src.commit)}` }
        : { pinned: false, how: `git ref ${src.ref} (a tag or branch, not a commit: it can move)` };
    case 'tarball':
      return { pinned: true, how: `tarball sha256 ${short(src.sha256)}` };
    case 'debian-package':
      return src.version
        ? { pinned: true, how: `Debian package ${src.package} ${src.version}${src.suite ? ` (${src.suite})` : ''}, exactly that version downloaded` }
        : { pinned: false, how: `Debian package ${src.package} (a name: the archive serves whatever version is current)` };
    case 'path':
      return { pinned: false, how: `local path ${src.path} (not published)` };
  }
}

/** What this run fetched of a named source, from the stage manifests (undefined: no stage used it). */
export function sourceUse(m: Manifest, name: string): { used: boolean; detail: string } {
  const cfg = m.config;
  const st = stageManifests(m);
  const fetched = (s: FetchedSource | undefined) => {
    if (!s) return 'fetched (no identity recorded)';
    const id = s.commit ? `commit ${short(String(s.commit))}` : s.sha256 ? `sha256 ${short(String(s.sha256))}` : 'no commit or digest recorded';
    return `fetched: ${s.origin ?? s.kind ?? ''}${s.version ? ` ${s.version}` : ''}, ${id}`.replace(/: ,/, ':');
  };
  if (cfg.kernel?.source === name) {
    const k = st.kernel;
    return k ? { used: true, detail: fetched(k.source) } : { used: false, detail: 'the kernel stage did not run' };
  }
  if (name === 'kflex') {
    const k = st.kflex;
    if (k) return { used: true, detail: fetched(k.source) };
    return { used: false, detail: cfg.image?.kflex === false ? 'not used by this profile (image.kflex: false)' : 'the kflex stage did not run' };
  }
  if (cfg.image?.memtier === name) {
    const mt = st.image?.memtier;
    if (!mt) return { used: false, detail: 'the image stage did not run' };
    return mt.available ? { used: true, detail: fetched(mt) } : { used: false, detail: `not fetched: ${mt.reason}` };
  }
  if (cfg.toolchain?.source === name) {
    const l = st.llvm;
    if (!l) return { used: false, detail: 'the llvm stage did not run' };
    return l.how === 'source' ? { used: true, detail: 'built from this source' } : { used: false, detail: `not used: clang from the ${l.how} (${l.clang})` };
  }
  return { used: false, detail: 'no stage of this run names it' };
}

function tally(items: EvidenceItem[]): string {
  const judged = items.filter((i) => i.ok !== null);
  return `${judged.filter((i) => i.ok).length} of ${judged.length} met`;
}

function available(m: Manifest): BadgeEvidence {
  const sources: Record<string, Source> = m.config?.sources ?? {};
  const items: EvidenceItem[] = Object.entries(sources).map(([name, src]) => {
    const p = pinning(src);
    const u = sourceUse(m, name);
    return { ok: p.pinned, text: `${name}: ${p.pinned ? 'pinned by' : 'not pinned:'} ${p.how}; ${u.detail}` };
  });
  const commit = m.host.lab_commit ?? '';
  items.push(
    !commit
      ? { ok: false, text: 'the lab itself: no git commit recorded (not run from a checkout)' }
      : commit.endsWith('+dirty')
        ? { ok: false, text: `the lab itself: commit ${short(commit)} with uncommitted changes (+dirty): the code that ran is not published` }
        : { ok: true, text: `the lab itself: commit ${short(commit)}` },
  );
  const image = stageManifests(m).image;
  if (image?.image_sha256)
    items.push({
      ok: null,
      text: `guest image sha256 ${short(String(image.image_sha256), 16)} (mmdebstrap, suite ${image.suite}; package versions in manifest.json)`,
    });
  return { badge: 'Available', asks: 'every source pinned by a commit or a digest, and fetched', items, tally: tally(items) };
}

/** One mark on the timeline: a stage, the testbed coming up, or a cell. */
export interface TimelineItem {
  kind: 'stage' | 'testbed' | 'cell';
  lane: string;
  label: string;
  status: string;
  /** Seconds since the timeline's origin. */
  start: number;
  seconds: number;
}

function functional(m: Manifest, records: CellRecord[], events: TimedEvent[] | undefined): BadgeEvidence {
  const items: EvidenceItem[] = [];
  const stages = Object.entries(m.stages ?? {});
  const stillFailed = [...lastStageEvents(events).values()].filter((e): e is Extract<TimedEvent, { type: 'stage-failed' }> => e.type === 'stage-failed');
  const built = stages
    .map(([id, s]) => `${id} ${s.fingerprint}${typeof s.manifest?.build_seconds === 'number' ? ` (${fmt(s.manifest.build_seconds)} s)` : ''}`)
    .join(', ');
  if (!stages.length) items.push({ ok: false, text: 'stages: none recorded in manifest.json (the run stopped before its builds finished)' });
  else
    items.push({
      ok: stillFailed.length === 0,
      text: `stages built: ${built}${stillFailed.length ? `; failed: ${stillFailed.map((f) => `${f.stage} (${f.error.split('\n')[0]})`).join('; ')}` : ''}`,
    });
  const tb = m.testbed;
  const up = (events ?? []).filter((e): e is Extract<TimedEvent, { type: 'testbed-up' }> => e.type === 'testbed-up');
  const lost = (events ?? []).filter((e): e is Extract<TimedEvent, { type: 'testbed-lost' }> => e.type === 'testbed-lost');
  const what = tb?.testbed === 'vm' || up.at(-1)?.kind === 'vm' ? 'server and client VMs' : 'server and client hosts';
  if (!tb && !up.length) items.push({ ok: false, text: `${what}: never came up (no testbed in manifest.json)` });
  else
    items.push({
      ok: lost.length === 0,
      text:
        `${what} up (${tb?.testbed ?? up.at(-1)?.kind}, ${m.host.accel}, link ${m.link ?? tb?.link ?? 'unknown'})` +
        `${up.length ? ` in ${fmt(up.at(-1)!.seconds)} s` : ''}${lost.length ? `; lost during the cells: ${lost.map((l) => l.why).join('; ')}` : ''}`,
    });
  const x = m.xdp_check;
  if (!x) items.push({ ok: false, text: 'native XDP: not checked (no xdp_check in manifest.json)' });
  else {
    const ok = x.mode === 'driver' && typeof x.sent === 'number' && x.sent > 0 && x.counted === x.sent;
    items.push({
      ok,
      text:
        `native XDP: ${x.mode} mode, ${x.counted ?? '?'} of ${x.sent ?? '?'} datagrams counted by the probe` +
        `${x.warnings?.length ? ` (${x.warnings.join('; ')})` : ''}`,
    });
  }
  const caps = m.capabilities;
  if (caps)
    items.push({
      ok: null,
      text:
        `server guest: kernel ${caps.kernelRelease}; ` +
        // A run from before the experiments declared their needs has the three fixed answers.
        (caps.programs
          ? capabilityLine({ btf: caps.btf, programs: caps.programs, la57: caps.la57 })
          : `KFlex heap map: ${caps.kflexKernel ? 'yes' : 'no'}; ffkx: ${caps.ffkx ? 'yes' : 'no'}; ` +
            `memtier: ${caps.memtier ? 'yes' : 'no'}; la57: ${caps.la57 ? 'yes' : 'no'}`) +
        `; ${caps.serverMemoryMb} MiB`,
    });
  const n = (rs: CellRecord[], st: string) => rs.filter((r) => r.status === st).length;
  const failed = records.filter((r) => r.status === 'failed');
  const silent = records.filter((r) => r.status === 'skipped' && !r.reason);
  const perExperiment = [...groupBy(records, (r) => r.experiment)].map(([e, rs]) => `${e} ${n(rs, 'ok')}/${n(rs, 'failed')}/${n(rs, 'skipped')}`).join(', ');
  if (records.length)
    items.push({
      ok: failed.length === 0 && silent.length === 0,
      text:
        `cells: ${n(records, 'ok')} ok, ${failed.length} failed, ${n(records, 'skipped')} skipped` +
        `${silent.length ? ` (${silent.length} without a stated reason)` : ''}` +
        `; ok/failed/skipped per experiment: ${perExperiment}`,
    });
  // One line per distinct reason, naming the cells it kept from running: the same probe result skips many.
  const cellsOf = (rs: CellRecord[]) => [...new Set(rs.map((r) => `${r.experiment}/${r.variant}`))].join(', ');
  for (const [why, rs] of groupBy(
    records.filter((r) => r.status === 'skipped' && r.reason),
    (r) => r.reason!.split('\n')[0]!,
  ))
    items.push({ ok: true, text: `skipped (${cellsOf(rs)}): ${why}` });
  for (const [why, rs] of groupBy(failed, (r) => (r.reason ?? 'no reason recorded').split('\n')[0]!))
    items.push({ ok: false, text: `failed (${rs.map((r) => `${r.experiment}/${r.variant} rep ${r.rep}`).join(', ')}): ${why}` });
  if (!records.length) items.push({ ok: false, text: 'experiments: no cell recorded (cells.json is empty)' });
  return {
    badge: 'Functional',
    asks: 'every stage built, both VMs up, native XDP verified, every experiment ran or was skipped for a stated reason',
    items,
    tally: tally(items),
  };
}

/** The CLAIM_FLAG_TOPICS deviations of a run that touch one of a claim's sides. */
export function claimFlags(m: Manifest, experiment: string, variants: readonly string[]): ClaimRow['flags'] {
  return structuredDeviations(m)
    .filter((d) => CLAIM_FLAG_TOPICS[d.topic] && d.affects !== 'all' && affectsVariants(d, experiment, variants))
    .map((d) => ({ label: CLAIM_FLAG_TOPICS[d.topic]!, deviation: d }));
}

function reproduced(m: Manifest, verdicts: ClaimVerdict[]): BadgeEvidence {
  const items: EvidenceItem[] = [];
  const { banner } = acceleratorFacts(m);
  if (banner) items.push({ ok: false, text: `every number below was measured under ${banner}` });
  const heaps = structuredDeviations(m).filter((d) => d.topic === 'scaled heap');
  for (const v of verdicts.filter((x) => x.verdict !== 'not run')) {
    const scaled = heaps.filter((d) => affectsExperiment(d, v.claim.experiment));
    items.push({
      // An inconclusive claim is neither met nor unmet: the noise band straddles the paper's bound.
      ok: v.verdict === 'inconclusive' ? null : v.verdict === 'reproduced',
      text:
        `${v.claim.id}: ${v.verdict}${v.measured !== undefined ? ` (${measuredText(v)})` : ''}${v.reason ? ` — ${v.reason}` : ''}` +
        `${scaled.length ? `; on a scaled heap (${scaled.map((d) => d.lab).join('; ')})` : ''}` +
        claimFlags(
          m,
          v.claim.experiment,
          v.sides.map((x) => x.variant),
        )
          .map((f) => `; ${f.label} (${f.deviation.lab})`)
          .join(''),
    });
  }
  // Claims that did not run for the same reason are one line: the reason is what the evaluator acts on.
  const why = (v: ClaimVerdict) => {
    const r = v.reason ?? 'no reason recorded';
    const missing = v.sides.filter((x) => x.median === undefined);
    // Name the side that did not run the same way for every kind of claim, so equal reasons group.
    return missing.length === 1 && !r.startsWith(`${missing[0]!.variant}: `) ? `${missing[0]!.variant}: ${r}` : r;
  };
  for (const [reason, vs] of groupBy(
    verdicts.filter((x) => x.verdict === 'not run'),
    why,
  ))
    items.push({ ok: false, text: `not run (${vs.map((v) => v.claim.id).join(', ')}): ${reason}` });
  const n = verdicts.filter((v) => v.verdict === 'reproduced').length;
  return { badge: 'Reproduced', asks: "the paper's claims hold on this run's measurements", items, tally: `${n} of ${verdicts.length} claims reproduced` };
}

export function badgeEvidence(m: Manifest, records: CellRecord[], verdicts: ClaimVerdict[], events?: TimedEvent[]): BadgeEvidence[] {
  return [available(m), functional(m, records, events), reproduced(m, verdicts)];
}

// ---------------------------------------------------------------- claims table

export interface ClaimRow {
  verdict: ClaimVerdict;
  kflex: string;
  baseline: string;
  ratio: string;
  /** The experiment whose chart the row links to. */
  chart: string;
  /** The cells behind the row: their run-relative directories (raw logs) and status. */
  cells: Array<{ href: string; label: string; status: string }>;
  /** The scaled-heap deviations that apply to the row's experiment. */
  scaledHeap: Deviation[];
  /** Other deviations on one of the row's two sides that change what its ratio means (CLAIM_FLAG_TOPICS), with their label. */
  flags: Array<{ label: string; deviation: Deviation }>;
}

function sideText(s: ClaimVerdict['sides'][number] | undefined): string {
  if (!s) return '–';
  if (s.median === undefined) return `${s.variant}: not run`;
  return `${s.variant}: ${fmt(s.median)} (min ${fmt(s.min)}, max ${fmt(s.max)}, CV ${((s.cv ?? 0) * 100).toFixed(1)}%, n=${s.n})`;
}

/** A ratio and its interval: `1.52 [1.41–1.60]`, or `1.52 (no interval, n=1/3)` with too few repetitions. */
function withInterval(ratio: number | undefined, interval: Interval | undefined, n?: Array<number | undefined>): string {
  if (ratio === undefined) return 'not run';
  if (interval) return `${fmt(ratio)} [${fmt(interval.lo)}–${fmt(interval.hi)}]`;
  return `${fmt(ratio)} (no interval${n ? `, n=${n.map((x) => x ?? 0).join('/')}` : ''})`;
}

const sidesN = (sides: ClaimVerdict['sides']) => sides.map((s) => s.values?.length ?? s.n);

/** The number a verdict rests on, with its interval when it has one. */
export function measuredText(v: ClaimVerdict): string {
  if (v.measured === undefined) return '–';
  if (v.claim.comparison.kind === 'exact-table') return fmt(v.measured);
  return `${withInterval(v.measured, v.interval)}${v.worst ? `, worst: ${v.worst}` : ''}`;
}

/** The ratio column: each point's or pair's ratio with its 95% interval and verdict, the worst one named. */
function ratioText(v: ClaimVerdict, pointLabel: (slug: string) => string): string {
  if (v.measured === undefined) return '–';
  const c = v.claim.comparison;
  if (c.kind === 'ratio') {
    if (v.points)
      return [
        ...v.points.map((p) => `${pointLabel(p.params)}: ${withInterval(p.ratio, p.interval, sidesN(p.sides))}${p.verdict ? ` ${p.verdict}` : ''}`),
        `worst: ${pointLabel(v.worst ?? '')}`,
      ].join('\n');
    return withInterval(v.measured, v.interval, sidesN(v.sides));
  }
  if (c.kind === 'family-ratio' && v.pairs?.length) {
    const geo = Math.exp(v.pairs.reduce((a, p) => a + Math.log(p.ratio), 0) / v.pairs.length);
    return [
      `worst: ${v.worst} ${withInterval(v.measured, v.interval)}`,
      ...v.pairs.map((p) => `${p.benchmark}: ${withInterval(p.ratio, p.interval, p.n)} ${p.verdict ?? ''}`.trimEnd()),
      `geo. mean of ${v.pairs.length} pairs ${fmt(geo)} (not judged)`,
    ].join('\n');
  }
  return `${fmt(v.measured)} elided`;
}

export function cellHref(r: CellRecord): string {
  return `runs/${r.experiment}/${r.variant}/${paramsSlug(r.params)}/rep-${r.rep}/`;
}

/** Whether a claim compares a variant that allocates a KFlex heap (unknown: assume it does, as older runs were judged). */
function comparesHeapVariant(claim: ClaimVerdict['claim'], heapVariants: string[] | undefined): boolean {
  if (!heapVariants) return true;
  const c = claim.comparison;
  const compared = c.kind === 'ratio' ? [c.numerator, c.denominator] : claim.variant ? [claim.variant] : heapVariants;
  return compared.some((x) => heapVariants.includes(x));
}

export function claimRows(
  verdicts: ClaimVerdict[],
  rows: SummaryRow[],
  records: CellRecord[],
  m: Manifest,
  views?: Record<string, ExperimentView>,
): ClaimRow[] {
  const heaps = structuredDeviations(m).filter((d) => d.topic === 'scaled heap');
  return verdicts.map((v) => {
    const c = v.claim.comparison;
    const exp = v.claim.experiment;
    const mine = records.filter((r) => r.experiment === exp);
    const points = pointLabels([...new Map(mine.map((r) => [paramsSlug(r.params), r.params])).values()]);
    const many = new Set(mine.map((r) => paramsSlug(r.params))).size > 1;
    const bySlug = new Map(mine.map((r) => [paramsSlug(r.params), r.params]));
    const pointLabel = (slug: string) => (bySlug.has(slug) ? points.label(bySlug.get(slug)!).replace(/\n/g, ', ') : slug);
    let kflex: string;
    let baseline: string;
    if (c.kind === 'ratio' && v.points) {
      kflex = v.points.map((p) => `${pointLabel(p.params)}: ${sideText(p.sides[0])}`).join('\n');
      baseline = v.points.map((p) => `${pointLabel(p.params)}: ${sideText(p.sides[1])}`).join('\n');
    } else if (c.kind === 'ratio') {
      kflex = sideText(v.sides[0]);
      baseline = sideText(v.sides[1]);
    } else if (c.kind === 'family-ratio') {
      const n = (p: string) =>
        rows.filter(
          (r) => r.experiment === exp && r.metric.endsWith(`.${v.claim.metric}`) && r.metric.split('/').some((s) => s.startsWith(p)) && r.median !== undefined,
        ).length;
      kflex = n(c.numerator) ? `${c.numerator}*: ${n(c.numerator)} benchmarks measured` : `${c.numerator}*: not run`;
      baseline = n(c.denominator) ? `${c.denominator}*: ${n(c.denominator)} benchmarks measured` : `${c.denominator}*: not run`;
    } else {
      const get = (metric: string) => rows.find((r) => r.experiment === exp && r.metric === metric)?.median;
      kflex =
        get('measured_elided') !== undefined ? `measured: ${fmt(get('measured_elided'))} of ${fmt(get('measured_total'))} guards elided` : 'measured: not run';
      baseline =
        v.claim.paper_value !== null
          ? `seed table: ${v.claim.paper_value}${get('expected_total') !== undefined ? ` of ${fmt(get('expected_total'))}` : ''} elided`
          : 'seed table';
    }
    return {
      verdict: v,
      kflex,
      baseline,
      ratio: ratioText(v, pointLabel),
      // datastructures has a chart per claimed variant (report.ts chartId); other experiments one.
      chart:
        verdicts.filter((x) => x.claim.experiment === exp).every((x) => x.claim.variant) && verdicts.filter((x) => x.claim.experiment === exp).length > 1
          ? `${exp}-${v.claim.variant}`
          : exp,
      cells: mine.map((r) => ({
        href: cellHref(r),
        label: `${r.variant}${many ? ` ${points.label(r.params).replace(/\n/g, ',')}` : ''} rep ${r.rep}`,
        status: r.status,
      })),
      // A ratio is on a scaled heap only when one of its two sides ran on one (BMC against memcached is not).
      scaledHeap: heaps.filter((d) => affectsExperiment(d, exp) && comparesHeapVariant(v.claim, views?.[exp]?.heapVariants)),
      flags: claimFlags(
        m,
        exp,
        v.sides.map((x) => x.variant),
      ),
    };
  });
}

// ---------------------------------------------------------------- deviations table

/** The run's deviations, then the cells that did not run or failed, so nothing differs unseen. */
export function deviationRows(m: Manifest, records: CellRecord[]): Deviation[] {
  const out = structuredDeviations(m);
  // Runs written before deviations were recorded say only TCG in the host facts.
  if (!out.length && acceleratorFacts(m).accel === 'tcg')
    out.push({
      topic: 'accelerator',
      artifact: 'bare metal',
      lab: 'VMs under TCG (no KVM)',
      why: 'every number is functional only, not performance-comparable with the paper',
      affects: 'all',
    });
  const skipped = new Map<string, string>();
  for (const r of records.filter((x) => x.status === 'skipped')) skipped.set(`${r.experiment}/${r.variant}`, r.reason ?? 'no reason recorded');
  for (const [k, why] of skipped) out.push({ topic: 'skipped', artifact: `runs ${k}`, lab: 'skipped', why, affects: k.split('/')[0]! });
  for (const r of records.filter((x) => x.status === 'failed'))
    out.push({
      topic: 'failed',
      artifact: `runs ${r.experiment}/${r.variant} rep ${r.rep}`,
      lab: 'failed',
      why: (r.reason ?? 'no reason recorded').split('\n')[0]!,
      affects: r.experiment,
    });
  return out;
}

// ---------------------------------------------------------------- timeline

const ms = (t: string | undefined) => (t ? Date.parse(t) : NaN);

/**
 * One mark per stage (its last outcome in the events), per testbed boot and per cell (cells.json: its start
 * and duration). Without events.jsonl (runs before it was kept) stages come from their manifests and the
 * boot is left out rather than guessed.
 */
export function timeline(m: Manifest, records: CellRecord[], events?: TimedEvent[]): { items: TimelineItem[]; origin: string | undefined; note?: string } {
  type Abs = Omit<TimelineItem, 'start'> & { at: number };
  const abs: Abs[] = [];
  let note: string | undefined;
  if (events?.length) {
    for (const [stage, e] of lastStageEvents(events)) {
      const end = ms(e.t);
      const seconds = e.type === 'stage-cached' ? 0 : (e as { seconds: number }).seconds;
      const status = e.type === 'stage-done' ? 'built' : e.type === 'stage-cached' ? 'cached' : 'failed';
      abs.push({
        kind: 'stage',
        lane: `stage ${stage}`,
        label: `${stage}: ${status}${seconds ? ` in ${fmt(seconds)} s` : ''}`,
        status,
        at: end - seconds * 1000,
        seconds,
      });
    }
    for (const e of events)
      if (e.type === 'testbed-up')
        abs.push({
          kind: 'testbed',
          lane: `${e.kind === 'vm' ? 'VMs' : 'hosts'} up`,
          label: `${e.kind} testbed up (${e.accel}, ${e.link}) in ${fmt(e.seconds)} s`,
          status: 'up',
          at: ms(e.t) - e.seconds * 1000,
          seconds: e.seconds,
        });
  } else {
    note =
      'this run has no events.jsonl: stage times come from their manifests (a stage built before the run shows as cached at its start) ' +
      'and the testbed boot is not shown';
    const created = ms(m.created);
    for (const [stage, s] of Object.entries(m.stages ?? {})) {
      const built = ms(s.manifest?.built_at);
      const seconds = Number(s.manifest?.build_seconds ?? 0);
      const before = !Number.isFinite(built) || built - seconds * 1000 < created;
      abs.push(
        before
          ? {
              kind: 'stage',
              lane: `stage ${stage}`,
              label: `${stage}: cached (built ${s.manifest?.built_at ?? 'earlier'})`,
              status: 'cached',
              at: created,
              seconds: 0,
            }
          : { kind: 'stage', lane: `stage ${stage}`, label: `${stage}: built in ${fmt(seconds)} s`, status: 'built', at: built - seconds * 1000, seconds },
      );
    }
  }
  for (const r of records)
    abs.push({
      kind: 'cell',
      lane: `${r.experiment} ${r.variant}`,
      label: `${r.experiment} ${r.variant} ${paramsSlug(r.params)} rep ${r.rep}: ${r.status} (${fmt(r.seconds)} s)`,
      status: r.status,
      at: ms(r.started),
      seconds: r.seconds,
    });
  const valid = abs.filter((a) => Number.isFinite(a.at));
  const t0 = Math.min(...valid.map((a) => a.at), ms(m.created));
  const items = valid.map(({ at, ...rest }) => ({ ...rest, start: (at - t0) / 1000 }));
  return { items, origin: Number.isFinite(t0) ? new Date(t0).toISOString() : undefined, note };
}

// ---------------------------------------------------------------- helpers

/**
 * A label per parameter point that names only what varies between the points (one `key=value` per line, so
 * nothing is cut), and the parameters every point shares, for the subtitle.
 */
export function pointLabels(points: Params[]): { label: (p: Params) => string; shared: string } {
  const keys = [...new Set(points.flatMap((p) => Object.keys(p)))];
  const varying = keys.filter((k) => new Set(points.map((p) => String(p[k]))).size > 1);
  const shown = varying.length ? varying : keys;
  const shared = keys
    .filter((k) => !varying.includes(k) && varying.length)
    .map((k) => `${k}=${points[0]?.[k]}`)
    .join(', ');
  return { label: (p) => shown.map((k) => `${k}=${p[k] ?? '–'}`).join('\n') || 'default', shared };
}

export function verdictText(v: ClaimVerdict): string {
  return v.reason && v.verdict !== 'reproduced' ? `${v.verdict} (${v.reason})` : v.verdict;
}

/** Each stage's last outcome (a resumed run may have failed a stage, then built it). */
export function lastStageEvents(events: TimedEvent[] | undefined): Map<string, TimedEvent> {
  const last = new Map<string, TimedEvent>();
  for (const e of events ?? []) if (e.type === 'stage-done' || e.type === 'stage-cached' || e.type === 'stage-failed') last.set(e.stage, e);
  return last;
}

export function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}
