import { createHash } from 'node:crypto';
import { kvmUsable } from './kvm.js';
import { accessSync, constants, existsSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Facts about this host that are slow to learn and do not change until the host reboots or a binary
 * changes: probed once, kept in <cache>/host-probes.json under a key of what they depend on. Also the one
 * home of pidAlive.
 */
export const HOST_PROBES_FILE = 'host-probes.json';

/**
 * Whether a process runs. A zombie does not: a daemonized QEMU that was killed stays a zombie until init
 * reaps it (in containers, maybe never), and kill(pid, 0) still succeeds on it.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) S ...": the state follows the last ')', since comm may hold one.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): trust kill(0)
  }
}

/** What a KVM verdict depends on: this boot of the host, the QEMU binary, and the kernel it boots. */
export interface KvmProbeKey {
  boot_id: string;
  /** The resolved binary with its mtime and size: an upgrade changes them without running it. */
  qemu: { path: string; mtime_ms: number; size: number } | null;
  kernel_sha256: string | null;
}

export function bootId(file = '/proc/sys/kernel/random/boot_id'): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** The first executable `name` on PATH, resolved through symlinks (Debian's alternatives). */
function binaryOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return realpathSync(p);
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function kvmProbeKey(kernel: string | undefined, o: { bootIdFile?: string; path?: string } = {}): KvmProbeKey {
  const qemu = binaryOnPath('qemu-system-x86_64', o.path);
  const st = qemu ? statSync(qemu) : undefined;
  return {
    boot_id: bootId(o.bootIdFile),
    qemu: qemu && st ? { path: qemu, mtime_ms: st.mtimeMs, size: st.size } : null,
    kernel_sha256: kernel && existsSync(kernel) ? createHash('sha256').update(readFileSync(kernel)).digest('hex') : null,
  };
}

interface ProbeRecord<T> {
  key: unknown;
  result: T;
  probed_at: string;
  seconds: number;
}
type ProbeFile = Record<string, Array<ProbeRecord<unknown>>>;

function readProbes(file: string): ProbeFile {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ProbeFile;
  } catch {
    return {};
  }
}

const sameKey = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The answer recorded for `key`, or run `probe` and record it (the last few keys per probe are kept, so
 * two kernels or two QEMUs in turn do not evict each other). Written with a rename: a reader never sees half.
 */
export async function cachedProbe<T>(cacheRoot: string, name: string, key: unknown, probe: () => Promise<T>): Promise<{ result: T; cached?: ProbeRecord<T> }> {
  const file = join(cacheRoot, HOST_PROBES_FILE);
  const hit = (readProbes(file)[name] ?? []).find((r) => sameKey(r.key, key)) as ProbeRecord<T> | undefined;
  if (hit) return { result: hit.result, cached: hit };
  const t0 = Date.now();
  const result = await probe();
  const all = readProbes(file);
  all[name] = [
    { key, result, probed_at: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 },
    ...(all[name] ?? []).filter((r) => !sameKey(r.key, key)),
  ].slice(0, 8);
  mkdirSync(cacheRoot, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`);
  renameSync(tmp, file);
  return { result };
}

/**
 * Whether KVM runs a Linux guest here (core/doctor.ts kvmUsable: boots `kernel` under KVM for up to 8 s).
 * The boot's answer is kept until the host reboots, QEMU changes or the kernel does; the quick answers
 * (no /dev/kvm, no access to it) are never cached, so loading the module or joining the kvm group counts at once.
 */
export async function kvmProbe(cacheRoot: string, kernel?: string): Promise<{ ok: boolean; why: string }> {
  // Loaded here: pidAlive's users (the reaper, the stages) need nothing of the doctor.
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return kvmUsable(kernel);
  }
  const { result, cached } = await cachedProbe(cacheRoot, 'kvm', kvmProbeKey(kernel), () => kvmUsable(kernel));
  return cached
    ? { ...result, why: `${result.why} (probed ${cached.probed_at} in this boot of the host; cached in ${join(cacheRoot, HOST_PROBES_FILE)})` }
    : result;
}
