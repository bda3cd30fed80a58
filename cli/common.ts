import type { Command } from 'commander';
import { loadConfig, type ResolvedConfig } from '../core/config.js';
import { EventBus } from '../core/events.js';
import { attachView } from '../core/progress.js';
import { plan, buildStages } from '../core/runner.js';
import { stageRegistry } from './stages.js';

export interface GlobalOpts {
  profile?: string;
  config?: string;
  set: string[];
  source: string[];
}

export function configFrom(cmd: Command): ResolvedConfig {
  const o = cmd.optsWithGlobals() as GlobalOpts;
  return loadConfig({ file: o.config, profile: o.profile, set: o.set, sources: o.source });
}

/** Build stages (cached ones are reused) with the progress view attached. */
export async function buildTargets(config: ResolvedConfig, targets: string[], force: string[] = []) {
  const bus = new EventBus();
  const detach = attachView(bus);
  try {
    const planned = await plan(stageRegistry(config), targets, config, config.cacheRoot);
    return await buildStages(planned, config, config.cacheRoot, bus, { force });
  } finally {
    detach();
  }
}

/** Set while a signal handler tears VMs down: errors from the interrupted work must not exit first. */
export const interruption = { active: false };
