import { join } from 'node:path';
import { existsSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import type { Stage, StageContext, StageOutput } from '../core/stage.js';
import type { ResolvedConfig } from '../core/config.js';
import { run, probe } from '../core/exec.js';
import { materialize, sha256File } from '../core/sources.js';
import { LabError, ExitCode } from '../core/errors.js';
import { SOURCE_NEEDS, requireNeeds, type HostNeed } from '../core/requirements.js';
import { KERNEL_PROGRAMS, kernelMakeArgv, kernelOutputs } from './stage.js';
import { parseConfig } from './kconfig.js';

/**
 * What `make bindeb-pkg` runs beyond the kernel build's own programs (KERNEL_PROGRAMS). Found by tracing
 * every execve of bindeb-pkg on the smoke kernel (Debian's linux-source-6.1) and reading the paper's
 * v6.9 packaging scripts, which use debhelper (since v6.4, 'kbuild: deb-pkg: use dh_listpackages'). Not needed: fakeroot
 * (both versions declare `Rules-Requires-Root: no`), hostname and lsb_release (the stage sets
 * DEBEMAIL and KDEB_CHANGELOG_DIST), cpio and the rest of the kernel's Build-Depends (the stage passes
 * -d, as v6.9 does itself: these declarations are the check, not dpkg-checkbuilddeps).
 */
export const KERNEL_DEB_PROGRAMS: readonly HostNeed[] = [
  {
    name: 'dpkg-buildpackage',
    package: 'dpkg-dev',
    why: 'make bindeb-pkg drives the package build with it (dpkg-architecture, dpkg-gencontrol, dpkg-source, dpkg-genchanges come with it)',
  },
  { name: 'dpkg-deb', package: 'dpkg', why: 'writes each .deb (and the stage lists the linux-image package with it)' },
  {
    name: 'dh_builddeb',
    package: 'debhelper',
    why: "kernels >= 6.4 (the paper's v6.9 fork; not the smoke profile's 6.1) list and assemble the packages with debhelper (dh_listpackages, dh_builddeb)",
  },
  // A PATH lookup would miss it for users whose PATH has no sbin; the stage adds /usr/sbin to make's PATH.
  {
    name: 'depmod',
    file: '/usr/sbin/depmod',
    package: 'kmod',
    why: "make modules_install (CONFIG_MODULES) writes the image package's modules.dep with depmod",
  },
];

/** The packaging programs a kernel release calls: debhelper only from v6.4 on. */
export function debNeedsFor(release: string): HostNeed[] {
  const [major = 0, minor = 0] = release.split(/[.-]/).map(Number);
  const debhelper = major > 6 || (major === 6 && minor >= 4);
  return KERNEL_DEB_PROGRAMS.filter((n) => debhelper || n.package !== 'debhelper');
}

// Set only when the user has not: without them mkdebian asks hostname and lsb_release, which may be absent.
const PACKAGING_ENV = { DEBFULLNAME: 'kflex-lab', DEBEMAIL: 'kflex-lab@localhost', KDEB_CHANGELOG_DIST: 'unstable' };

/**
 * The kernel stage's build tree: core/stage.ts gives each stage `<cache>/<stage>-work/<fingerprint>`
 * (the source beside `build`), and bindeb-pkg must run in that same tree to reuse its objects.
 */
export function kernelWorkDir(cacheRoot: string, kernelFingerprint: string): string {
  return join(cacheRoot, 'kernel-work', kernelFingerprint);
}

/**
 * argv of the packaging step: the kernel stage's make argv (same O=, same CC/HOSTCC, or Kbuild sees a
 * changed command line and recompiles everything) with bindeb-pkg. DPKG_FLAGS=-d skips
 * dpkg-checkbuilddeps, which checks dpkg's database for packages named in the kernel's Build-Depends
 * (cpio, gcc-<triplet>, ...) that this build never runs.
 */
export function bindebArgv(src: string, build: string, opts: { jobs?: number; ccache?: boolean } = {}): string[] {
  return kernelMakeArgv(src, build, ['DPKG_FLAGS=-d', 'bindeb-pkg'], opts);
}

/** The environment of the packaging step: the user's own maintainer/distribution if set, and sbin on PATH for depmod. */
export function packagingEnv(env: NodeJS.ProcessEnv, ccacheBase?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(PACKAGING_ENV)) if (!env[k]) out[k] = v;
  const path = (env.PATH ?? '/usr/bin:/bin').split(':');
  out.PATH = [...path, ...['/usr/sbin', '/sbin'].filter((d) => !path.includes(d))].join(':');
  if (ccacheBase) Object.assign(out, { CCACHE_BASEDIR: ccacheBase, CCACHE_NOHASHDIR: 'true' });
  return out;
}

export interface DebName {
  file: string;
  package: string;
  version: string;
  arch: string;
}

/** `<package>_<version>_<arch>.deb`, as dpkg-deb --build names them; undefined for anything else. */
export function parseDebName(file: string): DebName | undefined {
  const m = file.match(/^([a-z0-9][a-z0-9+.-]+)_([0-9][A-Za-z0-9.+~%-]*)_([a-z0-9-]+)\.deb$/);
  return m ? { file, package: m[1]!, version: m[2]!, arch: m[3]! } : undefined;
}

export type DebRole = 'image' | 'image-dbg' | 'headers' | 'libc-dev' | 'other';

/** What a package of this kernel release is for. */
export function debRole(pkg: string, release: string): DebRole {
  if (pkg === `linux-image-${release}`) return 'image';
  if (pkg === `linux-image-${release}-dbg`) return 'image-dbg';
  if (pkg === `linux-headers-${release}`) return 'headers';
  if (pkg === 'linux-libc-dev') return 'libc-dev';
  return 'other';
}

/** What bindeb-pkg leaves in the build tree's parent: the packages and the .buildinfo/.changes of the binary upload. */
export function isPackagingProduct(file: string): boolean {
  return (/^linux-/.test(file) && !!parseDebName(file)) || /^linux-upstream_.+_[a-z0-9-]+\.(buildinfo|changes)$/.test(file);
}

/**
 * The paths a bootable linux-image package must hold, missing from a `dpkg-deb -c` listing (its lines
 * end in `./boot/vmlinuz-<release>`, or `... -> target` for links).
 */
export function missingImageFiles(listing: string, release: string): string[] {
  const paths = new Set(
    listing.split('\n').map(
      (l) =>
        l
          .replace(/ -> .*$/, '')
          .trim()
          .split(/\s+/)
          .at(-1) ?? '',
    ),
  );
  return [`./boot/vmlinuz-${release}`, `./boot/config-${release}`, `./boot/System.map-${release}`].filter((p) => !paths.has(p));
}

export interface KernelDebPackage {
  file: string;
  package: string;
  version: string;
  arch: string;
  role: DebRole;
  sha256: string;
  bytes: number;
}

/**
 * The profile's kernel as Debian packages (linux-image, linux-headers, linux-libc-dev, and -dbg with
 * DEBUG_INFO) for a researcher's own hosts: `make bindeb-pkg` in the kernel stage's own build tree,
 * with its verified configuration, so the packages hold the kernel the VMs boot (same source, same
 * .config; only the build number differs). Built on demand (`build kernel --deb`), never by a run.
 */
export class KernelDebStage implements Stage {
  readonly id = 'kernel-deb';
  readonly version = '1';
  readonly deps = ['kernel'] as const;
  readonly description = 'the kernel as Debian packages for your own hosts (make bindeb-pkg in the kernel build tree)';

  async inputs(_config: ResolvedConfig): Promise<unknown> {
    return { dpkg: (await probe(['dpkg-buildpackage', '--version']))?.split('\n')[0] };
  }

  async build(ctx: StageContext): Promise<Record<string, unknown>> {
    const kernelOut = ctx.deps.kernel;
    if (!kernelOut) throw new Error('stage kernel-deb needs the kernel stage output');
    const kernel = kernelOutputs(kernelOut);
    const k = ctx.config.profile.kernel;
    const source = ctx.config.profile.sources[k.source]!;
    requireNeeds('kernel-deb', [...KERNEL_PROGRAMS, ...debNeedsFor(String(kernelOut.manifest.release))]);
    const work = kernelWorkDir(ctx.cacheRoot, kernelOut.fingerprint);
    const build = join(work, 'build');
    const started = Date.now();

    // The tree Kbuild made (build/source -> the source); rebuilt from the pinned source when it is gone.
    let src = existsSync(join(build, 'source', 'Kbuild')) ? realpathSync(join(build, 'source')) : undefined;
    if (!src) {
      requireNeeds('kernel-deb', SOURCE_NEEDS[source.kind]);
      ctx.log(`the kernel's build tree ${build} is gone: materializing the source again (a full kernel build follows)`);
      src = (await materialize(source, { name: k.source, workDir: work, log: ctx.log, exec: ctx.exec, expect: 'Kbuild' })).dir;
      await mkdir(build, { recursive: true });
    }
    // The exact configuration the kernel stage verified, whatever the tree holds now.
    const wantSha = String(kernelOut.manifest.config_sha256 ?? '');
    if ((await sha256File(join(build, '.config')).catch(() => '')) !== wantSha) {
      ctx.log(`${build}/.config is not the kernel stage's (config_sha256 ${wantSha.slice(0, 12)}): restoring it from ${kernel.config}`);
      await copyFile(kernel.config, join(build, '.config'));
    }
    const runOpts = { ...ctx.exec, timeoutMs: 4 * 3600_000 };
    const release = (await run(kernelMakeArgv(src, build, ['-s', 'kernelrelease']), runOpts)).stdout.trim();
    if (release !== kernel.release)
      throw new LabError(
        `kernel-deb: the build tree ${build} makes release ${release}, the kernel stage built ` +
          `${kernel.release}; rebuild the kernel: kflex-lab build kernel --force kernel`,
        ExitCode.infra,
      );

    // Products of an earlier run would be collected as this one's.
    for (const f of await readdir(work)) if (isPackagingProduct(f)) await rm(join(work, f), { force: true });
    const ccache = kernelOut.manifest.ccache === true && !!(await probe(['ccache', '--version']));
    const jobs = cpus().length;
    const argv = bindebArgv(src, build, { jobs, ccache });
    ctx.log(`make bindeb-pkg in ${build} (the kernel stage's tree; only what changed is rebuilt)`);
    await run(argv, { ...runOpts, env: packagingEnv(process.env, ccache ? work : undefined) });

    const afterSha = await sha256File(join(build, '.config'));
    if (afterSha !== wantSha)
      throw new LabError(
        `kernel-deb: ${build}/.config changed during bindeb-pkg (sha256 ${afterSha.slice(0, 12)}, ` +
          `the kernel stage verified ${wantSha.slice(0, 12)}): the packages would not hold the ` +
          `verified configuration`,
        ExitCode.infra,
      );

    const { packages, extras, image } = await collectPackages(work, ctx.outDir, release, ctx.logPath);
    // The staged package trees (as large as the packages, unpacked) are rebuilt by every bindeb-pkg.
    await rm(join(build, 'debian'), { recursive: true, force: true });

    return {
      release,
      kernel_fingerprint: kernelOut.fingerprint,
      config_sha256: wantSha,
      package_version: image.version,
      arch: image.arch,
      // The most CPUs the packaged kernel will use on a host (the guest fragment sizes it for bare metal).
      nr_cpus: nrCpusOf(await readFile(join(build, '.config'), 'utf8')),
      packages,
      files: extras,
      make: argv,
      dpkg: (await probe(['dpkg-buildpackage', '--version']))?.split('\n')[0],
      ccache,
      jobs,
      package_seconds: (Date.now() - started) / 1000,
    };
  }
}

/** Move bindeb-pkg's products into the output, describe each .deb, and check the image package would boot. */
async function collectPackages(
  work: string,
  outDir: string,
  release: string,
  logPath: string,
): Promise<{ packages: KernelDebPackage[]; extras: string[]; image: KernelDebPackage }> {
  const packages: KernelDebPackage[] = [];
  const extras: string[] = [];
  for (const f of (await readdir(work)).filter(isPackagingProduct).sort()) {
    await rename(join(work, f), join(outDir, f));
    const d = parseDebName(f);
    if (!d) {
      extras.push(f);
      continue;
    }
    packages.push({ ...d, role: debRole(d.package, release), sha256: await sha256File(join(outDir, f)), bytes: (await stat(join(outDir, f))).size });
  }
  const image = packages.find((p) => p.role === 'image');
  if (!image)
    throw new LabError(
      `kernel-deb: bindeb-pkg made no linux-image-${release} package (made: ${packages.map((p) => p.file).join(', ') || 'none'}); log: ${logPath}`,
      ExitCode.infra,
    );
  const listing = (await run(['dpkg-deb', '-c', join(outDir, image.file)])).stdout;
  const missing = missingImageFiles(listing, release);
  if (missing.length) throw new LabError(`kernel-deb: ${image.file} lacks ${missing.join(', ')}: it would not boot`, ExitCode.infra);
  return { packages, extras, image };
}

/** CONFIG_NR_CPUS of a .config; undefined when it is not set. */
export function nrCpusOf(config: string): number | undefined {
  const v = parseConfig(config).get('CONFIG_NR_CPUS');
  return v === undefined ? undefined : Number(v);
}

/** What the kernel-deb stage produced: its packages (paths in the cache entry), the release they hold, and its CPU limit. */
export function kernelDebOutputs(o: StageOutput): {
  dir: string;
  release: string;
  packages: Array<KernelDebPackage & { path: string }>;
  nrCpus?: number;
} {
  const packages = (o.manifest.packages as KernelDebPackage[] | undefined) ?? [];
  const nrCpus = typeof o.manifest.nr_cpus === 'number' ? o.manifest.nr_cpus : undefined;
  return { dir: o.dir, release: String(o.manifest.release), packages: packages.map((p) => ({ ...p, path: join(o.dir, p.file) })), nrCpus };
}

/**
 * The steps to boot the packages on a host of one's own, printed by `build kernel --deb`: the lab
 * itself installs nothing and reboots nothing.
 */
export function installSteps(o: {
  release: string;
  packages: Array<{ role: DebRole; file: string; path: string }>;
  kflex: boolean;
  config: string;
  nrCpus?: number;
}): string[] {
  const by = (r: DebRole) => o.packages.find((p) => p.role === r);
  const image = by('image');
  const headers = by('headers');
  if (!image) return [`no linux-image-${o.release} package was built`];
  const install = [image, headers].filter((p): p is NonNullable<typeof p> => !!p);
  return [
    `To boot kernel ${o.release} on a Debian or Ubuntu host of your own (the lab installs nothing and reboots nothing):`,
    `  1. copy:       scp ${install.map((p) => p.path).join(' ')} HOST:`,
    `  2. install:    sudo dpkg -i ${install.map((p) => p.file).join(' ')}`,
    `                 (${headers ? 'linux-headers only for building modules against it; ' : ''}leave ` +
      `linux-libc-dev out: it replaces the distribution's user-space kernel headers)`,
    `  3. boot entry: the package runs /etc/kernel/postinst.d (on Debian: update-initramfs, update-grub); if the entry is missing,`,
    `                 run 'sudo update-grub', or add one for /boot/vmlinuz-${o.release} to your bootloader`,
    `  4. reboot:     choose 'Linux ${o.release}' in the GRUB menu's advanced options (or 'sudo grub-reboot' it for one boot), keeping your`,
    `                 current kernel the default until this one has booted; with Secure Boot on, this unsigned kernel will not start`,
    `  5. confirm:    uname -r on the host prints ${o.release}; then here: kflex-lab hosts check --testbed hosts.yaml`,
    `                 (its 'kflex kernel' line turns ok when BPF_MAP_TYPE_HEAP is in the running kernel's BTF)`,
    `Its configuration is the profile's (${o.config}): check that your host's disk and NIC drivers are in it`,
    `(e.g. --set kernel.extra.CONFIG_I40E=y for an X710), or set kernel.base to the host's /boot/config-$(uname -r).`,
    ...(o.nrCpus !== undefined
      ? [
          `It uses at most ${o.nrCpus} CPUs (CONFIG_NR_CPUS): a host with more logical CPUs runs on ${o.nrCpus} of them; ` +
            `raise it with --set kernel.extra.CONFIG_NR_CPUS=N (the VMs' kernel is rebuilt too: it is the same configuration).`,
        ]
      : []),
    ...(o.kflex
      ? []
      : ['This profile builds no KFlex: its kernel is not a KFlex kernel. For the KFlex experiments: kflex-lab build kernel --deb --profile paper']),
  ];
}
