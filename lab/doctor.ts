import type { ResolvedConfig } from '../core/config.js';
import { runDoctor, type Check } from '../core/doctor.js';
import { tapCapability } from '../vm/link/index.js';
import { profileNeedGroups } from './requirements.js';

/** The host checks for a profile: the programs its stages and testbed declare, and the link's tap verdict. */
export async function doctor(config: ResolvedConfig, o: { kernel?: string } = {}): Promise<Check[]> {
  const tap = tapCapability();
  return runDoctor(config.profile, {
    cacheDir: config.cacheRoot,
    needs: profileNeedGroups(config.profile),
    tap: { ok: tap.ok, why: tap.why, fix: tap.ok ? undefined : tap.fix },
    kernel: o.kernel,
  });
}
