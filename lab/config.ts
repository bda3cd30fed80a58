import { loadConfig, type ResolvedConfig } from '../core/config.js';
import { FRAGMENT_DIR } from '../kernel/stage.js';
import { validateHosts } from '../hosts/config.js';
import { knownExperiments } from './catalog.js';

/**
 * lab.yaml plus overrides, validated once. core/ knows neither the experiments, the kernel's fragment files
 * nor the hosts testbed's rules, so the names they define (and the check of inline hosts) are passed in here.
 */
export function labConfig(o: { file?: string; profile?: string; set?: string[]; sources?: string[] }): ResolvedConfig {
  return loadConfig({
    file: o.file,
    profile: o.profile,
    set: o.set,
    sources: o.sources,
    knownExperiments: knownExperiments(),
    fragmentsDir: FRAGMENT_DIR,
    inlineHosts: (raw, src) => validateHosts(raw, src).problems,
  });
}
