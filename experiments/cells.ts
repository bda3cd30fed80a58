import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Profile, ExperimentSettings } from '../core/config.js';
import type { Accel } from '../core/accel.js';
import type { CellStatus, CellTable, Experiment, Params, ParamValue, VariantDef, CellPhase } from './types.js';
import type { Metrics } from './parsers.js';

// The cell model: what a run plans, records and reads back. A leaf: report/, hosts/ and lab/ read it;
// it imports no experiment (the registry is passed in).

/** One point of the grid: experiment x variant x parameters x repetition. */
export interface ExperimentCell {
  experiment: Experiment;
  variant: VariantDef;
  params: Params;
  rep: number;
  settings: ExperimentSettings;
  /** runs/<exp>/<variant>/<params>/rep-<n>, relative to the run dir. */
  path: string;
  /** The KFlex heap (GiB) this cell's server allocates, after the profile's kflex.heap_gib. */
  heapGiB?: number;
}

export interface CellRecord {
  experiment: string;
  variant: string;
  params: Params;
  rep: number;
  status: CellStatus;
  reason?: string;
  metrics?: Metrics;
  deviations?: string[];
  started: string;
  seconds: number;
  /** Never ran because the testbed was gone: --resume runs it. */
  rerun?: boolean;
  /** The KFlex heap this cell's server allocates, against the artifact's size. */
  heap?: { gib: number; artifact_gib: number; scaled: boolean };
  /** Seconds in each phase of the cell (CELL_PHASES), in the order first entered. */
  phases?: Partial<Record<CellPhase, number>>;
  /** Everything but warm-up and measurement: what the harness costs per cell. */
  fixed_seconds?: number;
  /** A table the cell stated, for the report. */
  table?: CellTable;
}

/** Marks of the phases a cell enters, turned into seconds per phase at the end. */
export function phaseClock(start: number) {
  const marks: Array<{ name: CellPhase; at: number }> = [];
  return {
    mark(name: CellPhase, at = Date.now()): void {
      // A mark placed after the fact (a server's ready time by the guest's clock) never goes before the last one.
      marks.push({ name, at: Math.max(at, marks.at(-1)?.at ?? start, start) });
    },
    seconds(end = Date.now()): { phases: Partial<Record<CellPhase, number>>; fixed_seconds: number } {
      const phases: Partial<Record<CellPhase, number>> = {};
      marks.forEach((m, i) => {
        const until = Math.max(m.at, marks[i + 1]?.at ?? end);
        phases[m.name] = Math.round(((phases[m.name] ?? 0) + (until - m.at) / 1000) * 1000) / 1000;
      });
      const total = (end - start) / 1000;
      return { phases, fixed_seconds: Math.round((total - (phases['warm-up'] ?? 0) - (phases.measurement ?? 0)) * 1000) / 1000 };
    },
  };
}

/** Apply `--quick`: fewer repetitions, shorter runs, the quick grid's values for the keys it names. */
export function effectiveSettings(s: ExperimentSettings, quick: boolean): ExperimentSettings {
  if (!quick) return s;
  return {
    ...s,
    repetitions: s.quick.repetitions ?? 1,
    duration_s: s.quick.duration_s ?? s.duration_s,
    grid: { ...s.grid, ...(s.quick.grid ?? {}) },
    warmup_s: 0,
  };
}

export function gridPoints(grid: Record<string, ParamValue[]>): Params[] {
  let points: Params[] = [{}];
  for (const [k, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

export function paramsSlug(p: Params): string {
  const s = Object.entries(p)
    .map(([k, v]) => `${k}=${String(v).replace(/[^A-Za-z0-9.]+/g, '-')}`)
    .join(',');
  return s || 'default';
}

/** Every cell of the profile's experiments (filtered by --only), in run order. */
export function planCells(profile: Profile, opts: { only?: string[]; quick?: boolean }, experiments: readonly Experiment[]): ExperimentCell[] {
  const cells: ExperimentCell[] = [];
  for (const exp of experiments) {
    const raw = profile.experiments[exp.id];
    if (!raw?.enabled) continue;
    if (opts.only?.length && !opts.only.includes(exp.id)) continue;
    const settings = effectiveSettings(raw, !!opts.quick);
    for (const vid of settings.variants) {
      const variant = exp.variants.find((v) => v.id === vid);
      if (!variant) throw new Error(`experiments.${exp.id}.variants: unknown variant '${vid}'; known: ${exp.variants.map((v) => v.id).join(', ')}`);
      for (const params of gridPoints(settings.grid))
        for (let rep = 1; rep <= settings.repetitions; rep++)
          cells.push({
            experiment: exp,
            variant,
            params,
            rep,
            settings,
            path: join('runs', exp.id, vid, paramsSlug(params), `rep-${rep}`),
            heapGiB: effectiveHeapGiB(variant, profile),
          });
    }
  }
  return cells;
}

/** The heap a variant's server allocates under this profile (its kflex.heap_gib may scale the artifact's). */
export function effectiveHeapGiB(variant: VariantDef, profile: Pick<Profile, 'kflex'>): number | undefined {
  if (variant.heap) return profile.kflex.heap_gib[variant.heap];
  return variant.heapGiB;
}

export async function readCellRecord(runDir: string, path: string): Promise<CellRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(runDir, path, 'status.json'), 'utf8')) as CellRecord;
  } catch {
    return undefined;
  }
}

/**
 * How long a cell may take in all: twice its estimate plus two minutes, plus the time a KFlex server
 * needs to fill its heap before its ready line. Past it the cell fails and the run goes on.
 */
export function cellBoundSeconds(cell: Pick<ExperimentCell, 'experiment' | 'variant' | 'settings' | 'heapGiB'>, accel: Accel): number {
  const est = cell.experiment.estimateCellSeconds(cell.settings, accel, cell.variant);
  const heapFill = cell.heapGiB ? (accel === 'tcg' ? 1800 : 600) : 0;
  return Math.ceil(2 * est + 120 + heapFill);
}

/** A variant that reads another cell's log needs that cell to have run (ok or failed) in this run first. */
export function missingInput(cell: ExperimentCell, records: CellRecord[]): string | undefined {
  const src = cell.variant.logOf;
  if (!src) return undefined;
  const producers = records.filter((r) => r.experiment === src.experiment && r.variant === src.variant);
  if (!producers.length)
    return `reads the kernel log of ${src.experiment}/${src.variant}, which is not in this run (add --only ${src.experiment} ${cell.experiment.id})`;
  if (producers.every((r) => r.status === 'skipped'))
    return `reads the kernel log of ${src.experiment}/${src.variant}, which was skipped: ${producers[0]!.reason}`;
  return undefined;
}

/** Whether resume must run this cell again: it failed, or never ran because its testbed was gone. */
export function needsRun(prev: CellRecord | undefined): boolean {
  return !prev || prev.status === 'failed' || !!prev.rerun;
}
