import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { paramsSlug, type CellRecord } from './cells.js';

export interface SummaryRow {
  experiment: string;
  variant: string;
  params: string;
  metric: string;
  n_ok: number;
  n_failed: number;
  n_skipped: number;
  median?: number;
  min?: number;
  max?: number;
  cv?: number;
  reason?: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Coefficient of variation (sample standard deviation / mean); 0 for a single value. */
export function coefficientOfVariation(xs: number[]): number {
  if (xs.length < 2) return 0;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return mean === 0 ? 0 : sd / mean;
}

/** One row per (experiment, variant, parameters, metric), over the good repetitions. */
export function summarize(records: CellRecord[]): SummaryRow[] {
  const groups = new Map<string, CellRecord[]>();
  for (const r of records) {
    const k = `${r.experiment}\u0000${r.variant}\u0000${paramsSlug(r.params)}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const rows: SummaryRow[] = [];
  for (const [k, rs] of groups) {
    const [experiment, variant, params] = k.split('\u0000') as [string, string, string];
    const ok = rs.filter((r) => r.status === 'ok');
    const counts = { n_ok: ok.length, n_failed: rs.filter((r) => r.status === 'failed').length, n_skipped: rs.filter((r) => r.status === 'skipped').length };
    const metrics = [...new Set(ok.flatMap((r) => Object.keys(r.metrics ?? {})))];
    if (!metrics.length) {
      rows.push({ experiment, variant, params, metric: '-', ...counts, reason: rs.find((r) => r.reason)?.reason?.split('\n')[0] });
      continue;
    }
    for (const metric of metrics) {
      const xs = ok.map((r) => r.metrics?.[metric]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      rows.push({
        experiment,
        variant,
        params,
        metric,
        ...counts,
        median: median(xs),
        min: Math.min(...xs),
        max: Math.max(...xs),
        cv: coefficientOfVariation(xs),
      });
    }
  }
  return rows;
}

export function summaryCsv(rows: SummaryRow[]): string {
  const cols: Array<keyof SummaryRow> = ['experiment', 'variant', 'params', 'metric', 'n_ok', 'n_failed', 'n_skipped', 'median', 'min', 'max', 'cv', 'reason'];
  const cell = (v: unknown) => (v === undefined ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return `${[cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n')}\n`;
}

export async function writeSummary(runDir: string, records: CellRecord[]): Promise<SummaryRow[]> {
  const rows = summarize(records);
  await writeFile(join(runDir, 'summary.json'), `${JSON.stringify({ cells: records.length, rows }, null, 2)}\n`);
  await writeFile(join(runDir, 'summary.csv'), summaryCsv(rows));
  await writeFile(join(runDir, 'cells.json'), `${JSON.stringify(records, null, 2)}\n`);
  return rows;
}
