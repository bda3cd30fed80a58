import { existsSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Stage, StageContext, StageOutput } from '../core/stage.js';
import type { ResolvedConfig } from '../core/config.js';
import type { Deviation } from '../core/rundir.js';
import { run } from '../core/exec.js';
import { materialize, sourceIdentity } from '../core/sources.js';
import { hostDebianMirror } from '../core/apt.js';
import { LabError, ExitCode } from '../core/errors.js';
import { LAB_ROOT } from '../core/paths.js';
import { BMC_GUEST_DIR } from '../core/guest.js';
import { SOURCE_NEEDS, requireNeeds, type HostNeed } from '../core/requirements.js';
import { mmdebstrapArgv, runMmdebstrap } from './mmdebstrap.js';

export { BMC_GUEST_DIR } from '../core/guest.js';

/** Which BMC the image gets: the fork as published (paper kernel) or with the lab's patch for upstream 7.x. */
export type BmcVariant = 'artifact' | 'upstream';

/** The lab's own patch for upstream Linux 7.x (kept in this repository, applied to the fetched fork at build time). */
export const BMC_UPSTREAM_PATCH = join(LAB_ROOT, 'images', 'bmc', 'upstream-7x.patch');

/** The fork's cache: `#define BMC_CACHE_ENTRY_COUNT 3250000` in bmc/bmc_common.h, a preallocated BPF array. */
export const BMC_ARTIFACT_ENTRIES = 3_250_000;
/** sizeof(struct bmc_cache_entry) as clang-19 lays it out (BTF of bmc_kern.o: size=1320), = the array's element size. */
export const BMC_ENTRY_BYTES = 1320;
/** At most this share of the server VM's RAM goes to BMC's cache when the VM has a fixed size. */
export const BMC_CACHE_RAM_SHARE = 0.25;

/** What BMC needs to build: the Makefile checks clang and llc; user space links libbpf, libelf, zlib. */
export const BMC_BUILD_PACKAGES = ['build-essential', 'clang-19', 'llvm-19', 'libbpf-dev', 'libelf-dev', 'zlib1g-dev', 'linux-libc-dev', 'make', 'patch'];
/** What bmc needs at run time in the guest (libbpf-dev pulls libbpf1, libelf and zlib of the guest's own suite). */
export const BMC_GUEST_PACKAGES = ['libbpf-dev'];
export const BMC_FILES = ['bmc', 'bmc_kern.o'];

/** What the bmc stage runs on the host: everything else runs in its throwaway build root. */
export const BMC_PROGRAMS: readonly HostNeed[] = [
  { name: 'mmdebstrap', package: 'mmdebstrap', why: 'builds BMC in a throwaway root of the guest suite' },
  {
    name: 'debian-archive-keyring',
    file: '/usr/share/keyrings/debian-archive-keyring.gpg',
    package: 'debian-archive-keyring',
    why: "mmdebstrap checks the guest suite's Release signature with it",
  },
  { name: 'chroot', package: 'coreutils', why: "the build root's hooks patch and build BMC inside it" },
];

/**
 * The cache scale rule: the artifact's 3,250,000 entries (4.29 GB) when the server VM is sized from the host
 * ('auto'), else as many entries as fit in a quarter of the server's RAM (in thousands), never more than the artifact's.
 */
export function bmcCacheEntries(serverMemoryMb: number | 'auto'): number {
  if (serverMemoryMb === 'auto') return BMC_ARTIFACT_ENTRIES;
  const fit = Math.floor((serverMemoryMb * 2 ** 20 * BMC_CACHE_RAM_SHARE) / BMC_ENTRY_BYTES / 1000) * 1000;
  if (fit < 1000)
    throw new LabError(
      `vms.server.memory_mb: ${serverMemoryMb} MiB leaves no room for BMC's cache (1000 entries need ` +
        `${Math.ceil((1000 * BMC_ENTRY_BYTES) / BMC_CACHE_RAM_SHARE / 2 ** 20)} MiB); give the server more RAM or set image.bmc: false`,
      ExitCode.usage,
    );
  return Math.min(BMC_ARTIFACT_ENTRIES, fit);
}

/**
 * mmdebstrap customize hooks that rewrite the cache size in the copied tree, each followed by a check that the
 * header now has exactly one definition with the new size (a fork that moved the constant stops the build).
 */
export function bmcCacheRewriteHooks(entries: number, dirInRoot: string): string[] {
  if (entries === BMC_ARTIFACT_ENTRIES) return [];
  const file = `${dirInRoot}/bmc/bmc_common.h`;
  return [
    `chroot "$1" sed -i -E 's/^#define BMC_CACHE_ENTRY_COUNT ${BMC_ARTIFACT_ENTRIES}$/#define BMC_CACHE_ENTRY_COUNT ${entries}/' ${file}`,
    `chroot "$1" sh -c 'test "$(grep -c "^#define BMC_CACHE_ENTRY_COUNT" ${file})" = 1 && grep -qx "#define BMC_CACHE_ENTRY_COUNT ${entries}" ${file} || ` +
      `{ echo "cache size rewrite of ${file} to ${entries} entries did not take" >&2; exit 1; }'`,
  ];
}

/** Hooks that copy the lab's patch into the build root and apply it (upstream only); a patch that does not apply stops the build. */
export function bmcPatchHooks(variant: BmcVariant, patchFile: string, dirInRoot: string): string[] {
  if (variant === 'artifact') return [];
  return [`copy-in ${patchFile} /build`, `chroot "$1" sh -c 'cd ${dirInRoot} && patch -p1 --forward --batch < /build/${patchFile.split('/').at(-1)}'`];
}

/**
 * The build inside the root: the fork's own Makefile with Debian's libbpf in place of a kernel tree's
 * (bpf_helpers.h from /usr/include/bpf, -lbpf instead of tools/lib/bpf/libbpf.a). `-include asm/posix_types.h`
 * makes bmc_user.c's absolute include of asm-generic/posix_types.h a no-op, which otherwise conflicts with the
 * x86 definitions of the suite's linux-libc-dev. The Makefile's -Werror stays.
 */
export function bmcBuildCommand(dirInRoot: string): string {
  const make = [
    'make',
    'CLANG=clang-19',
    'LLC=llc-19',
    'LIBBPF=',
    '"CFLAGS=-g -O2 -Wall -I. -include asm/posix_types.h"',
    '"LDFLAGS=-lbpf -lelf"',
    '"LINUXINCLUDE=-I/usr/include/bpf"',
  ].join(' ');
  const check = BMC_FILES.map((f) => `test -s ${f} || { echo "BMC build produced no ${f}" >&2; exit 1; }`).join(' && ');
  return `cd ${dirInRoot}/bmc && ${make} && ${check}`;
}

/** The deviations a BMC build records against the artifact (the fork as published, its 3,250,000 entries). */
export function bmcDeviations(m: { variant: BmcVariant; cache: { entries: number } }): Deviation[] {
  const out: Deviation[] = [];
  if (m.variant === 'upstream')
    out.push({
      topic: 'BMC patched for upstream',
      artifact: 'rs3lab/bmc-cache @1fb8f96 calls bpf_dynptr_slice{,_rdwr} while holding bpf_spin_lock (KFlex-linux allows both kfuncs there)',
      lab: 'images/bmc/upstream-7x.patch: the entry is copied to/from a per-CPU buffer under the lock, the packet is read and written outside it',
      why: 'the upstream verifier refuses the fork: "function calls are not allowed while holding a lock" (bmc_write_reply_main, bmc_update_cache_main)',
      affects: 'memcache/bmc',
    });
  if (m.cache.entries !== BMC_ARTIFACT_ENTRIES)
    out.push({
      topic: 'BMC cache scaled down',
      artifact: `${BMC_ARTIFACT_ENTRIES.toLocaleString('en')} entries (${((BMC_ARTIFACT_ENTRIES * BMC_ENTRY_BYTES) / 1e9).toFixed(2)} GB, preallocated)`,
      lab:
        `${m.cache.entries.toLocaleString('en')} entries (${((m.cache.entries * BMC_ENTRY_BYTES) / 2 ** 20).toFixed(0)} MiB), ` +
        'BMC_CACHE_ENTRY_COUNT rewritten at build time',
      why: `the artifact's array does not fit in the server VM; the lab gives the cache ${BMC_CACHE_RAM_SHARE * 100}% of its RAM`,
      affects: 'memcache/bmc (more hash collisions: fewer hits on large key sets)',
    });
  return out;
}

/**
 * BMC (NSDI '21) as KFlex's authors ported it (rs3lab/bmc-cache: libbpf, dynptr kfuncs), built in a throwaway
 * root of the guest suite with clang-19 and the suite's libbpf, installed into the image under BMC_GUEST_DIR.
 */
export class BmcStage implements Stage {
  readonly id = 'bmc';
  readonly version = '1';
  readonly deps = [] as const;
  readonly description = 'BMC (bmc, bmc_kern.o) built for the guest suite, patched for upstream when asked';

  private settings(config: ResolvedConfig): { variant: BmcVariant; entries: number } {
    const variant = config.profile.image.bmc;
    if (!variant) throw new LabError('stage bmc: image.bmc is false in this profile; set it to artifact or upstream', ExitCode.usage);
    return { variant, entries: bmcCacheEntries(config.profile.vms.server.memory_mb) };
  }

  async inputs(config: ResolvedConfig): Promise<unknown> {
    const { variant, entries } = this.settings(config);
    return {
      source: await sourceIdentity(config.profile.sources.bmc!),
      variant,
      patch: variant === 'upstream' ? sha256(await readFile(BMC_UPSTREAM_PATCH, 'utf8')) : null,
      entries,
      suite: config.profile.image.suite,
      packages: BMC_BUILD_PACKAGES,
      cmd: bmcBuildCommand('/build/bmc-cache'),
    };
  }

  async build(ctx: StageContext): Promise<Record<string, unknown>> {
    const source = ctx.config.profile.sources.bmc;
    if (!source) throw new LabError('image.bmc is set but the profile has no source named bmc; add sources.bmc to lab.yaml', ExitCode.usage);
    requireNeeds('bmc', [...BMC_PROGRAMS, ...SOURCE_NEEDS[source.kind]]);
    const { variant, entries } = this.settings(ctx.config);
    // An unreachable source (no GitHub here) leaves BMC out of the image, saying why, as memtier's does: the
    // memcache/bmc cell is then skipped with that reason, and the rest of the run goes on.
    let src: Awaited<ReturnType<typeof materialize>>;
    try {
      src = await materialize(source, { name: 'bmc', workDir: ctx.outDir, log: ctx.log, exec: ctx.exec, expect: 'bmc/bmc_kern.c' });
    } catch (e) {
      if (source.kind !== 'git') throw e;
      const reason = `source bmc unreachable (${(e as Error).message.split('\n')[0]}); pass --source bmc=/path/to/bmc-cache`;
      ctx.log(`BMC will not be in the image: ${reason}`);
      return { built: false, reason, variant };
    }
    for (const f of ['bmc/bmc_user.c', 'bmc/bmc_common.h', 'bmc/Makefile', 'bmc/bpf_kfuncs.h'])
      if (!existsSync(join(src.dir, f)))
        throw new LabError(`source bmc: ${src.origin} is not the rs3lab/bmc-cache tree (no ${f}); pass --source bmc=/path/to/bmc-cache`, ExitCode.usage);
    const i = ctx.config.profile.image;
    const dir = '/build/bmc-cache';
    ctx.log(`BMC ${variant}${variant === 'upstream' ? ' (images/bmc/upstream-7x.patch)' : ''}, ${entries} cache entries, in a ${i.suite} root`);
    const argv = mmdebstrapArgv({
      suite: i.suite,
      target: '/dev/null',
      mirror: i.mirror || hostDebianMirror(),
      variant: 'apt',
      include: BMC_BUILD_PACKAGES,
      customize: [
        `mkdir -p "$1${dir}"`,
        `copy-in ${src.dir}/. ${dir}`,
        ...bmcPatchHooks(variant, BMC_UPSTREAM_PATCH, dir),
        ...bmcCacheRewriteHooks(entries, dir),
        `chroot "$1" sh -c '${bmcBuildCommand(dir)}'`,
        `mkdir -p "$1/out" && cp ${BMC_FILES.map((f) => `"$1${dir}/bmc/${f}"`).join(' ')} "$1/out/"`,
        `copy-out /out ${ctx.outDir}`,
      ],
    });
    await runMmdebstrap(argv, { ...ctx.exec, timeoutMs: 30 * 60_000 }, i.suite, 'BMC build root');
    if (!existsSync(join(ctx.outDir, 'out'))) throw new LabError('BMC build root produced no /out directory; see the log', ExitCode.infra);
    await rename(join(ctx.outDir, 'out'), join(ctx.outDir, 'bmc'));
    const files = (await readdir(join(ctx.outDir, 'bmc'))).sort();
    const missing = BMC_FILES.filter((f) => !files.includes(f));
    if (missing.length) throw new LabError(`BMC build produced no ${missing.join(', ')}; see the log`, ExitCode.infra);
    if (!src.readOnly) await run(['rm', '-rf', src.dir]);
    const manifest = {
      source: { kind: src.kind, origin: src.origin, commit: src.commit },
      variant,
      patch: variant === 'upstream' ? { file: 'images/bmc/upstream-7x.patch', sha256: sha256(await readFile(BMC_UPSTREAM_PATCH, 'utf8')) } : null,
      cache: { artifact_entries: BMC_ARTIFACT_ENTRIES, entries, entry_bytes: BMC_ENTRY_BYTES },
      suite: i.suite,
      files,
      // The image stage copies every dependency that names a payload into the guest (images/stage.ts).
      payload: 'bmc',
      guest_dir: BMC_GUEST_DIR,
      guest_packages: BMC_GUEST_PACKAGES,
    };
    await writeFile(join(ctx.outDir, 'bmc.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** What the bmc stage produced: the directory with bmc and bmc_kern.o (bmc loads `<argv[0]>_kern.o`, so they stay together). */
export function bmcOutputs(o: StageOutput): { dir: string } {
  return { dir: join(o.dir, 'bmc') };
}
