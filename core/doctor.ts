import { constants, accessSync, existsSync, readFileSync, statfsSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { kvmProbe } from './host-probe.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cpus, totalmem, freemem } from 'node:os';
import { fixedMemoryMb, type Profile } from './config.js';
import { probe } from './exec.js';
import { missingNeeds, describeMissing, type NeedGroup } from './requirements.js';

export type CheckLevel = 'ok' | 'warn' | 'fail';
export interface Check {
  name: string;
  level: CheckLevel;
  detail: string;
  /** The exact command or setting that fixes it. */
  fix?: string;
  /** Debian packages that provide the missing piece. */
  packages?: string[];
}

// ---- parsers of real tool output (tested against captures in test/fixtures/doctor) ----

export function parseQemuVersion(out: string): string | undefined {
  return out.match(/QEMU emulator version (\d+\.\d+(?:\.\d+)?)/)?.[1];
}
export function parseClangVersion(out: string): number | undefined {
  const m = out.match(/clang version (\d+)\.\d+/);
  return m ? Number(m[1]) : undefined;
}
export function llcHasBpf(out: string): boolean {
  return /^\s+bpf\s+-/m.test(out);
}
export function parsePaholeVersion(out: string): number | undefined {
  const m = out.trim().match(/^v?(\d+)\.(\d+)/);
  return m ? Number(m[1]) + Number(m[2]) / 100 : undefined;
}
export function parseMmdebstrapVersion(out: string): string | undefined {
  return out.match(/mmdebstrap (\d+\.\d+\.\d+)/)?.[1];
}
/** cgroup v2 is usable when /sys/fs/cgroup itself is cgroup2 (ffkx attaches there). */
export function cgroupV2FromMounts(mounts: string): 'unified' | 'hybrid' | 'none' {
  const lines = mounts.split('\n').map((l) => l.split(' '));
  if (lines.some((f) => f[1] === '/sys/fs/cgroup' && f[2] === 'cgroup2')) return 'unified';
  if (lines.some((f) => f[2] === 'cgroup2')) return 'hybrid';
  return 'none';
}

export interface ClangFound {
  path: string;
  version: number;
  bpf: boolean;
}

/** clang candidates: an explicit path, then clang-N for N from 25 down, then plain clang. */
export async function findClang(minVersion: number, explicit?: string): Promise<ClangFound | undefined> {
  const names = explicit ? [explicit] : [...Array.from({ length: 25 - minVersion + 1 }, (_, i) => `clang-${25 - i}`), 'clang'];
  for (const name of names) {
    const out = await probe([name, '--version']);
    const version = out ? parseClangVersion(out) : undefined;
    if (!version) continue;
    const llc = name.replace(/clang(?=(-\d+)?$)/, 'llc');
    const targets = (await probe([llc, '--version'])) ?? '';
    const path = (await probe(['sh', '-c', 'command -v "$1"', 'sh', name]))?.trim() ?? name;
    if (version >= minVersion || explicit) return { path, version, bpf: llcHasBpf(targets) };
  }
  return undefined;
}

export { kvmUsable } from './kvm.js';

/**
 * One check per missing program (naming the stages that run it and why, with its package for the apt
 * line), or one ok line per stage. Optional ones only warn.
 */
export function programChecks(groups: readonly NeedGroup[], path: string | undefined = process.env.PATH): Check[] {
  const missing = missingNeeds(groups, path);
  const checks: Check[] = missing.map((m) => ({
    name: m.need.name,
    level: m.need.optional ? 'warn' : 'fail',
    detail: describeMissing(m) + (m.need.optional ? ` (optional: ${m.need.optional})` : ''),
    packages: [m.need.package],
  }));
  for (const g of groups) {
    const checked = [...new Set(g.needs.filter((n) => !n.checkedBy).map((n) => n.name))];
    if (!checked.length || missing.some((m) => m.stages.includes(g.stage))) continue;
    checks.push({ name: `${g.stage} needs`, level: 'ok', detail: `${checked.length} present: ${checked.join(' ')}` });
  }
  return checks;
}

/**
 * The host checks for a profile. `needs` are the programs its stages and testbed run (gathered by
 * lab/requirements.ts: core/ does not know the stages); `tap` is the link's own verdict on the tap backend
 * (vm/link), so the doctor and the link chooser cannot disagree.
 */
export async function runDoctor(
  profile: Profile,
  opts: { cacheDir: string; needs: NeedGroup[]; tap?: { ok: boolean; why: string; fix?: string }; kernel?: string; path?: string },
): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  // Cached per boot, QEMU and kernel: the answer does not change until one of them does.
  const kvm = await kvmProbe(opts.cacheDir, opts.kernel ?? anyCachedKernel(opts.cacheDir));
  add(
    kvm.ok
      ? { name: 'kvm', level: 'ok', detail: `/dev/kvm usable (${kvm.why})` }
      : {
          name: 'kvm',
          level: 'warn',
          detail: `${kvm.why}: VMs run under TCG: functional only, not performance-comparable`,
          fix: 'run on a host with KVM (bare metal, or nested virtualization on) for comparable numbers',
        },
  );

  // Every program the profile's stages and the testbed run, checked before anything builds.
  checks.push(...programChecks(opts.needs, opts.path));
  const qemu = await probe(['qemu-system-x86_64', '--version']);
  const qv = qemu ? parseQemuVersion(qemu) : undefined;
  if (qv) add({ name: 'qemu', level: 'ok', detail: `qemu-system-x86_64 ${qv}` });
  const mm = await probe(['mmdebstrap', '--version']);
  if (mm) add({ name: 'mmdebstrap', level: 'ok', detail: `mmdebstrap ${parseMmdebstrapVersion(mm) ?? '?'}` });

  add(await clangCheck(profile));

  const pahole = await probe(['pahole', '--version']);
  const pv = pahole ? parsePaholeVersion(pahole) : undefined;
  if (pv !== undefined && pv < 1.16)
    add({ name: 'pahole', level: 'fail', detail: `pahole ${pv} is too old for DEBUG_INFO_BTF (>= 1.16)`, packages: ['dwarves'] });

  checks.push(...resourceChecks(profile, opts.cacheDir));

  if (opts.tap)
    add(
      opts.tap.ok
        ? { name: 'tap link', level: 'ok', detail: opts.tap.why }
        : { name: 'tap link', level: 'warn', detail: `${opts.tap.why}: the link falls back to the socket backend`, fix: opts.tap.fix },
    );
  const cg = cgroupV2FromMounts(readMounts());
  add({
    name: 'cgroup v2',
    level: cg === 'unified' ? 'ok' : 'warn',
    detail: `host cgroup layout: ${cg} (only the guests need cgroup v2 for ffkx; the image boots with it)`,
  });
  return checks;
}

/** A clang >= the profile's minimum with the BPF target, or what the llvm stage will do about it. */
async function clangCheck(profile: Profile): Promise<Check> {
  const clang = await findClang(profile.toolchain.min_version, profile.toolchain.path);
  if (clang && clang.version >= profile.toolchain.min_version && clang.bpf)
    return { name: 'clang', level: 'ok', detail: `${clang.path} ${clang.version} with the BPF target` };
  return {
    name: 'clang',
    level: profile.toolchain.policy === 'system' ? 'fail' : 'warn',
    detail: clang
      ? `${clang.path} is ${clang.version}${clang.bpf ? '' : ' without the BPF target'}; the profile needs >= ${profile.toolchain.min_version}`
      : `no clang >= ${profile.toolchain.min_version} on PATH; the llvm stage will ` +
        `${profile.toolchain.policy === 'source' ? 'build it' : `install ${profile.toolchain.package ?? 'it'}`}`,
    packages: profile.toolchain.package ? [profile.toolchain.package, profile.toolchain.package.replace('clang', 'llvm')] : undefined,
  };
}

/** Disk for the cache, RAM for the two VMs, CPUs for their vCPUs. */
function resourceChecks(profile: Profile, cacheDir: string): Check[] {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const opts = { cacheDir };
  const disk = statfsSync(existsSync(opts.cacheDir) ? opts.cacheDir : '/');
  const freeGb = (disk.bavail * disk.bsize) / 2 ** 30;
  add({
    name: 'disk',
    level: freeGb >= profile.estimates.disk_gb ? 'ok' : 'fail',
    detail: `${freeGb.toFixed(1)} GiB free for ${opts.cacheDir}; profile needs ~${profile.estimates.disk_gb} GiB`,
    fix: freeGb >= profile.estimates.disk_gb ? undefined : 'free space or set KFLEX_LAB_CACHE to a larger disk',
  });
  const ramGb = totalmem() / 2 ** 30;
  const vmGb = (fixedMemoryMb(profile.vms.server.memory_mb) + profile.vms.client.memory_mb) / 1024;
  add({
    name: 'ram',
    level: ramGb >= vmGb + 1 ? 'ok' : 'fail',
    detail: `${ramGb.toFixed(1)} GiB total (${(freemem() / 2 ** 30).toFixed(1)} free); the VMs take ${vmGb.toFixed(1)} GiB`,
    fix: ramGb >= vmGb + 1 ? undefined : `lower vms.server.memory_mb / vms.client.memory_mb with --set`,
  });
  const n = cpus().length;
  add({
    name: 'cpus',
    level: n >= 2 ? 'ok' : 'warn',
    detail: `${n} CPUs (${cpus()[0]?.model ?? '?'}); VMs ask for ${profile.vms.server.cpus}+${profile.vms.client.cpus} vCPUs`,
  });
  return checks;
}

/** A kernel the lab built before, to probe KVM with a real Linux boot. */
function anyCachedKernel(cacheDir: string): string | undefined {
  const dir = join(cacheDir, 'kernel');
  if (!existsSync(dir)) return undefined;
  for (const e of readdirSync(dir)) if (existsSync(join(dir, e, 'bzImage')) && existsSync(join(dir, e, 'stage.json'))) return join(dir, e, 'bzImage');
  return undefined;
}

function readMounts(): string {
  try {
    return readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return '';
  }
}

export function aptLine(checks: Check[]): string | undefined {
  const pkgs = [...new Set(checks.filter((c) => c.level !== 'ok').flatMap((c) => c.packages ?? []))];
  return pkgs.length ? `apt-get install -y ${pkgs.join(' ')}` : undefined;
}
