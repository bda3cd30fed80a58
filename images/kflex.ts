import { join } from 'node:path';
import type { StageOutput } from '../core/stage.js';
import { existsSync } from 'node:fs';
import { readdir, rename, writeFile } from 'node:fs/promises';
import type { Stage, StageContext } from '../core/stage.js';
import { ARTIFACT_HEAPS, type ResolvedConfig, type HeapProgram } from '../core/config.js';
import { run } from '../core/exec.js';
import { materialize, sourceIdentity } from '../core/sources.js';
import { hostDebianMirror } from '../core/apt.js';
import { LabError, ExitCode } from '../core/errors.js';
import { mmdebstrapArgv, runMmdebstrap } from './mmdebstrap.js';
import { SOURCE_NEEDS, requireNeeds, type HostNeed } from '../core/requirements.js';

export { KFLEX_GUEST_DIR } from '../core/guest.js';

/**
 * What KFlex really needs to build (kflex-artifact-facts.md): the seed's apt list misses libabsl-dev,
 * libjemalloc-dev, libbpf-dev (bpf_helpers.h) and a libbenchmark-dev >= 1.8; clang must be >= 19.
 */
export const KFLEX_BUILD_PACKAGES = [
  'build-essential',
  'clang-19',
  'cmake',
  'ninja-build',
  'pkg-config',
  'libelf-dev',
  'zlib1g-dev',
  'libabsl-dev',
  'libjemalloc-dev',
  'libgtest-dev',
  'libbenchmark-dev',
  'libbpf-dev',
  'bpftool',
  'git',
  'ca-certificates',
];
/** Shared libraries the binaries load in the guest (the -dev packages pull in the exact runtime versions). */
export const KFLEX_RUNTIME_PACKAGES = ['libabsl-dev', 'libjemalloc-dev', 'libbenchmark-dev', 'libelf-dev', 'zlib1g-dev'];
/** What the kflex stage runs on the host: everything else runs in its throwaway build root. */
export const KFLEX_PROGRAMS: readonly HostNeed[] = [
  { name: 'mmdebstrap', package: 'mmdebstrap', why: "builds KFlex's user space in a throwaway root of the guest suite" },
  {
    name: 'debian-archive-keyring',
    file: '/usr/share/keyrings/debian-archive-keyring.gpg',
    package: 'debian-archive-keyring',
    why: "mmdebstrap checks the guest suite's Release signature with it",
  },
  { name: 'chroot', package: 'coreutils', why: "the build root's hooks run build.sh inside it" },
];
export const KFLEX_BINARIES = ['ffkx', 'ffkx-bench', 'ffkx-test'];

/** The BPF object that declares each program's heap, at the pinned commit (one live `ffkx_heap(N, 0) heap SEC` line each). */
export const HEAP_FILES: Record<HeapProgram, string> = {
  kmemcache: 'bpf/ffkx_memcache.bpf.c',
  kmemcached: 'bpf/ffkx_memcached.bpf.c',
  kredis: 'bpf/ffkx_redis.bpf.c',
  bench: 'bpf/bench_data_structures.bpf.c',
};

/**
 * mmdebstrap customize hooks that rewrite each scaled program's `ffkx_heap(N, 0)` declaration in the copied
 * tree before build.sh, each followed by a check that exactly one live declaration now has the new size.
 */
export function heapRewriteHooks(heaps: Record<HeapProgram, number>, dirInRoot: string): string[] {
  const hooks: string[] = [];
  for (const prog of Object.keys(HEAP_FILES) as HeapProgram[]) {
    const from = ARTIFACT_HEAPS[prog];
    const to = heaps[prog];
    if (to === from) continue;
    const file = `${dirInRoot}/${HEAP_FILES[prog]}`;
    hooks.push(`chroot "$1" sed -i -E 's/^ffkx_heap\\(${from}, 0\\) heap SEC/ffkx_heap(${to}, 0) heap SEC/' ${file}`);
    hooks.push(
      `chroot "$1" sh -c 'test "$(grep -cE "^ffkx_heap\\(${to}, 0\\) heap SEC" ${file})" = 1 || ` +
        `{ echo "heap rewrite of ${file} to ${to} GiB did not take" >&2; exit 1; }'`,
    );
  }
  return hooks;
}

/** The script run inside the throwaway build root; build.sh exits 0 even when it failed, so the binaries are checked. */
export function kflexBuildCommand(dirInRoot: string): string {
  return (
    `cd ${dirInRoot} && CLANG=clang-19 BPFTOOL=bpftool CC=clang-19 CXX=clang++-19 ./build.sh ` +
    `&& for b in ${KFLEX_BINARIES.join(' ')}; do test -x "$b" || { echo "KFlex build produced ` +
    `no $b" >&2; exit 1; }; done`
  );
}

/**
 * KFlex user space (ffkx, ffkx-bench, ffkx-test) built in a throwaway root filesystem of the guest's own
 * suite (mmdebstrap with the build dependencies), so the binaries match the guest's libraries.
 */
export class KflexStage implements Stage {
  readonly id = 'kflex';
  readonly version = '1';
  readonly deps = [] as const;
  readonly description = 'KFlex user space (ffkx, ffkx-bench, BPF objects) built for the guest suite';

  async inputs(config: ResolvedConfig): Promise<unknown> {
    return {
      source: await sourceIdentity(config.profile.sources.kflex!),
      heaps: config.profile.kflex.heap_gib,
      suite: config.profile.image.suite,
      packages: KFLEX_BUILD_PACKAGES,
      cmd: kflexBuildCommand('/build/KFlex'),
    };
  }

  async build(ctx: StageContext): Promise<Record<string, unknown>> {
    requireNeeds('kflex', [...KFLEX_PROGRAMS, ...SOURCE_NEEDS[ctx.config.profile.sources.kflex!.kind]]);
    const src = await materialize(ctx.config.profile.sources.kflex!, { name: 'kflex', workDir: ctx.outDir, log: ctx.log, exec: ctx.exec, expect: 'build.sh' });
    for (const f of ['src/Main.cpp', 'bpf/Makefile', 'CMakeLists.txt'])
      if (!existsSync(join(src.dir, f)))
        throw new LabError(`source kflex: ${src.origin} is not the KFlex tree (no ${f}); pass --source kflex=/path/to/KFlex`, ExitCode.usage);
    const out = join(ctx.outDir, 'kflex');
    const i = ctx.config.profile.image;
    const argv = mmdebstrapArgv({
      suite: i.suite,
      target: '/dev/null',
      mirror: i.mirror || hostDebianMirror(),
      variant: 'apt',
      include: KFLEX_BUILD_PACKAGES,
      customize: [
        'mkdir -p "$1/build/KFlex"',
        // copy-in of "dir/." copies the tree's contents; the user's checkout is only read.
        `copy-in ${src.dir}/. /build/KFlex`,
        ...heapRewriteHooks(ctx.config.profile.kflex.heap_gib, '/build/KFlex'),
        `chroot "$1" sh -c '${kflexBuildCommand('/build/KFlex')}'`,
        'mkdir -p "$1/out"',
        'chroot "$1" sh -c "cp /build/KFlex/ffkx /build/KFlex/ffkx-bench /build/KFlex/ffkx-test /out/ && cp /build/KFlex/bpf/*.bpf.o /out/ 2>/dev/null; true"',
        // copy-out puts the directory itself (out/) under the target; renamed below.
        `copy-out /out ${ctx.outDir}`,
      ],
    });
    await runMmdebstrap(argv, { ...ctx.exec, timeoutMs: 90 * 60_000 }, i.suite, 'KFlex build root');
    if (!existsSync(join(ctx.outDir, 'out'))) throw new LabError('KFlex build root produced no /out directory; see the log', ExitCode.infra);
    await rename(join(ctx.outDir, 'out'), out);
    const files = await readdir(out);
    const missing = KFLEX_BINARIES.filter((b) => !files.includes(b));
    if (missing.length) throw new LabError(`KFlex build produced no ${missing.join(', ')}; see the log`, ExitCode.infra);
    const heaps = Object.fromEntries(
      (Object.keys(HEAP_FILES) as HeapProgram[]).map((p) => [
        p,
        { artifact_gib: ARTIFACT_HEAPS[p], built_gib: ctx.config.profile.kflex.heap_gib[p], file: HEAP_FILES[p] },
      ]),
    );
    const manifest = { source: { kind: src.kind, origin: src.origin, commit: src.commit }, suite: i.suite, heaps, files: files.sort() };
    await writeFile(join(ctx.outDir, 'kflex.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (!src.readOnly) await run(['rm', '-rf', src.dir]);
    return manifest;
  }
}

/** What the kflex stage produced: the directory with ffkx, ffkx-bench, ffkx-test and the BPF objects. */
export function kflexOutputs(o: StageOutput): { dir: string } {
  return { dir: join(o.dir, 'kflex') };
}
