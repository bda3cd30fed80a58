import type { ExperimentView } from '../experiments/types.js';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { median } from '../experiments/summary.js';
import { paramsSlug, type CellRecord } from '../experiments/cells.js';
import { pairBenchmarks, type Claim } from './claims.js';
import { pointLabels, type TimelineItem } from './model.js';

/**
 * The report's charts as Vega-Lite specs, rendered to SVG in Node (no browser, no network). Every chart draws
 * each repetition as one point in a layer named `dots` (SVG: `g.dots_marks > path`), over a bar at the
 * median; the timeline draws one rect per item in `timeline_stage`, `timeline_testbed` and `timeline_cell`.
 */

export interface Chart {
  experiment: string;
  /** Inline SVG, or undefined with the reason there is nothing to draw. */
  svg?: string;
  empty?: string;
  /** Repetitions drawn as dots (what a reader should count). */
  dots: number;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
const FONT = { font: 'system-ui, sans-serif', labelFontSize: 11, titleFontSize: 12 };
const CONFIG = {
  axis: { ...FONT, labelLimit: 0 },
  legend: { ...FONT, labelLimit: 0, orient: 'top' },
  title: { fontSize: 14, subtitleFontSize: 11, anchor: 'start' },
  view: { stroke: '#ddd' },
};

async function render(spec: Record<string, unknown>): Promise<string> {
  const compiled = vl.compile({ $schema: SCHEMA, config: CONFIG, ...spec } as unknown as vl.TopLevelSpec).spec;
  return new vega.View(vega.parse(compiled), { renderer: 'none' }).toSVG();
}

function value(r: CellRecord, metric: string): number | undefined {
  const x = r.metrics?.[metric];
  return r.status === 'ok' && typeof x === 'number' && Number.isFinite(x) ? x : undefined;
}

/** Variants in display order: KFlex first, then its baselines as the records list them. */
function variantsOf(records: CellRecord[]): string[] {
  const vs = [...new Set(records.map((r) => r.variant))];
  return [...vs.filter((v) => v === 'kflex'), ...vs.filter((v) => v !== 'kflex')];
}

const HOW = 'bar: median; dots: each repetition';
const LABEL_LINES = "split(datum.label, '\\n')";

/** KFlex and its baselines side by side per parameter point: a bar at the median, a dot per repetition. */
export async function variantChart(experiment: string, metric: string, records: CellRecord[]): Promise<Chart> {
  const variants = variantsOf(records);
  const points = [...new Map(records.map((r) => [paramsSlug(r.params), r.params])).values()];
  const { label, shared } = pointLabels(points);
  const dots = records.flatMap((r) => {
    const v = value(r, metric);
    return v === undefined ? [] : [{ point: label(r.params), variant: r.variant, value: v, rep: r.rep, slot: `${r.variant}#${r.rep}` }];
  });
  // Each repetition has a slot of its own inside its variant's bar, so equal values stay separate dots.
  const maxRep = Math.max(...records.map((r) => r.rep));
  const slots = variants.flatMap((v) => Array.from({ length: maxRep }, (_, i) => `${v}#${i + 1}`));
  if (!dots.length) return { experiment, empty: `no ${metric} was measured (see the claims table for why)`, dots: 0 };
  const bars: Array<Record<string, unknown>> = [];
  const notRun: Array<Record<string, unknown>> = [];
  for (const p of points)
    for (const v of variants) {
      const mine = records.filter((r) => r.variant === v && paramsSlug(r.params) === paramsSlug(p));
      const xs = dots.filter((d) => d.variant === v && d.point === label(p)).map((d) => d.value);
      if (xs.length) bars.push({ point: label(p), variant: v, median: median(xs), n: xs.length });
      else if (mine.length)
        notRun.push({ point: label(p), variant: v, text: `${v}: ${[...new Set(mine.map((r) => (r.status === 'ok' ? `no ${metric}` : r.status)))].join('/')}` });
    }
  const x = { field: 'point', type: 'nominal', title: null, sort: points.map(label), axis: { labelExpr: LABEL_LINES, labelAngle: 0, labelPadding: 6 } };
  // Every layer's offset scale names every variant: a variant that did not run keeps its place beside the others.
  const xOffset = { field: 'variant', type: 'nominal', scale: { domain: variants, paddingInner: 0.15 } };
  const color = { field: 'variant', type: 'nominal', title: 'variant', scale: { domain: variants } };
  const yMax = Math.max(...dots.map((d) => d.value));
  const y = { type: 'quantitative', title: metric, scale: { zero: true, nice: true, domainMax: yMax * 1.08 } };
  const svg = await render({
    width: Math.max(320, points.length * variants.length * 70),
    height: 240,
    title: { text: experiment, subtitle: [HOW, ...(shared ? [`all points: ${shared}`] : [])] },
    layer: [
      {
        name: 'bars',
        data: { values: bars },
        mark: { type: 'bar', opacity: 0.55 },
        encoding: { x, xOffset, color, y: { field: 'median', stack: null, ...y } },
      },
      {
        name: 'dots',
        data: { values: dots },
        mark: { type: 'point', filled: true, size: 45, opacity: 1, stroke: '#222', strokeWidth: 0.6 },
        encoding: {
          x,
          xOffset: { field: 'slot', type: 'nominal', scale: { domain: slots, padding: 0.5 } },
          color,
          y: { field: 'value', ...y },
          tooltip: [{ field: 'variant' }, { field: 'rep' }, { field: 'value' }],
        },
      },
      ...(notRun.length
        ? [
            {
              name: 'notrun',
              data: { values: notRun },
              mark: { type: 'text', angle: 270, align: 'left', baseline: 'middle', dx: 4, fontSize: 11, fill: '#666' },
              encoding: {
                x,
                xOffset: { field: 'variant', type: 'nominal', scale: { domain: variants, padding: 0.5 } },
                y: { datum: 0, type: 'quantitative' },
                text: { field: 'text' },
              },
            },
          ]
        : []),
    ],
    resolve: { scale: { xOffset: 'independent' } },
  });
  return { experiment, svg, dots: dots.length };
}

/** Each numerator benchmark (ffkx_*) beside its denominator twin (bpf_*), one dot per repetition. */
export async function pairedChart(experiment: string, claim: Claim, records: CellRecord[]): Promise<Chart> {
  const c = claim.comparison;
  const num = c.kind === 'family-ratio' ? c.numerator : 'ffkx_';
  const den = c.kind === 'family-ratio' ? c.denominator : 'bpf_';
  const suffix = `.${claim.metric}`;
  const dots = records.flatMap((r) =>
    r.status !== 'ok'
      ? []
      : Object.entries(r.metrics ?? {})
          .filter(([k, v]) => k.endsWith(suffix) && typeof v === 'number' && Number.isFinite(v))
          .map(([k, v]) => ({ name: k.slice(0, -suffix.length), value: v as number, rep: r.rep })),
  );
  if (!dots.length) return { experiment, empty: `no ${claim.metric} was measured (see the claims table for why)`, dots: 0 };
  const names = [...new Set(dots.map((d) => d.name))];
  const medians = new Map(names.map((n) => [n, median(dots.filter((d) => d.name === n).map((d) => d.value))]));
  const { pairs } = pairBenchmarks(medians, num, den);
  const where = new Map<string, { bench: string; impl: string }>();
  for (const p of pairs) {
    where.set(p.numerator, { bench: p.benchmark, impl: num });
    where.set(p.denominator, { bench: p.benchmark, impl: den });
  }
  const implOf = (n: string) => (n.split('/').some((s) => s.startsWith(num)) ? num : n.split('/').some((s) => s.startsWith(den)) ? den : 'other');
  // A benchmark without a twin keeps its own name and says so, rather than being paired by a guess.
  for (const n of names) if (!where.has(n)) where.set(n, { bench: `${n} (no twin)`, impl: implOf(n) });
  const impls = [num, den, ...(names.some((n) => implOf(n) === 'other') ? ['other'] : [])];
  const pts = dots.map((d) => ({ ...where.get(d.name)!, name: d.name, value: d.value, rep: d.rep }));
  const bars = names.map((n) => ({ ...where.get(n)!, name: n, median: medians.get(n) }));
  const benches = [...new Set(bars.map((b) => b.bench))].sort();
  const all = dots.map((d) => d.value).filter((v) => v > 0);
  const log = all.length > 0 && Math.max(...all) / Math.min(...all) > 50;
  const y = { field: 'bench', type: 'nominal', title: null, sort: benches };
  const yOffset = { field: 'impl', type: 'nominal', sort: impls };
  const color = { field: 'impl', type: 'nominal', title: 'implementation', scale: { domain: impls } };
  const x = { type: 'quantitative', title: `${claim.metric}${log ? ' (log scale)' : ''}`, scale: log ? { type: 'log' } : { zero: true } };
  const svg = await render({
    width: 560,
    height: benches.length * (impls.length * 12 + 8),
    title: { text: experiment, subtitle: [HOW, `${num}* beside its ${den}* twin (paired by name)`] },
    layer: [
      {
        name: 'bars',
        data: { values: bars },
        mark: { type: 'bar', opacity: 0.55 },
        encoding: { y, yOffset, color, x: { field: 'median', stack: null, ...x } },
      },
      {
        name: 'dots',
        data: { values: pts },
        mark: { type: 'point', filled: true, size: 30, opacity: 1, stroke: '#222', strokeWidth: 0.5 },
        encoding: { y, yOffset, color, x: { field: 'value', ...x } },
      },
    ],
  });
  return { experiment, svg, dots: pts.length };
}

/** The guard table: what the seed's table says against what each repetition's kernel log said. */
export async function guardChart(experiment: string, claim: Claim, records: CellRecord[]): Promise<Chart> {
  const dots = records.flatMap((r) => {
    const v = value(r, claim.metric);
    return v === undefined ? [] : [{ what: 'measured', value: v, rep: r.rep }];
  });
  if (!dots.length) return { experiment, empty: `no ${claim.metric} was measured (see the claims table for why)`, dots: 0 };
  const expected = records.map((r) => value(r, 'expected_elided')).find((x) => x !== undefined) ?? claim.paper_value ?? undefined;
  const bars = [...(expected !== undefined ? [{ what: 'seed table', median: expected }] : []), { what: 'measured', median: median(dots.map((d) => d.value)) }];
  const x = { field: 'what', type: 'nominal', title: null, sort: ['seed table', 'measured'], axis: { labelAngle: 0 } };
  const y = { type: 'quantitative', title: 'guards elided', scale: { zero: true } };
  const svg = await render({
    width: 260,
    height: 220,
    title: { text: experiment, subtitle: HOW },
    layer: [
      {
        name: 'bars',
        data: { values: bars },
        mark: { type: 'bar', opacity: 0.55 },
        encoding: { x, color: { field: 'what', type: 'nominal', legend: null }, y: { field: 'median', stack: null, ...y } },
      },
      {
        name: 'dots',
        data: { values: dots },
        mark: { type: 'point', filled: true, size: 45, opacity: 1, stroke: '#222', strokeWidth: 0.6 },
        encoding: { x, y: { field: 'value', ...y } },
      },
    ],
  });
  return { experiment, svg, dots: dots.length };
}

export async function experimentChart(experiment: string, view: ExperimentView | undefined, claim: Claim | undefined, records: CellRecord[]): Promise<Chart> {
  if (!records.length) return { experiment, empty: 'not in this run (no cell of it was planned)', dots: 0 };
  // The experiment declares how it is drawn; a run's claims say which prefixes pair up.
  if (view?.chart === 'pairs' && claim) return pairedChart(experiment, claim, records);
  if (view?.chart === 'table' && claim) return guardChart(experiment, claim, records);
  return variantChart(experiment, view?.headline || claim?.metric || '', records);
}

export const TIMELINE_STATUS: Record<string, string> = {
  built: '#4c78a8',
  cached: '#c7c7c7',
  failed: '#e45756',
  up: '#b279a2',
  ok: '#54a24b',
  skipped: '#bab0ac',
  kept: '#9ecae9',
};

/** Where the time went: one bar per stage, testbed boot and cell, on one time axis. */
export async function timelineChart(items: TimelineItem[], origin: string | undefined): Promise<Chart> {
  if (!items.length) return { experiment: 'timeline', empty: 'nothing to place on a timeline (no stage, boot or cell recorded)', dots: 0 };
  const end = Math.max(...items.map((i) => i.start + i.seconds));
  const minutes = end > 600;
  const unit = minutes ? 60 : 1;
  // A cached stage or a skipped cell takes no time; it still gets a visible sliver.
  const sliver = Math.max(end / unit / 150, minutes ? 0.02 : 0.5);
  const values = items.map((i) => ({ ...i, x: i.start / unit, x2: Math.max(i.start / unit + sliver, (i.start + i.seconds) / unit) }));
  const lanes = [...new Set(items.map((i) => i.lane))];
  const statuses = Object.keys(TIMELINE_STATUS).filter((s) => items.some((i) => i.status === s));
  const enc = {
    y: { field: 'lane', type: 'nominal', title: null, sort: lanes },
    x: { field: 'x', type: 'quantitative', title: `${minutes ? 'minutes' : 'seconds'} since ${origin ?? 'the first event'}` },
    x2: { field: 'x2' },
    color: { field: 'status', type: 'nominal', title: 'status', scale: { domain: statuses, range: statuses.map((s) => TIMELINE_STATUS[s]) } },
    description: { field: 'label' },
  };
  const layer = (kind: TimelineItem['kind']) => ({
    name: `timeline_${kind}`,
    transform: [{ filter: `datum.kind === '${kind}'` }],
    mark: { type: 'bar', stroke: '#fff', strokeWidth: 0.5 },
    encoding: enc,
  });
  const svg = await render({
    width: 760,
    height: lanes.length * 22,
    title: { text: 'run timeline', subtitle: 'stages, testbed boot and every cell (a sliver: took no measurable time)' },
    data: { values },
    layer: [layer('stage'), layer('testbed'), layer('cell')],
  });
  return { experiment: 'timeline', svg, dots: 0 };
}
