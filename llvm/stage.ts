import { join } from 'node:path';
import type { StageOutput } from '../core/stage.js';
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { freemem, cpus } from 'node:os';
import type { Stage, StageContext } from '../core/stage.js';
import type { ResolvedConfig, Profile } from '../core/config.js';
import { findClang, type ClangFound } from '../core/doctor.js';
import { run, probe, type RunOptions } from '../core/exec.js';
import { materialize, sourceIdentity } from '../core/sources.js';
import { LabError, ExitCode } from '../core/errors.js';
import { bpfCompileArgv, XDP_PROBE_SRC, MECHANISMS_DIR, mechanismFiles } from '../bpf/build.js';
import { SOURCE_NEEDS, requireNeeds, type HostNeed } from '../core/requirements.js';

/** What the llvm stage runs besides the clang itself (the doctor's clang check covers any clang >= the minimum). */
export const LLVM_PROGRAMS: readonly HostNeed[] = [
  {
    name: 'asm/types.h',
    file: '/usr/include/x86_64-linux-gnu/asm/types.h',
    package: 'linux-libc-dev',
    why: 'the XDP probe includes <linux/bpf.h>, whose asm/ headers live in the multiarch include dir',
  },
  { name: 'apt-get', package: 'apt', why: 'toolchain.policy auto/package installs toolchain.package when no clang >= the minimum is on PATH' },
];
/** What an LLVM source build (toolchain.policy: source) runs. */
export const LLVM_SOURCE_BUILD_PROGRAMS: readonly HostNeed[] = [
  { name: 'cmake', package: 'cmake', why: 'configures the llvm-project build (toolchain.policy: source)' },
  { name: 'ninja', package: 'ninja-build', why: 'builds and installs clang and llc (toolchain.policy: source)' },
  { name: 'g++', package: 'g++', why: 'compiles LLVM (toolchain.policy: source)' },
  { name: 'python3', package: 'python3', why: "LLVM's cmake configuration runs python3 (toolchain.policy: source)" },
  { name: 'ld.lld', package: 'lld', why: 'links LLVM faster and in less RAM (toolchain.policy: source)', optional: 'LLVM links with the system ld' },
];

export interface LlvmSourceBuildOptions {
  srcDir: string;
  buildDir: string;
  installDir: string;
  freeRamGb: number;
  lld: boolean;
  ccache: boolean;
}

/**
 * cmake configure argv for an LLVM source build: the seed's options made safe for small machines.
 * A clang link takes ~4-6 GiB, so parallel links are capped by free RAM instead of by cores.
 */
export function llvmCmakeArgv(o: LlvmSourceBuildOptions): string[] {
  const linkJobs = Math.max(1, Math.min(cpus().length, Math.floor(o.freeRamGb / 6)));
  return [
    'cmake',
    '-S',
    join(o.srcDir, 'llvm'),
    '-B',
    o.buildDir,
    '-G',
    'Ninja',
    '-DLLVM_TARGETS_TO_BUILD=BPF;X86',
    '-DLLVM_ENABLE_PROJECTS=clang',
    '-DCMAKE_BUILD_TYPE=Release',
    '-DLLVM_BUILD_RUNTIME=OFF',
    `-DCMAKE_INSTALL_PREFIX=${o.installDir}`,
    `-DLLVM_PARALLEL_LINK_JOBS=${linkJobs}`,
    '-DLLVM_INCLUDE_TESTS=OFF',
    '-DLLVM_INCLUDE_EXAMPLES=OFF',
    '-DLLVM_INCLUDE_BENCHMARKS=OFF',
    ...(o.lld ? ['-DLLVM_USE_LINKER=lld'] : []),
    ...(o.ccache ? ['-DLLVM_CCACHE_BUILD=ON'] : []),
  ];
}

/** Which way the policy resolves on this host, before building anything. */
export async function resolveToolchain(p: Profile['toolchain']): Promise<{ how: 'system' | 'package' | 'source'; clang?: ClangFound }> {
  const sys = p.policy === 'source' ? undefined : await findClang(p.min_version, p.path);
  const good = sys && sys.version >= p.min_version && sys.bpf ? sys : undefined;
  if (p.policy === 'system') {
    if (!good)
      throw new LabError(
        `toolchain.policy is system but ` +
          `${sys ? `${sys.path} is clang ${sys.version}${sys.bpf ? '' : ' without the BPF target'}` : `no clang >= ${p.min_version} is on PATH`}; ` +
          `install ${p.package ?? `clang-${p.min_version}`} or set toolchain.policy: auto`,
        ExitCode.infra,
      );
    return { how: 'system', clang: good };
  }
  if (good && p.policy === 'auto') return { how: 'system', clang: good };
  if (p.policy === 'source') return { how: 'source' };
  if (p.package && (p.policy === 'package' || p.policy === 'auto') && (await probe(['apt-get', '--version']))) return { how: 'package' };
  if (p.policy === 'package') throw new LabError(`toolchain.policy is package but this host has no apt-get to install ${p.package}`, ExitCode.infra);
  return { how: 'source' };
}

/** LLVM >= the profile's minimum with the BPF target, proven by compiling the lab's XDP probe and its mechanism probes. */
export class LlvmStage implements Stage {
  readonly id = 'llvm';
  readonly version = '1';
  readonly deps = [] as const;
  readonly description = 'clang/LLVM with the BPF target (system, package, or source build)';

  async inputs(config: ResolvedConfig): Promise<unknown> {
    const t = config.profile.toolchain;
    const r = await resolveToolchain(t).catch(() => ({ how: 'unresolved' as const, clang: undefined }));
    return {
      toolchain: t,
      how: r.how,
      clang: r.clang ? { path: r.clang.path, version: r.clang.version } : undefined,
      source: r.how === 'source' ? await sourceIdentity(config.profile.sources[t.source]!) : undefined,
      probe: await readFile(XDP_PROBE_SRC, 'utf8'),
      mechanisms: await mechanismSourcesText(),
    };
  }

  async build(ctx: StageContext): Promise<Record<string, unknown>> {
    const t = ctx.config.profile.toolchain;
    const r = await resolveToolchain(t);
    requireNeeds(
      'llvm',
      r.how === 'source' ? [...LLVM_PROGRAMS, ...LLVM_SOURCE_BUILD_PROGRAMS, ...SOURCE_NEEDS[ctx.config.profile.sources[t.source]!.kind]] : LLVM_PROGRAMS,
    );
    let clang: ClangFound | undefined = r.clang;
    const runOpts = { ...ctx.exec };
    if (r.how === 'package') {
      if (process.getuid?.() !== 0)
        throw new LabError(
          `installing ${t.package} needs root; run: sudo apt-get install -y ${t.package} ${t.package!.replace('clang', 'llvm')}`,
          ExitCode.infra,
        );
      ctx.log(`installing ${t.package} with apt-get (toolchain.policy ${t.policy})`);
      await run(['apt-get', 'install', '-y', '--no-install-recommends', t.package!, t.package!.replace('clang', 'llvm')], {
        ...runOpts,
        env: { DEBIAN_FRONTEND: 'noninteractive' },
        timeoutMs: 30 * 60_000,
      });
      clang = await findClang(t.min_version);
    } else if (r.how === 'source') {
      clang = await buildFromSource(ctx);
    }
    if (!clang || clang.version < t.min_version || !clang.bpf)
      throw new LabError(`no usable clang >= ${t.min_version} with the BPF target after ${r.how}`, ExitCode.infra);
    const obj = join(ctx.outDir, 'xdp_probe.bpf.o');
    await run(bpfCompileArgv(clang.path, XDP_PROBE_SRC, obj), runOpts);
    ctx.log(`compiled ${XDP_PROBE_SRC} with ${clang.path} ${clang.version}`);
    const mechanisms = await compileMechanisms(clang.path, join(ctx.outDir, MECHANISMS_OUT), runOpts);
    ctx.log(`compiled ${mechanisms.length} mechanism probes from ${MECHANISMS_DIR}`);
    return {
      how: r.how,
      clang: clang.path,
      clang_version: clang.version,
      llc_bpf: clang.bpf,
      xdp_probe: 'xdp_probe.bpf.o',
      mechanisms: mechanisms.map((o) => `${MECHANISMS_OUT}/${o}`),
    };
  }
}

/** Where the stage puts the mechanism probes' objects, under its output directory. */
const MECHANISMS_OUT = 'mechanisms';

/** The mechanism probes' sources and headers by name (part of the stage's inputs: an edited probe rebuilds it). */
async function mechanismSourcesText(): Promise<Record<string, string>> {
  const { sources, headers } = mechanismFiles();
  const text: Record<string, string> = {};
  for (const n of [...headers, ...sources]) text[n] = await readFile(join(MECHANISMS_DIR, n), 'utf8');
  return text;
}

/** Compile every bpf/mechanisms/*.bpf.c to <outDir>/<name>.bpf.o with the stage's clang; the objects' names. */
async function compileMechanisms(clang: string, outDir: string, runOpts: RunOptions): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const objects: string[] = [];
  for (const src of mechanismFiles().sources) {
    const obj = src.replace(/\.c$/, '.o');
    await run(bpfCompileArgv(clang, join(MECHANISMS_DIR, src), join(outDir, obj)), runOpts);
    objects.push(obj);
  }
  return objects;
}

async function buildFromSource(ctx: StageContext): Promise<ClangFound> {
  const t = ctx.config.profile.toolchain;
  const work = join(ctx.cacheRoot, 'llvm-work');
  await mkdir(work, { recursive: true });
  const src = await materialize(ctx.config.profile.sources[t.source]!, {
    name: t.source,
    workDir: work,
    log: ctx.log,
    exec: ctx.exec,
    expect: 'llvm/CMakeLists.txt',
  });
  const installDir = join(ctx.outDir, 'install');
  const argv = llvmCmakeArgv({
    srcDir: src.dir,
    buildDir: join(work, 'build'),
    installDir,
    freeRamGb: freemem() / 2 ** 30,
    lld: !!(await probe(['ld.lld', '--version'])),
    ccache: !!(await probe(['ccache', '--version'])),
  });
  const runOpts = { ...ctx.exec, timeoutMs: 12 * 3600_000 };
  await run(argv, runOpts);
  await run(['ninja', '-C', join(work, 'build'), 'install-clang', 'install-llc', 'install-clang-resource-headers'], runOpts);
  const clangPath = join(installDir, 'bin', 'clang');
  if (!existsSync(clangPath)) throw new LabError(`LLVM source build finished without ${clangPath}`, ExitCode.infra);
  const found = await findClang(t.min_version, clangPath);
  if (!found) throw new LabError(`${clangPath} does not report a clang version`, ExitCode.infra);
  return found;
}

/**
 * What the llvm stage produced: the lab's XDP probe and its mechanism probes (object name -> path) compiled
 * for the BPF target, and the clang that did it.
 */
export function llvmOutputs(o: StageOutput): { probeObject: string; mechanismObjects: Record<string, string>; clang: string; clangVersion: number } {
  const mechanisms = Array.isArray(o.manifest.mechanisms) ? (o.manifest.mechanisms as string[]) : [];
  return {
    probeObject: join(o.dir, 'xdp_probe.bpf.o'),
    mechanismObjects: Object.fromEntries(mechanisms.map((rel) => [rel.slice(rel.lastIndexOf('/') + 1), join(o.dir, rel)])),
    clang: String(o.manifest.clang),
    clangVersion: Number(o.manifest.clang_version),
  };
}
