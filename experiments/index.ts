import type { Experiment, ExperimentView, Role } from './types.js';
import { declaredNeeds } from './requirements.js';
import { memcache } from './memcache.js';
import { redisGetSet, redisZadd } from './redis.js';
import { datastructures, guards } from './kflex-bench.js';
import { mechanisms } from './mechanisms.js';

/** The experiments, in the order they run: the mechanism probe first (seconds), then the artifact's five (5 reads 4's kernel log). */
export const EXPERIMENTS: Experiment[] = [mechanisms, memcache, redisGetSet, redisZadd, datastructures, guards];

export function experimentById(id: string): Experiment | undefined {
  return EXPERIMENTS.find((e) => e.id === id);
}

/** What the report needs of each experiment (its headline metric and chart kind). */
export function experimentViews(): Record<string, ExperimentView> {
  return Object.fromEntries(
    EXPERIMENTS.map((e) => [e.id, { headline: e.headline, chart: e.chart, heapVariants: e.variants.filter((v) => v.heap || v.heapGiB).map((v) => v.id) }]),
  );
}

/** A program the experiments run on a user's machine, as `hosts check`/`prepare` look for and install it. */
export interface GuestProgram {
  role: Role;
  /** What `command -v` looks up: the path for a lab-built program, else the name. */
  name: string;
  apt?: string[];
  notPackaged?: string;
}

/** Every guest program the experiments declare, per role (deduplicated), from the variants' own requirements. */
export function guestPrograms(role: Role, experiments: readonly Experiment[] = EXPERIMENTS): GuestProgram[] {
  return declaredNeeds(experiments)
    .programs.filter((p) => p.role === role)
    .map((p) => ({ role, name: p.path, apt: p.apt, notPackaged: p.notPackaged }));
}
