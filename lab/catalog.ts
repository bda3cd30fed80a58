import { readFile } from 'node:fs/promises';
import type { KnownExperiment, ResolvedConfig } from '../core/config.js';
import { LabError, ExitCode } from '../core/errors.js';
import { listProfiles } from '../core/config.js';
import { EXPERIMENTS, experimentViews } from '../experiments/index.js';
import type { ClaimVerdict } from '../report/claims.js';

// Every command loads this module (lab/config.ts checks variants against it), so the stages and the
// report (Vega) are imported only by the functions that use them.

/** Experiment ids, for help texts and --only. */
export const EXPERIMENT_IDS = EXPERIMENTS.map((e) => e.id);

export function experimentKnown(id: string): boolean {
  return EXPERIMENT_IDS.includes(id);
}

/** Every experiment's variant ids and grid keys: configuration checks lab.yaml against these. */
export function knownExperiments(): Record<string, KnownExperiment> {
  return Object.fromEntries(EXPERIMENTS.map((e) => [e.id, { variants: e.variants.map((v) => v.id), grid: e.grid }]));
}

export async function catalog(config: ResolvedConfig, file?: string) {
  const { stageRegistry } = await import('./stages.js');
  return {
    profiles: listProfiles(file).map((p) => ({ name: p.name, extends: p.extends, description: p.description.trim().split('\n')[0] ?? '' })),
    stages: [...stageRegistry(config).values()].map((s) => ({ id: s.id, description: s.description })),
    experiments: EXPERIMENTS.map((e) => ({ id: e.id, title: e.title, variants: e.variants.map((v) => v.id) })),
  };
}

/** The experiments' parsers, on a capture a user made by hand: each experiment declares its own. */
export const PARSERS: Record<string, (text: string) => unknown> = Object.assign({}, ...EXPERIMENTS.map((e) => e.parsers));

export async function parseCapture(kind: string, file: string): Promise<unknown> {
  const parse = PARSERS[kind];
  if (!parse) throw new LabError(`unknown parser '${kind}'; known: ${Object.keys(PARSERS).join(', ')}`, ExitCode.usage);
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new LabError(`cannot read ${file}: ${e.message}`, ExitCode.usage);
  });
  try {
    return parse(text);
  } catch (e) {
    throw new LabError(`${file}: not ${kind} output: ${(e as Error).message}`, ExitCode.checkFailed);
  }
}

/** Write report.html/report.md for a run directory (default: the latest); returns the verdict table. */
export async function reportRun(dir?: string): Promise<{ dir: string; table: string; html: string }> {
  const [{ latestRun, resultsRoot }, { writeReport, readRunForReport, verdictTable }] = await Promise.all([
    import('../core/rundir.js'),
    import('../report/report.js'),
  ]);
  const runDir = dir ?? (await latestRun());
  if (!runDir) throw new LabError(`no run directory under ${resultsRoot()}`, ExitCode.usage);
  const inp = await readRunForReport(runDir);
  const { verdicts } = await writeReport({ runDir, ...inp }, experimentViews());
  return { dir: runDir, table: verdictTable(verdicts), html: `${runDir}/report.html` };
}
/** The claims table as text (the report module, and Vega with it, load only here). */
export async function verdictTable(verdicts: ClaimVerdict[]): Promise<string> {
  return (await import('../report/report.js')).verdictTable(verdicts);
}
