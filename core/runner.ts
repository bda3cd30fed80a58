import type { EventBus } from './events.js';
import type { ResolvedConfig } from './config.js';
import { buildEntry, fingerprint, readEntry, type Stage, type StageOutput } from './stage.js';
import { LabError, ExitCode } from './errors.js';

export interface PlannedStage {
  stage: Stage;
  fingerprint: string;
  cached: boolean;
}

/** Stages in dependency order, for `targets` and everything they need. */
export function closure(stages: Map<string, Stage>, targets: string[]): Stage[] {
  const order: Stage[] = [];
  const seen = new Set<string>();
  const visit = (id: string, path: string[]) => {
    const s = stages.get(id);
    if (!s)
      throw new LabError(`unknown stage '${id}'${path.length ? ` (needed by ${path.at(-1)})` : ''}; stages: ${[...stages.keys()].join(', ')}`, ExitCode.usage);
    if (path.includes(id)) throw new LabError(`stage cycle: ${[...path, id].join(' -> ')}`, ExitCode.usage);
    if (seen.has(id)) return;
    for (const d of s.deps) visit(d, [...path, id]);
    seen.add(id);
    order.push(s);
  };
  for (const t of targets) visit(t, []);
  return order;
}

/** Fingerprint every stage (cheap: inputs only) and say which are already in the cache. */
export async function plan(stages: Map<string, Stage>, targets: string[], config: ResolvedConfig, cacheRoot: string): Promise<PlannedStage[]> {
  const fps: Record<string, string> = {};
  const out: PlannedStage[] = [];
  for (const s of closure(stages, targets)) {
    const depFps = Object.fromEntries(s.deps.map((d) => [d, fps[d]!]));
    fps[s.id] = fingerprint(s, await s.inputs(config), depFps);
    out.push({ stage: s, fingerprint: fps[s.id]!, cached: !!(await readEntry(cacheRoot, s.id, fps[s.id]!)) });
  }
  return out;
}

/**
 * Build the planned stages, each as soon as its deps are done, so independent stages overlap
 * (the image is download-bound while the kernel is CPU-bound). The first failure stops new starts;
 * running stages finish, and the error is rethrown.
 */
export async function buildStages(
  planned: PlannedStage[],
  config: ResolvedConfig,
  cacheRoot: string,
  bus: EventBus,
  opts: { force?: string[] } = {},
): Promise<Record<string, StageOutput>> {
  const outputs: Record<string, StageOutput> = {};
  const running = new Map<string, Promise<void>>();
  const pending = new Map(planned.map((p) => [p.stage.id, p]));
  let failure: unknown;
  const start = (p: PlannedStage) => {
    const deps = Object.fromEntries(p.stage.deps.map((d) => [d, outputs[d]!]));
    const started = Date.now();
    const force = opts.force?.includes(p.stage.id) || opts.force?.includes('all');
    const job = buildEntry(
      p.stage,
      p.fingerprint,
      { config, deps, cacheRoot, bus },
      {
        force,
        onStart: (logPath) => bus.emit({ type: 'stage-start', stage: p.stage.id, fingerprint: p.fingerprint, logPath }),
      },
    )
      .then((r) => {
        outputs[p.stage.id] = r.output;
        if (r.cached) bus.emit({ type: 'stage-cached', stage: p.stage.id, fingerprint: p.fingerprint, dir: r.output.dir });
        else bus.emit({ type: 'stage-done', stage: p.stage.id, seconds: r.seconds, dir: r.output.dir });
      })
      .catch((e: Error & { logPath?: string; tail?: string[] }) => {
        bus.emit({
          type: 'stage-failed',
          stage: p.stage.id,
          seconds: (Date.now() - started) / 1000,
          error: e.message,
          logPath: e.logPath ?? '',
          tail: e.tail ?? [],
        });
        failure ??= e;
      })
      .finally(() => running.delete(p.stage.id));
    running.set(p.stage.id, job);
  };
  while (pending.size || running.size) {
    if (!failure) {
      for (const [id, p] of pending) {
        if (p.stage.deps.every((d) => outputs[d])) {
          pending.delete(id);
          start(p);
        }
      }
    } else pending.clear();
    if (running.size) await Promise.race(running.values());
    else if (pending.size && !failure)
      throw new LabError(`stages cannot start: ${[...pending.keys()].join(', ')} wait on stages outside the plan`, ExitCode.infra);
  }
  if (failure) throw failure;
  return outputs;
}
