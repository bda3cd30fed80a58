import type { ResolvedConfig } from '../core/config.js';
import { LabError, ExitCode } from '../core/errors.js';
import { listProfiles, loadConfig } from '../core/config.js';
import type { ExperimentCell } from '../experiments/cells.js';
import { planCells } from '../experiments/cells.js';
import { EXPERIMENTS } from '../experiments/index.js';
import { loadClaims, type Claim } from '../report/claims.js';
import { forecast, type CellForecast, type HostShape } from './sizing.js';
import { knownExperiments } from './catalog.js';
import { FRAGMENT_DIR } from '../kernel/stage.js';

/** The variants a claim compares: a ratio's two sides, or (a family ratio, a table) the variant it names, else any. */
function claimVariants(c: Claim): string[] | undefined {
  if (c.comparison.kind === 'ratio') return [c.comparison.numerator, c.comparison.denominator];
  return c.variant ? [c.variant] : undefined;
}

/** Claims whose every compared variant would run on this host, by the forecast's rows. */
export function judgeableClaims(claims: Claim[], rows: Pick<CellForecast, 'experiment' | 'variant' | 'verdict'>[]): Claim[] {
  const runs = (e: string, v: string) => rows.some((r) => r.experiment === e && r.variant === v && r.verdict === 'run');
  return claims.filter((c) => {
    const vs = claimVariants(c);
    return vs ? vs.every((v) => runs(c.experiment, v)) : rows.some((r) => r.experiment === c.experiment && r.verdict === 'run');
  });
}

/** The other profiles of lab.yaml that would judge at least one claim on this host (`--profile X` ways out). */
function profilesThatJudge(config: ResolvedConfig, host: HostShape, claims: Claim[]): string[] {
  return listProfiles(config.file)
    .map((p) => p.name)
    .filter((name) => name !== config.profileName)
    .filter((name) => {
      try {
        const c = loadConfig({ file: config.file, profile: name, env: {}, knownExperiments: knownExperiments(), fragmentsDir: FRAGMENT_DIR });
        return judgeableClaims(claims, forecast(c, planCells(c.profile, {}, EXPERIMENTS), host).rows).length > 0;
      } catch {
        return false;
      }
    });
}

/**
 * Before any build: which cells this host will run and which it will skip (and why), and whether any claim
 * can be judged. A run that can only skip stops here, naming the profiles that would judge claims on this
 * host, unless the user goes on regardless (`--anyway`): an hour of kernel build is never spent on it.
 */
export function preflight(
  config: ResolvedConfig,
  cells: ExperimentCell[],
  host: HostShape,
  o: { anyway?: boolean; say: (line: string) => void },
): { rows: CellForecast[]; judgeable: Claim[] } {
  const { rows } = forecast(config, cells, host);
  const claims = loadClaims().filter((c) => cells.some((x) => x.experiment.id === c.experiment));
  const judgeable = judgeableClaims(claims, rows);
  const skipped = rows.filter((r) => r.verdict === 'skip');
  o.say(`this host will run ${rows.length - skipped.length} of ${rows.length} variants and judge ${judgeable.length} of ${claims.length} claims`);
  for (const r of skipped) o.say(`  skips ${r.experiment}/${r.variant}: ${r.reason}`);
  if (judgeable.length || !claims.length || o.anyway) return { rows, judgeable };
  const others = profilesThatJudge(config, host, loadClaims());
  throw new LabError(
    `profile ${config.profileName}: no claim can be judged on this host (every compared variant is skipped, reasons above); ` +
      'the builds would take long and the report would say only "not run"',
    ExitCode.usage,
    `${others.length ? `judge claims here with --profile ${others.join(' or --profile ')}; ` : ''}or go on regardless with --anyway`,
  );
}
