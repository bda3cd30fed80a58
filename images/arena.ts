import { existsSync } from 'node:fs';
import { copyFile, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Stage, StageContext, StageOutput } from '../core/stage.js';
import type { ResolvedConfig } from '../core/config.js';
import { run } from '../core/exec.js';
import { materialize, sourceIdentity } from '../core/sources.js';
import { hostDebianMirror } from '../core/apt.js';
import { LabError, ExitCode } from '../core/errors.js';
import { LAB_ROOT } from '../core/paths.js';
import { ARENA_GUEST_DIR } from '../core/guest.js';
import { SOURCE_NEEDS, requireNeeds, type HostNeed } from '../core/requirements.js';
import { kernelOutputs } from '../kernel/stage.js';
import { mmdebstrapArgv, runMmdebstrap } from './mmdebstrap.js';

export { ARENA_GUEST_DIR } from '../core/guest.js';

/** The benchmark's own sources (BPF programs, runner, Makefile), written for this lab. */
export const ARENA_SRC_DIR = join(LAB_ROOT, 'bpf', 'arena');

/**
 * What the build root needs: clang-19 for the BPF programs; gcc and make for libbpf, bpftool and the runner
 * (the tree's libbpf linked in statically; trixie's libelf.a cannot be, it lacks elfutils' libeu); python3 for
 * libbpf's bpf_helper_defs.h (scripts/bpf_doc.py); libssl-dev and llvm-19 (llvm-strip) for bpftool (7.x signs
 * programs: sign.c includes openssl; its own skeletons are stripped).
 */
export const ARENA_BUILD_PACKAGES = ['build-essential', 'clang-19', 'llvm-19', 'make', 'pkg-config', 'python3', 'libelf-dev', 'zlib1g-dev', 'libssl-dev'];
/** What the runner loads in the guest: the suite's libelf (zlib is essential). */
export const ARENA_GUEST_PACKAGES = ['libelf1t64'];
/** What the guest gets: the runner (the BPF objects are embedded in it) and the objects themselves. */
export const ARENA_FILES = ['kflex-arena-bench', 'bench_arena.bpf.o', 'bench_kern.bpf.o'];
/** The built kernel's configuration, beside the runner (its --kconfig default). */
export const ARENA_KCONFIG = 'kernel.config';
/** The runner's name in the guest. */
export const ARENA_RUNNER = `${ARENA_GUEST_DIR}/kflex-arena-bench`;

/**
 * The parts of the kernel tree the build reads (libbpf and bpftool from tools/, libarena and the arena headers
 * from tools/testing/selftests/bpf, bpf_doc.py from scripts/, bpf.h from include/uapi, bpftool's disassembler
 * from kernel/bpf): copied into the build root instead of the whole 1.5 GB tree.
 */
export const KERNEL_TREE_PARTS = ['Makefile', 'tools', 'scripts', 'include/uapi', 'arch/x86/include/uapi', 'kernel/bpf'];
/** A file that only a tree with libarena has (Linux 7.x); 6.x selftests have the arena headers but no libarena. */
export const LIBARENA_MARKER = 'tools/testing/selftests/bpf/libarena/include/libarena/rbtree.h';

/** What the arena stage runs on the host: everything else runs in its throwaway build root. */
export const ARENA_PROGRAMS: readonly HostNeed[] = [
  { name: 'mmdebstrap', package: 'mmdebstrap', why: 'builds the arena benchmark in a throwaway root of the guest suite' },
  {
    name: 'debian-archive-keyring',
    file: '/usr/share/keyrings/debian-archive-keyring.gpg',
    package: 'debian-archive-keyring',
    why: "mmdebstrap checks the guest suite's Release signature with it",
  },
  { name: 'chroot', package: 'coreutils', why: "the build root's hook runs make inside it" },
  { name: 'tar', package: 'tar', why: 'packs the parts of the kernel tree the arena build reads (mmdebstrap tar-in)' },
  { name: 'objcopy', package: 'binutils', why: "extracts the kernel's BTF (.BTF of vmlinux) for the benchmark's vmlinux.h" },
];

/** The make command inside the build root (bpf/arena/Makefile), and the check that it produced every file. */
export function arenaBuildCommand(o: { dir: string; ksrc: string; btf: string; out: string }): string {
  const make = `make -C ${o.dir} KSRC=${o.ksrc} VMLINUX=${o.btf} OUT=${o.out} CLANG=clang-19 -j"$(nproc)"`;
  return `${make} && for f in ${ARENA_FILES.join(' ')}; do test -s ${o.out}/$f || { echo "arena build produced no $f" >&2; exit 1; }; done`;
}

/** The mmdebstrap customize hooks: bring in the sources, the kernel tree's parts and the BTF, build, copy the payload out. */
export function arenaHooks(o: { srcDir: string; treeTar: string; btf: string; outDir: string }): string[] {
  const dir = '/build/arena';
  const ksrc = '/build/linux';
  const out = '/build/out';
  return [
    `mkdir -p "$1${dir}" "$1${ksrc}" "$1/payload"`,
    `copy-in ${o.srcDir}/. ${dir}`,
    `tar-in ${o.treeTar} ${ksrc}`,
    `copy-in ${o.btf} /build`,
    `chroot "$1" sh -c '${arenaBuildCommand({ dir, ksrc, btf: `/build/${o.btf.split('/').at(-1)}`, out })}'`,
    `cp ${ARENA_FILES.map((f) => `"$1${out}/${f}"`).join(' ')} "$1/payload/"`,
    `copy-out /payload ${o.outDir}`,
  ];
}

/** sha256 of every file of bpf/arena, by name: an edit to a program or the runner rebuilds the stage. */
async function sourceHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of (await readdir(dir, { withFileTypes: true })).filter((x) => x.isFile()).sort((a, b) => a.name.localeCompare(b.name)))
    out[e.name] = createHash('sha256')
      .update(await readFile(join(dir, e.name)))
      .digest('hex');
  return out;
}

/**
 * The arena data-structure benchmark (issue 19): bpf/arena's BPF programs and the kflex-arena-bench runner,
 * built in a throwaway root of the guest suite against the profile's own kernel source (libbpf, bpftool,
 * libarena and the arena headers of that tree) and the built kernel's BTF; installed under ARENA_GUEST_DIR.
 */
export class ArenaStage implements Stage {
  readonly id = 'arena';
  readonly version = '2';
  readonly deps = ['kernel'] as const;
  readonly description = 'arena benchmark (kflex-arena-bench, BPF objects) built against the kernel tree and BTF';

  async inputs(config: ResolvedConfig): Promise<unknown> {
    const k = config.profile.kernel;
    return {
      kernel_source: await sourceIdentity(config.profile.sources[k.source]!),
      files: await sourceHashes(ARENA_SRC_DIR),
      suite: config.profile.image.suite,
      packages: ARENA_BUILD_PACKAGES,
      parts: KERNEL_TREE_PARTS,
      cmd: arenaBuildCommand({ dir: '/build/arena', ksrc: '/build/linux', btf: '/build/vmlinux.btf', out: '/build/out' }),
    };
  }

  async build(ctx: StageContext): Promise<Record<string, unknown>> {
    const name = ctx.config.profile.kernel.source;
    const source = ctx.config.profile.sources[name]!;
    requireNeeds('arena', [...ARENA_PROGRAMS, ...SOURCE_NEEDS[source.kind]]);
    const kernel = ctx.deps.kernel;
    if (!kernel) throw new LabError('stage arena: the kernel stage did not run', ExitCode.infra);
    const src = await materialize(source, { name, workDir: ctx.workDir, log: ctx.log, exec: ctx.exec, expect: 'Kbuild' });
    if (!existsSync(join(src.dir, LIBARENA_MARKER)))
      throw new LabError(
        `stage arena: ${src.origin} has no ${LIBARENA_MARKER}: the arena benchmark needs a kernel tree with libarena (Linux 7.x)`,
        ExitCode.usage,
        'set image.arena: false for this profile, or use a 7.x kernel source (--source kernel=/path/to/linux-7.x)',
      );
    const treeTar = join(ctx.outDir, 'linux-parts.tar');
    const btf = join(ctx.outDir, 'vmlinux.btf');
    await run(['tar', '-C', src.dir, '-cf', treeTar, ...KERNEL_TREE_PARTS], { ...ctx.exec, timeoutMs: 10 * 60_000 });
    await run(['objcopy', '-O', 'binary', '--only-section=.BTF', kernelOutputs(kernel).vmlinux, btf], ctx.exec);
    const i = ctx.config.profile.image;
    ctx.log(`arena benchmark against ${src.origin} (${src.version ?? src.commit ?? 'tree'}) in a ${i.suite} root`);
    const argv = mmdebstrapArgv({
      suite: i.suite,
      target: '/dev/null',
      mirror: i.mirror || hostDebianMirror(),
      variant: 'apt',
      include: ARENA_BUILD_PACKAGES,
      customize: arenaHooks({ srcDir: ARENA_SRC_DIR, treeTar, btf, outDir: ctx.outDir }),
    });
    await runMmdebstrap(argv, { ...ctx.exec, timeoutMs: 40 * 60_000 }, i.suite, 'arena build root');
    await rm(treeTar, { force: true });
    await rm(btf, { force: true });
    if (!existsSync(join(ctx.outDir, 'payload'))) throw new LabError('arena build root produced no /payload directory; see the log', ExitCode.infra);
    await rename(join(ctx.outDir, 'payload'), join(ctx.outDir, 'arena'));
    // libbpf resolves libarena's __kconfig externs (CONFIG_NR_CPUS) from the running kernel's configuration;
    // a guest kernel without IKCONFIG has none, so the runner reads this one beside it (bpf/arena/runner.c).
    await copyFile(kernelOutputs(kernel).config, join(ctx.outDir, 'arena', ARENA_KCONFIG));
    const files = (await readdir(join(ctx.outDir, 'arena'))).sort();
    const missing = [...ARENA_FILES, ARENA_KCONFIG].filter((f) => !files.includes(f));
    if (missing.length) throw new LabError(`arena build produced no ${missing.join(', ')}; see the log`, ExitCode.infra);
    if (!src.readOnly) await run(['rm', '-rf', src.dir]);
    const manifest = {
      kernel_source: { kind: src.kind, origin: src.origin, commit: src.commit, version: src.version, sha256: src.sha256 },
      suite: i.suite,
      files,
      runner: ARENA_RUNNER,
      // The image stage copies every dependency that names a payload into the guest (images/stage.ts).
      payload: 'arena',
      guest_dir: ARENA_GUEST_DIR,
      guest_packages: ARENA_GUEST_PACKAGES,
    };
    await writeFile(join(ctx.outDir, 'arena.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  }
}

/** What the arena stage produced: the directory with kflex-arena-bench and the BPF objects. */
export function arenaOutputs(o: StageOutput): { dir: string; runner: string } {
  return { dir: join(o.dir, 'arena'), runner: join(o.dir, 'arena', 'kflex-arena-bench') };
}
