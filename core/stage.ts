import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import type { EventBus } from './events.js';
import type { ResolvedConfig } from './config.js';
import { LabError, ExitCode } from './errors.js';
import { tailOf } from './exec.js';
import { pidAlive } from './host-probe.js';

// pidAlive lives in core/host-probe.ts now; re-exported for the modules that import it from here.
export { pidAlive };

/** What a stage gets while it builds. */
export interface StageContext {
  config: ResolvedConfig;
  /** Temporary output directory; renamed to the cache entry only when build() returns. */
  outDir: string;
  /** This build's fingerprint (the cache entry's name). */
  fingerprint: string;
  /** A directory kept across builds of this entry, for incremental work (e.g. the kernel's build tree): <cache>/<stage>-work/<fingerprint>. */
  workDir: string;
  /** Outputs of the stages this one depends on, by stage id. */
  deps: Record<string, StageOutput>;
  cacheRoot: string;
  logPath: string;
  /** Write one line to the log and the progress view. */
  log: (line: string) => void;
  /** Options for run(): commands write their output to the log, and each line reaches the progress view. */
  exec: { logPath: string; onLine: (line: string) => void };
  bus: EventBus;
}

/** A finished cache entry: its directory and the manifest the stage wrote. */
export interface StageOutput {
  stage: string;
  fingerprint: string;
  dir: string;
  manifest: Record<string, unknown>;
}

/**
 * A cached unit of work. Its fingerprint hashes `version`, `inputs()` and the fingerprints of its deps;
 * bump `version` whenever build() changes what it produces.
 */
export interface Stage {
  readonly id: string;
  readonly version: string;
  readonly deps: readonly string[];
  readonly description: string;
  /** Everything the output depends on, as JSON. Must be cheap: it runs on every invocation. */
  inputs(config: ResolvedConfig): Promise<unknown>;
  /** Produce the outputs in ctx.outDir and return the manifest (written as stage.json). */
  build(ctx: StageContext): Promise<Record<string, unknown>>;
}

export const STAGE_MANIFEST = 'stage.json';

/** Stable JSON: keys sorted, so the same inputs always hash the same. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function fingerprint(stage: Pick<Stage, 'id' | 'version'>, inputs: unknown, depFingerprints: Record<string, string>): string {
  return createHash('sha256')
    .update(canonicalJson({ stage: stage.id, version: stage.version, inputs, deps: depFingerprints }))
    .digest('hex')
    .slice(0, 16);
}

export function entryDir(root: string, stageId: string, fp: string): string {
  return join(root, stageId, fp);
}

/** A cache entry counts only when its manifest exists: it is written last, inside the temporary dir, before the rename. */
export async function readEntry(root: string, stageId: string, fp: string): Promise<StageOutput | undefined> {
  const dir = entryDir(root, stageId, fp);
  try {
    const manifest = JSON.parse(await readFile(join(dir, STAGE_MANIFEST), 'utf8'));
    return { stage: stageId, fingerprint: fp, dir, manifest };
  } catch {
    return undefined;
  }
}

/**
 * Build one stage into the cache atomically: lock, build in `<fp>.tmp-<pid>`, write stage.json, rename.
 * A killed build leaves only a .tmp dir, which is never read and is swept on the next build.
 */
export async function buildEntry(
  stage: Stage,
  fp: string,
  ctxBase: Omit<StageContext, 'outDir' | 'logPath' | 'log' | 'exec' | 'fingerprint' | 'workDir'>,
  opts: { force?: boolean; onStart?: (logPath: string) => void } = {},
): Promise<{ output: StageOutput; cached: boolean; seconds: number }> {
  const root = ctxBase.cacheRoot;
  const stageDir = join(root, stage.id);
  await mkdir(stageDir, { recursive: true });
  const lockTarget = join(stageDir, `${fp}.lock`);
  await writeFile(lockTarget, '', { flag: 'a' });
  let release: (() => Promise<void>) | undefined;
  try {
    // A killed holder stops refreshing the lock; after 10 s it counts as stale and the next builder takes it.
    release = await lockfile.lock(lockTarget, { stale: 10_000, update: 2_000, retries: { retries: 2000, minTimeout: 500, maxTimeout: 2000 } });
  } catch (e) {
    throw new LabError(
      `cache entry ${stage.id}/${fp} is locked by another kflex-lab process (${(e as Error).message}); wait for it or remove ${lockTarget}.lock if no lab runs`,
      ExitCode.infra,
    );
  }
  try {
    if (!opts.force) {
      const hit = await readEntry(root, stage.id, fp);
      if (hit) return { output: hit, cached: true, seconds: 0 };
    }
    await sweepTemporaries(stageDir, fp);
    const tmp = join(stageDir, `${fp}.tmp-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const logPath = join(stageDir, `${fp}.log`);
    await writeFile(logPath, '');
    opts.onStart?.(logPath);
    const started = Date.now();
    const { appendFileSync } = await import('node:fs');
    const log = (line: string) => {
      appendFileSync(logPath, `${line}\n`);
      ctxBase.bus.emit({ type: 'line', stage: stage.id, line });
    };
    let manifest: Record<string, unknown>;
    try {
      const exec = { logPath, onLine: (line: string) => ctxBase.bus.emit({ type: 'line', stage: stage.id, line }) };
      manifest = await stage.build({ ...ctxBase, outDir: tmp, fingerprint: fp, workDir: join(root, `${stage.id}-work`, fp), logPath, log, exec });
    } catch (e) {
      const err = e as Error;
      const tail = await tailOf(logPath, 30);
      const wrapped = new LabError(`stage ${stage.id} failed: ${err.message}`, e instanceof LabError ? e.exitCode : ExitCode.infra);
      Object.assign(wrapped, { logPath, tail, seconds: (Date.now() - started) / 1000 });
      throw wrapped;
    }
    const seconds = (Date.now() - started) / 1000;
    const full = { stage: stage.id, version: stage.version, fingerprint: fp, built_at: new Date().toISOString(), build_seconds: seconds, ...manifest };
    await writeFile(join(tmp, STAGE_MANIFEST), `${JSON.stringify(full, null, 2)}\n`);
    const final = entryDir(root, stage.id, fp);
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    await rename(logPath, join(final, 'build.log')).catch(() => undefined);
    return { output: { stage: stage.id, fingerprint: fp, dir: final, manifest: full }, cached: false, seconds };
  } finally {
    await release?.();
  }
}

/** Remove temporaries left by builds of this entry whose process is gone. */
async function sweepTemporaries(stageDir: string, fp: string): Promise<void> {
  for (const name of await readdir(stageDir)) {
    const m = name.match(/^(.+)\.tmp-(\d+)$/);
    if (!m || m[1] !== fp) continue;
    if (Number(m[2]) !== process.pid && pidAlive(Number(m[2]))) continue;
    await rm(join(stageDir, name), { recursive: true, force: true });
  }
}
