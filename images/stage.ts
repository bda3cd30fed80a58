import { join } from 'node:path';
import type { StageOutput } from '../core/stage.js';
import { LAB_ROOT } from '../core/paths.js';
import { readFile, rm, writeFile, stat, mkdir } from 'node:fs/promises';
import type { Stage, StageContext } from '../core/stage.js';
import type { ResolvedConfig } from '../core/config.js';
import { run, probe } from '../core/exec.js';
import { hostDebianMirror } from '../core/apt.js';
import { labKeys } from '../core/keys.js';
import { LabError, ExitCode } from '../core/errors.js';
import { materialize } from '../core/sources.js';
import { sha256File } from '../core/sources.js';
import { mmdebstrapArgv, runMmdebstrap } from './mmdebstrap.js';
import { KFLEX_RUNTIME_PACKAGES, KFLEX_GUEST_DIR } from './kflex.js';
import { requireNeeds, type HostNeed } from '../core/requirements.js';

/** What the image stage runs on the host (customize.sh runs everything else inside the guest root). */
export const IMAGE_PROGRAMS: readonly HostNeed[] = [
  { name: 'mmdebstrap', package: 'mmdebstrap', why: 'builds the Debian guest root filesystem' },
  {
    name: 'debian-archive-keyring',
    file: '/usr/share/keyrings/debian-archive-keyring.gpg',
    package: 'debian-archive-keyring',
    why: "mmdebstrap checks the guest suite's Release signature with it",
  },
  { name: 'mount', package: 'mount', why: 'mmdebstrap --mode=root mounts /proc, /sys and /dev in the guest root for its hooks' },
  { name: 'chroot', package: 'coreutils', why: "images/customize.sh enables and masks the guest's units from inside its root" },
  { name: 'dpkg-query', package: 'dpkg', why: "records the guest's exact package versions (image.json)" },
  { name: 'mkfs.ext4', package: 'e2fsprogs', why: 'turns the root directory into an ext4 disk (mkfs.ext4 -d, no loop mount)' },
  { name: 'qemu-img', package: 'qemu-utils', why: 'converts the disk to the qcow2 base' },
];

const HERE = join(LAB_ROOT, 'images');
export const CUSTOMIZE_SCRIPT = join(HERE, 'customize.sh');
export const LINK_SETUP_SCRIPT = join(HERE, 'link-setup.sh');
export const MEMTIER_BUILD_PACKAGES = ['build-essential', 'autoconf', 'automake', 'libtool', 'pkg-config', 'libevent-dev', 'libssl-dev', 'zlib1g-dev'];

/** The mirror the image uses: lab.yaml's, else the host's apt configuration, else mmdebstrap's default (undefined). */
export function imageMirror(configured: string): string | undefined {
  return configured || hostDebianMirror();
}

/**
 * A stage whose output goes into the guest as is (the bmc stage; any later payload stage): its manifest names
 * the payload directory inside its output (`payload`), where it goes in the guest (`guest_dir`) and the guest
 * packages it needs at run time (`guest_packages`).
 */
export interface GuestPayload {
  stage: string;
  from: string;
  guestDir: string;
  packages: string[];
}

/** The payload a stage output declares, or undefined when its manifest names none. */
export function guestPayload(o: StageOutput): GuestPayload | undefined {
  const { payload, guest_dir: guestDir, guest_packages: packages } = o.manifest;
  if (payload === undefined && guestDir === undefined) return undefined;
  if (typeof payload !== 'string' || !/^[\w.-]+$/.test(payload) || typeof guestDir !== 'string' || !/^\/[\w./-]+$/.test(guestDir))
    throw new LabError(
      `stage ${o.stage}: manifest ${join(o.dir, 'stage.json')} needs payload (a directory name) and guest_dir (an absolute path); ` +
        `got ${JSON.stringify({ payload, guest_dir: guestDir })}; rebuild it with --force ${o.stage}`,
      ExitCode.infra,
    );
  const pkgs = Array.isArray(packages) ? packages.map(String) : [];
  return { stage: o.stage, from: join(o.dir, payload), guestDir, packages: pkgs };
}

/**
 * The payloads of the image's payload stages, and what image.json records of each: its guest directory and
 * source, or why it is left out (a stage whose manifest says `built: false`, e.g. BMC's source unreachable).
 */
export function imagePayloads(
  ids: readonly string[],
  deps: Record<string, StageOutput>,
  log: (line: string) => void = () => undefined,
): { payloads: GuestPayload[]; record: Record<string, unknown> } {
  const payloads: GuestPayload[] = [];
  const record: Record<string, unknown> = {};
  for (const id of ids) {
    const o = deps[id];
    if (!o) throw new LabError(`image: payload stage ${id} did not run`, ExitCode.infra);
    if (o.manifest.built === false) {
      record[id] = { built: false, reason: String(o.manifest.reason ?? 'not built') };
      log(`${id} is left out of the image: ${String(o.manifest.reason ?? 'not built')}`);
      continue;
    }
    const p = guestPayload(o);
    if (!p) throw new LabError(`image: stage ${id} declares no payload (guest_dir) in its manifest ${join(o.dir, 'stage.json')}`, ExitCode.infra);
    payloads.push(p);
    record[id] = { dir: p.guestDir, from: o.manifest.source };
  }
  return { payloads, record };
}

/** mmdebstrap hooks that copy each payload's files into its guest directory. */
export function payloadHooks(payloads: readonly GuestPayload[]): string[] {
  return payloads.flatMap((p) => [`mkdir -p "$1${p.guestDir}"`, `copy-in ${p.from}/. ${p.guestDir}`]);
}

/** Parse `dpkg-query -W -f '${Package}\t${Version}\n'`. */
export function parsePackageVersions(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t') as [string, string]),
  );
}

/**
 * A Debian root filesystem built by mmdebstrap, turned into ext4 without loop mounts (mkfs.ext4 -d)
 * and then a qcow2 base that VMs only ever use through per-run overlays.
 */
export class ImageStage implements Stage {
  readonly id = 'image';
  readonly version = '1';
  readonly deps: readonly string[];
  readonly description = 'guest disk: Debian (mmdebstrap) -> ext4 -> qcow2 base, with SSH keys pinned';

  /** `payloads`: the stages whose output is copied into the guest (guestPayload), e.g. bmc. */
  constructor(
    withKflex: boolean,
    private readonly payloads: readonly string[] = [],
  ) {
    this.deps = [...(withKflex ? ['kflex'] : []), ...payloads];
  }

  async inputs(config: ResolvedConfig): Promise<unknown> {
    const i = config.profile.image;
    const keys = await labKeys(config.cacheRoot);
    return {
      suite: i.suite,
      mirror: imageMirror(i.mirror) ?? 'mmdebstrap-default',
      packages: i.packages,
      size_mb: i.size_mb,
      kflex: i.kflex,
      memtier: i.memtier ? config.profile.sources[i.memtier] : undefined,
      customize: await readFile(CUSTOMIZE_SCRIPT, 'utf8'),
      link: await readFile(LINK_SETUP_SCRIPT, 'utf8'),
      identity: await readFile(`${keys.identity}.pub`, 'utf8'),
      hostkey: await readFile(`${keys.hostKey}.pub`, 'utf8'),
    };
  }

  async build(ctx: StageContext): Promise<Record<string, unknown>> {
    const i = ctx.config.profile.image;
    requireNeeds('image', IMAGE_PROGRAMS);
    const keys = await labKeys(ctx.cacheRoot);
    const mirror = imageMirror(i.mirror);
    const rootfs = join(ctx.outDir, 'rootfs');
    const hooks = [CUSTOMIZE_SCRIPT];
    const include = [...i.packages];
    // KFlex user space, built by the kflex stage for this same suite.
    if (i.kflex) {
      const k = ctx.deps.kflex;
      if (!k) throw new LabError('image.kflex is true but the kflex stage did not run', ExitCode.infra);
      include.push(...KFLEX_RUNTIME_PACKAGES);
      hooks.push(`mkdir -p "$1${KFLEX_GUEST_DIR}"`, `copy-in ${join(k.dir, 'kflex')}/. ${KFLEX_GUEST_DIR}`);
    }
    // Payload stages (bmc, ...): their declared directory and runtime packages.
    const { payloads, record: payloadRecord } = imagePayloads(this.payloads, ctx.deps, ctx.log);
    include.push(...new Set(payloads.flatMap((p) => p.packages).filter((pkg) => !include.includes(pkg))));
    hooks.push(...payloadHooks(payloads));
    const memtier = await memtierHooks(ctx, include, hooks);
    await mkdir(ctx.outDir, { recursive: true });
    const argv = mmdebstrapArgv({ suite: i.suite, target: rootfs, mirror, include, customize: hooks, slim: true });
    ctx.log(`mmdebstrap ${i.suite} from ${mirror ?? "mmdebstrap's default mirror"}: ${include.length} packages`);
    await runMmdebstrap(
      argv,
      { ...ctx.exec, timeoutMs: 60 * 60_000, env: { KFLEX_PUBKEY: `${keys.identity}.pub`, KFLEX_HOSTKEY: keys.hostKey, KFLEX_LINK_SETUP: LINK_SETUP_SCRIPT } },
      i.suite,
    );
    const versions = parsePackageVersions(
      (await run(['dpkg-query', `--admindir=${join(rootfs, 'var/lib/dpkg')}`, '-W', '-f', '${Package}\t${Version}\n'])).stdout,
    );
    const missing = include.filter((p) => !versions[p]);
    if (missing.length) throw new LabError(`image: requested packages not installed: ${missing.join(', ')}`, ExitCode.infra);
    const raw = join(ctx.outDir, 'disk.raw');
    await run(['mkfs.ext4', '-q', '-F', '-L', 'kflexroot', '-E', 'root_owner=0:0', '-d', rootfs, raw, `${i.size_mb}M`], { ...ctx.exec });
    await rm(rootfs, { recursive: true, force: true });
    await rm(join(ctx.outDir, 'memtier-work'), { recursive: true, force: true });
    const base = join(ctx.outDir, 'base.qcow2');
    await run(['qemu-img', 'convert', '-O', 'qcow2', raw, base], ctx.exec);
    await rm(raw);
    const size = (await stat(base)).size;
    const manifest = {
      suite: i.suite,
      mirror: mirror ?? "mmdebstrap's default",
      mmdebstrap: (await probe(['mmdebstrap', '--version']))?.trim(),
      packages_requested: include,
      packages: versions,
      memtier,
      kflex: i.kflex ? { dir: KFLEX_GUEST_DIR, from: ctx.deps.kflex?.manifest.source } : null,
      payloads: payloadRecord,
      image: 'base.qcow2',
      image_bytes: size,
      image_sha256: await sha256File(base),
    };
    await writeFile(join(ctx.outDir, 'image.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    ctx.log(`base.qcow2: ${(size / 2 ** 20).toFixed(0)} MiB, ${Object.keys(versions).length} packages`);
    return manifest;
  }
}

/** memtier_benchmark is not in Debian: build it from its source when reachable (hooks added), else record the substitute. */
async function memtierHooks(ctx: StageContext, include: string[], hooks: string[]): Promise<Record<string, unknown>> {
  const i = ctx.config.profile.image;
  let memtier: Record<string, unknown> = { available: false, reason: 'image.memtier not set' };
  if (i.memtier) {
    try {
      const src = await materialize(ctx.config.profile.sources[i.memtier]!, {
        name: i.memtier,
        workDir: join(ctx.outDir, 'memtier-work'),
        log: ctx.log,
        exec: ctx.exec,
        expect: 'memtier_benchmark.cpp',
        timeoutMs: 5 * 60_000,
      });
      include.push(...MEMTIER_BUILD_PACKAGES);
      hooks.push(
        `copy-in ${src.dir} /usr/local/src`,
        `chroot "$1" sh -c 'cd /usr/local/src/${src.dir.split('/').at(-1)} && autoreconf -ivf && ./configure && make -j"$(nproc)" && make install'`,
      );
      memtier = { available: true, origin: src.origin, commit: src.commit };
    } catch (e) {
      memtier = { available: false, reason: `source ${i.memtier} unreachable: ${(e as Error).message.split('\n')[0]}` };
      ctx.log(`memtier_benchmark will not be in the image (${memtier.reason as string}); redis-getset records redis-benchmark as its substitute`);
    }
  }
  return memtier;
}

/** What the image stage produced: the qcow2 base every VM boots through an overlay of its own. */
export function imageOutputs(o: StageOutput): { baseImage: string; sha256: string } {
  return { baseImage: join(o.dir, 'base.qcow2'), sha256: String(o.manifest.image_sha256) };
}
