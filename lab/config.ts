import { loadConfig, type ResolvedConfig } from '../core/config.js';
import { FRAGMENT_DIR } from '../kernel/stage.js';
import { knownExperiments } from './catalog.js';

/**
 * lab.yaml plus overrides, validated once. core/ knows neither the experiments nor the kernel's fragment
 * files, so the names they define are passed in here.
 */
export function labConfig(o: { file?: string; profile?: string; set?: string[]; sources?: string[] }): ResolvedConfig {
  return loadConfig({ file: o.file, profile: o.profile, set: o.set, sources: o.sources, knownExperiments: knownExperiments(), fragmentsDir: FRAGMENT_DIR });
}
