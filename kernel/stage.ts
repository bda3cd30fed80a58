import { join, isAbsolute, resolve } from 'node:path';
import type { StageOutput } from '../core/stage.js';
import { LAB_ROOT } from '../core/paths.js';
import { copyFile, mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import type { Stage, StageContext } from '../core/stage.js';
import type { ResolvedConfig } from '../core/config.js';
import { run, probe, type RunOptions } from '../core/exec.js';
import { materialize, sourceIdentity } from '../core/sources.js';
import { LabError, ExitCode } from '../core/errors.js';
import {
  parseConfig,
  renderFragment,
  verifyConfig,
  kconfigEntry,
  formatMismatch,
  selectFragment,
  kernelVersionFromMakefile,
  formatKernelVersion,
  type KernelVersion,
} from './kconfig.js';
import { SOURCE_NEEDS, requireNeeds, type HostNeed } from '../core/requirements.js';

/**
 * What the kernel's make targets (tinyconfig/defconfig, olddefconfig, bzImage, headers_install) run on
 * the host, beyond the POSIX tools of every Debian system. Found by tracing every execve of the smoke
 * build (6.1, tinyconfig + fragments) and reading what the paper's defconfig adds (its v6.9
 * x86_64_defconfig and top Makefile match 6.1's and 6.12's here: headers_install still uses rsync).
 */
export const KERNEL_PROGRAMS: readonly HostNeed[] = [
  { name: 'make', package: 'make', why: 'runs every kernel build step' },
  { name: 'gcc', package: 'gcc', why: 'compiles the kernel and its host tools (CC and HOSTCC)' },
  { name: 'stdio.h', file: '/usr/include/stdio.h', package: 'libc6-dev', why: 'the host tools (kconfig, objtool, fixdep) include the C library headers' },
  { name: 'ld', package: 'binutils', why: 'links vmlinux (as, ar, nm, objcopy, objdump come with it)' },
  { name: 'flex', package: 'flex', why: 'generates the kconfig lexer (make tinyconfig/defconfig)' },
  { name: 'bison', package: 'bison', why: 'generates the kconfig parser (make tinyconfig/defconfig)' },
  { name: 'bc', package: 'bc', why: 'kernel/time/timeconst.bc makes timeconst.h' },
  { name: 'pahole', package: 'dwarves', why: 'CONFIG_DEBUG_INFO_BTF: encodes the BTF into vmlinux (>= 1.16)' },
  { name: 'libelf.h', file: '/usr/include/libelf.h', package: 'libelf-dev', why: 'objtool and resolve_btfids (CONFIG_OBJTOOL, DEBUG_INFO_BTF) link libelf' },
  { name: 'python3', package: 'python3', why: "scripts/bpf_doc.py writes libbpf's bpf_helper_defs.h for resolve_btfids (DEBUG_INFO_BTF)" },
  { name: 'xz', package: 'xz-utils', why: 'tinyconfig sets CONFIG_KERNEL_XZ: the bzImage payload is compressed with xz' },
  {
    name: 'openssl/ssl.h',
    file: '/usr/include/openssl/ssl.h',
    package: 'libssl-dev',
    why: 'defconfig (paper) sets CONFIG_SYSTEM_TRUSTED_KEYRING: certs/extract-cert links libcrypto',
  },
  { name: 'perl', package: 'perl', why: 'defconfig (paper) sets CONFIG_OID_REGISTRY: lib/build_OID_registry is a perl script' },
  { name: 'rsync', package: 'rsync', why: 'make headers_install copies the UAPI headers with rsync' },
  { name: 'ccache', package: 'ccache', why: 'rebuilds (--force, a fragment edit) are incremental', optional: 'without it every rebuild compiles from scratch' },
];

export const FRAGMENT_DIR = join(LAB_ROOT, 'kernel', 'configs');

export function fragmentPath(name: string): string {
  return isAbsolute(name) || name.includes('/') ? resolve(name) : join(FRAGMENT_DIR, `${name}.config`);
}

/** argv of the make steps, all out of tree (O=) so the source is never written. */
export function kernelMakeArgv(src: string, build: string, target: string[], opts: { jobs?: number; ccache?: boolean } = {}): string[] {
  return ['make', '-C', src, `O=${build}`, ...(opts.jobs ? [`-j${opts.jobs}`] : []), ...(opts.ccache ? ['CC=ccache gcc', 'HOSTCC=ccache gcc'] : []), ...target];
}

/** A bootable bzImage with everything built in, its configuration verified option by option. */
export class KernelStage implements Stage {
  readonly id = 'kernel';
  readonly version = '1';
  readonly deps = [] as const;
  readonly description = 'guest kernel: bzImage + vmlinux (BTF), config verified against the fragments';

  async inputs(config: ResolvedConfig): Promise<unknown> {
    const k = config.profile.kernel;
    const frags: Record<string, string> = {};
    for (const f of k.fragments) frags[f] = existsSync(fragmentPath(f)) ? await readFile(fragmentPath(f), 'utf8') : 'missing';
    const base = ['tinyconfig', 'defconfig'].includes(k.base)
      ? k.base
      : existsSync(k.base)
        ? createHash('sha256')
            .update(await readFile(k.base))
            .digest('hex')
        : 'missing';
    return {
      source: await sourceIdentity(config.profile.sources[k.source]!),
      base,
      fragments: frags,
      extra: k.extra,
      gcc: (await probe(['gcc', '--version']))?.split('\n')[0],
      pahole: (await probe(['pahole', '--version']))?.trim(),
    };
  }

  async build(ctx: StageContext): Promise<Record<string, unknown>> {
    const k = ctx.config.profile.kernel;
    requireNeeds('kernel', [...KERNEL_PROGRAMS, ...SOURCE_NEEDS[ctx.config.profile.sources[k.source]!.kind]]);
    for (const f of k.fragments) if (!existsSync(fragmentPath(f))) throw new LabError(`kernel.fragments: ${f}: no file ${fragmentPath(f)}`, ExitCode.usage);
    // The build tree lives beside the cache entry (<cache>/kernel-work/<fingerprint>), so `--force kernel` rebuilds incrementally.
    const work = ctx.workDir;
    await mkdir(work, { recursive: true });
    const started = Date.now();
    const srcInfo = await materialize(ctx.config.profile.sources[k.source]!, {
      name: k.source,
      workDir: work,
      log: ctx.log,
      exec: ctx.exec,
      expect: 'Kbuild',
    });
    const src = srcInfo.dir;
    if (existsSync(join(src, '.config')))
      throw new LabError(
        `kernel source ${src} has a .config at its top: it is not clean, and out-of-tree builds ` +
          `(O=) refuse it; run 'make mrproper' there or point at a clean tree`,
        ExitCode.usage,
      );
    const build = join(work, 'build');
    await mkdir(build, { recursive: true });
    const runOpts = { ...ctx.exec, timeoutMs: 4 * 3600_000 };
    const ccache = !!(await probe(['ccache', '--version']));
    const env = ccache ? { CCACHE_BASEDIR: work, CCACHE_NOHASHDIR: 'true' } : {};

    // 1-3. base configuration, fragments + extras, olddefconfig, every option verified
    const verified = await configureKernel(src, build, k, runOpts);
    ctx.log(`configuration verified: ${verified.options} options from ${verified.fragments} fragments (kernel ${verified.version})`);
    for (const [f, opts] of Object.entries(verified.versionGuarded)) ctx.log(`  ${f}: not asked of ${verified.version} (version guards): ${opts.join(' ')}`);
    // 4. build
    const jobs = cpus().length;
    await run(kernelMakeArgv(src, build, ['bzImage'], { jobs, ccache }), { ...runOpts, env });
    await run(kernelMakeArgv(src, build, ['headers_install', `INSTALL_HDR_PATH=${join(ctx.outDir, 'headers')}`]), runOpts);
    for (const [from, to] of [
      ['arch/x86/boot/bzImage', 'bzImage'],
      ['vmlinux', 'vmlinux'],
      ['.config', 'config'],
      ['System.map', 'System.map'],
    ] as const)
      await copyFile(join(build, from), join(ctx.outDir, to));
    const release = (await run(kernelMakeArgv(src, build, ['-s', 'kernelrelease']))).stdout.trim();
    const configSha = createHash('sha256')
      .update(await readFile(join(build, '.config')))
      .digest('hex');
    const manifest = {
      release,
      source: { kind: srcInfo.kind, origin: srcInfo.origin, commit: srcInfo.commit, sha256: srcInfo.sha256, version: srcInfo.version },
      base: k.base,
      fragments: k.fragments,
      // Options a fragment's `# @if kernel ...` guards left out for this version (the rest were all verified).
      version_guarded: verified.versionGuarded,
      extra: k.extra,
      config_sha256: configSha,
      gcc: (await probe(['gcc', '--version']))?.split('\n')[0],
      pahole: (await probe(['pahole', '--version']))?.trim(),
      ccache,
      jobs,
      build_seconds: (Date.now() - started) / 1000,
      files: { bzImage: 'bzImage', vmlinux: 'vmlinux', config: 'config', system_map: 'System.map', headers: 'headers' },
    };
    await writeFile(join(ctx.outDir, 'kernel.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    // The unpacked source of a package/tarball is large and reproducible: drop it, keep the build tree.
    if (!srcInfo.readOnly && srcInfo.kind !== 'git') await rm(join(work, 'apt-state'), { recursive: true, force: true });
    return manifest;
  }
}

/**
 * Steps 1-3 of a kernel build, without compiling: the base configuration (tinyconfig, defconfig or a
 * file), the fragments and the profile's extras merged, olddefconfig, then every requested option
 * verified (merge_config.sh only warns; the lab fails and explains each dropped option by its Kconfig
 * `depends on`). Returns how many options were verified.
 */
export async function configureKernel(
  src: string,
  build: string,
  k: ResolvedConfig['profile']['kernel'],
  runOpts: RunOptions,
): Promise<{ options: number; fragments: number; version: string; versionGuarded: Record<string, string[]> }> {
  if (k.base === 'tinyconfig' || k.base === 'defconfig') await run(kernelMakeArgv(src, build, [k.base]), runOpts);
  else {
    if (!existsSync(k.base)) throw new LabError(`kernel.base: ${k.base}: no such file (use tinyconfig, defconfig or a path to a .config)`, ExitCode.usage);
    await copyFile(k.base, join(build, '.config'));
  }
  // 2. fragments (as they apply to this tree's version) + profile extras, merged, then olddefconfig resolves dependencies
  const { version, files: selected } = await selectFragments(src, build, k.fragments);
  const extraPath = join(build, 'lab-extra.config');
  await writeFile(extraPath, renderFragment(k.extra));
  const fragFiles = [...selected.map((f) => f.path), extraPath];
  await run([join(src, 'scripts/kconfig/merge_config.sh'), '-m', '-O', build, join(build, '.config'), ...fragFiles], { ...runOpts, cwd: src });
  await run(kernelMakeArgv(src, build, ['olddefconfig']), runOpts);
  // 3. verify: merge_config.sh only warns; the lab fails and explains each dropped option.
  const final = parseConfig(await readFile(join(build, '.config'), 'utf8'));
  const frags = await Promise.all(fragFiles.map(async (f) => ({ name: f.split('/').at(-1)!, values: parseConfig(await readFile(f, 'utf8')) })));
  const mismatches = verifyConfig(frags, final);
  if (mismatches.length) {
    const lines: string[] = [];
    for (const m of mismatches) lines.push(formatMismatch(m, await kconfigDeps(src, m.option)));
    throw new LabError(
      `kernel configuration: ${mismatches.length} option(s) did not stick after olddefconfig:\n${lines.map((l) => `  - ${l}`).join('\n')}`,
      ExitCode.infra,
    );
  }
  return {
    options: frags.reduce((n, f) => n + f.values.size, 0),
    fragments: frags.length,
    version: formatKernelVersion(version),
    versionGuarded: Object.fromEntries(selected.filter((f) => f.dropped.length).map((f) => [f.name, f.dropped])),
  };
}

/**
 * Each fragment as it applies to the tree's version (its `# @if kernel ...` guards resolved), written to
 * <build>/fragments/: these exact files are merged and verified, so a guard chooses what a version is
 * asked for and never weakens the check.
 */
export async function selectFragments(
  src: string,
  build: string,
  fragments: string[],
): Promise<{ version: KernelVersion; files: Array<{ name: string; path: string; dropped: string[] }> }> {
  const version = kernelVersionFromMakefile(await readFile(join(src, 'Makefile'), 'utf8').catch(() => ''));
  if (!version) throw new LabError(`kernel source ${src}: no VERSION/PATCHLEVEL in its top Makefile: not a kernel tree`, ExitCode.usage);
  const dir = join(build, 'fragments');
  await mkdir(dir, { recursive: true });
  const files = [];
  for (const f of fragments) {
    const name = fragmentPath(f).split('/').at(-1)!;
    let sel: ReturnType<typeof selectFragment>;
    try {
      sel = selectFragment(await readFile(fragmentPath(f), 'utf8'), version, fragmentPath(f));
    } catch (e) {
      throw new LabError((e as Error).message, ExitCode.usage);
    }
    const path = join(dir, name);
    await writeFile(path, `${sel.text.replace(/\n*$/, '')}\n`);
    files.push({ name, path, dropped: sel.dropped });
  }
  return { version, files };
}

/**
 * The configuration step alone, into a scratch directory: materialize the profile's kernel source and
 * configure + verify it, compiling nothing (`kflex-lab build kernel --configure-only`): a fragment that only
 * suits one kernel version is caught in a minute, not after an hour's build.
 */
export async function configureOnly(
  config: ResolvedConfig,
  workDir: string,
  log: (line: string) => void,
  exec: { logPath: string; onLine: (line: string) => void },
): Promise<{ source: string; release: string; options: number; fragments: number; version: string; versionGuarded: Record<string, string[]>; config: string }> {
  const k = config.profile.kernel;
  for (const f of k.fragments) if (!existsSync(fragmentPath(f))) throw new LabError(`kernel.fragments: ${f}: no file ${fragmentPath(f)}`, ExitCode.usage);
  const srcInfo = await materialize(config.profile.sources[k.source]!, { name: k.source, workDir, log, exec, expect: 'Kbuild' });
  const build = join(workDir, 'build');
  await mkdir(build, { recursive: true });
  const runOpts = { ...exec, timeoutMs: 3600_000 };
  const v = await configureKernel(srcInfo.dir, build, k, runOpts);
  const release = (await run(kernelMakeArgv(srcInfo.dir, build, ['-s', 'kernelrelease']), runOpts)).stdout.trim();
  return { source: srcInfo.origin, release, ...v, config: join(build, '.config') };
}

async function kconfigDeps(src: string, option: string): Promise<string[] | undefined> {
  const name = option.replace(/^CONFIG_/, '');
  const hits = await probe(['grep', '-rlE', '--include=Kconfig*', `^\\s*(menu)?config\\s+${name}\\s*$`, src]);
  const file = hits?.split('\n').find(Boolean);
  if (!file) return undefined;
  return kconfigEntry(await readFile(file, 'utf8'), option)?.dependsOn;
}

/** What the kernel stage produced. */
export function kernelOutputs(o: StageOutput): { bzImage: string; vmlinux: string; config: string; systemMap: string; headers: string; release: string } {
  return {
    bzImage: join(o.dir, 'bzImage'),
    vmlinux: join(o.dir, 'vmlinux'),
    config: join(o.dir, 'config'),
    systemMap: join(o.dir, 'System.map'),
    headers: join(o.dir, 'headers'),
    release: String(o.manifest.release),
  };
}
