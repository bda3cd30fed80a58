import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DEFAULT_CONFIG, listProfiles, loadConfig, type Profile } from '../core/config.js';
import { SOURCE_NEEDS, TESTBED_NEEDS, TEST_NEEDS, HOST_PACKAGES_FILE, renderHostPackages, toolchainNeeds, type NeedGroup } from '../core/requirements.js';
import { LLVM_PROGRAMS, LLVM_SOURCE_BUILD_PROGRAMS } from '../llvm/stage.js';
import { KERNEL_PROGRAMS } from '../kernel/stage.js';
import { KERNEL_DEB_PROGRAMS } from '../kernel/deb.js';
import { IMAGE_PROGRAMS } from '../images/stage.js';
import { KFLEX_PROGRAMS } from '../images/kflex.js';
import { BMC_PROGRAMS } from '../images/bmc.js';
import { ARENA_PROGRAMS } from '../images/arena.js';

// The stages declare what they run on the host; this gathers the declarations per profile for the doctor,
// and for every profile for .ci/host-packages (what .ci/install-deps installs).

/** The groups the doctor checks for a profile: each stage the profile builds, then the testbed. */
export function profileNeedGroups(profile: Profile): NeedGroup[] {
  const kindOf = (name: string | undefined) => (name ? profile.sources[name]?.kind : undefined);
  const sourceNeeds = (name: string | undefined) => SOURCE_NEEDS[kindOf(name) ?? 'path'];
  const t = profile.toolchain;
  const groups: NeedGroup[] = [
    {
      stage: 'llvm',
      needs: [...LLVM_PROGRAMS, ...toolchainNeeds(t), ...(t.policy === 'source' ? [...LLVM_SOURCE_BUILD_PROGRAMS, ...sourceNeeds(t.source)] : [])],
    },
    { stage: 'kernel', needs: [...KERNEL_PROGRAMS, ...sourceNeeds(profile.kernel.source)] },
  ];
  if (profile.image.kflex) groups.push({ stage: 'kflex', needs: [...KFLEX_PROGRAMS, ...sourceNeeds('kflex')] });
  if (profile.image.bmc) groups.push({ stage: 'bmc', needs: [...BMC_PROGRAMS, ...sourceNeeds('bmc')] });
  if (profile.image.arena) groups.push({ stage: 'arena', needs: [...ARENA_PROGRAMS, ...sourceNeeds(profile.kernel.source)] });
  // memtier is built only when its source is reachable; the image stage records it missing otherwise.
  const memtier = sourceNeeds(profile.image.memtier).map((n) => ({
    ...n,
    optional: 'memtier_benchmark is left out of the guest; redis-getset records redis-benchmark instead',
  }));
  groups.push({ stage: 'image', needs: [...IMAGE_PROGRAMS, ...memtier] }, { stage: 'testbed', needs: TESTBED_NEEDS });
  return groups;
}

/**
 * Everything any part of the lab declares: every profile of lab.yaml, an LLVM source build, every
 * source kind, and the tests. .ci/install-deps installs exactly these packages.
 */
export function allNeedGroups(configFile = DEFAULT_CONFIG): NeedGroup[] {
  const groups: NeedGroup[] = [];
  for (const { name } of listProfiles(configFile)) groups.push(...profileNeedGroups(loadConfig({ file: configFile, profile: name, env: {} }).profile));
  // kernel-deb is built only on demand (build kernel --deb): installed, never asked for by the doctor.
  groups.push(
    { stage: 'llvm', needs: LLVM_SOURCE_BUILD_PROGRAMS },
    { stage: 'kernel-deb', needs: KERNEL_DEB_PROGRAMS },
    ...Object.values(SOURCE_NEEDS).map((needs) => ({ stage: 'sources', needs })),
    { stage: 'tests', needs: TEST_NEEDS },
  );
  return groups;
}

// `npx tsx lab/requirements.ts --write` regenerates .ci/host-packages; without --write it prints it.
async function main(): Promise<void> {
  const text = renderHostPackages(allNeedGroups());
  if (!process.argv.includes('--write')) return void process.stdout.write(text);
  const before = existsSync(HOST_PACKAGES_FILE) ? readFileSync(HOST_PACKAGES_FILE, 'utf8') : '';
  writeFileSync(HOST_PACKAGES_FILE, text);
  console.log(`${HOST_PACKAGES_FILE}: ${before === text ? 'unchanged' : 'written'}`);
}
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
