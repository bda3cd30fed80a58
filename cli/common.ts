import type { Command } from 'commander';
import type { ResolvedConfig } from '../core/config.js';
import { labConfig } from '../lab/config.js';

export interface GlobalOpts {
  profile?: string;
  config?: string;
  set: string[];
  source: string[];
  /** Write every lab event as a JSON line to this file. */
  events?: string;
}

export function globalOpts(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

export function configFrom(cmd: Command): ResolvedConfig {
  const o = globalOpts(cmd);
  return labConfig({ file: o.config, profile: o.profile, set: o.set, sources: o.source });
}
