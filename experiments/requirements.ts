import type { Profile } from '../core/config.js';
import type { Host } from '../core/host.js';
import type { Accel } from '../core/accel.js';
import { BMC_GUEST_DIR, LINK_IF, KFLEX_GUEST_DIR } from '../core/guest.js';
import { LabError, ExitCode } from '../core/errors.js';
import { heapPlacement, heapVmMemoryMb } from './heaps.js';
import type { Capabilities, Experiment, Requirement, Role, VariantDef } from './types.js';

type ProgramNeed = Extract<Requirement, { kind: 'program' }>;
type BtfNeed = Extract<Requirement, { kind: 'btf' }>;

/** The key of a program in Capabilities.programs. */
export const programKey = (n: Pick<ProgramNeed, 'role' | 'path'>) => `${n.role}:${n.path}`;

/** The kernel is a KFlex kernel: its BTF has the heap map type. */
export const KFLEX_KERNEL: BtfNeed = {
  kind: 'btf',
  name: 'BPF_MAP_TYPE_HEAP',
  missing: 'guest kernel {release} is not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF (use the paper profile)',
  planned: (p) => {
    const src = p.sources[p.kernel.source];
    return p.image.kflex && src?.kind !== 'debian-package';
  },
};

/** KFlex's user space, built by the kflex stage into the image. */
export const FFKX: ProgramNeed = {
  kind: 'program',
  role: 'server',
  path: `${KFLEX_GUEST_DIR}/ffkx`,
  notPackaged:
    "KFlex user space: `kflex-lab hosts prepare` copies the kflex stage's build when the host runs the guest suite, " +
    'else build it on the host from the KFlex repository (see its README)',
  missing: `${KFLEX_GUEST_DIR}/ffkx is not in the image (image.kflex is false in this profile)`,
  planned: (p) => p.image.kflex,
};

export const MEMTIER: ProgramNeed = {
  kind: 'program',
  role: 'client',
  path: 'memtier_benchmark',
  notPackaged:
    'not packaged by Debian or Ubuntu: build it from its source ' +
    "(the lab's image builds RedisLabs/memtier_benchmark at the commit pinned in lab.yaml: autoreconf -ivf && ./configure && make && make install); " +
    'without it redis-getset runs redis-benchmark instead and records the substitution',
  missing:
    "memtier_benchmark is not in the client image (image.memtier's source was unreachable): " +
    'redis-benchmark cannot stand in, it blocks forever on its startup CONFIG GET, which ffkx ' +
    'never answers (its parser accepts only the offloaded commands)',
  planned: (p) => !!p.image.memtier,
};

/** The BMC baseline, built by the bmc stage into the image (image.bmc). */
export const BMC: ProgramNeed = {
  kind: 'program',
  role: 'server',
  path: `${BMC_GUEST_DIR}/bmc`,
  notPackaged: 'built by the lab from rs3lab/bmc-cache (the bmc stage): `kflex-lab hosts prepare` does not install it',
  missing:
    `${BMC_GUEST_DIR}/bmc is not in the image: image.bmc is false in this profile, or the bmc stage could not fetch ` +
    'rs3lab/bmc-cache (its manifest says why; pass --source bmc=/path/to/bmc-cache)',
  planned: (p) => !!p.image.bmc,
};

/** A program the baselines and clients run from the distribution: declared once, with its package. */
export function packaged(role: Role, name: string, apt: string[]): ProgramNeed {
  return { kind: 'program', role, path: name, apt, missing: `${name} is not installed on the ${role} (apt: ${apt.join(' ')})`, planned: () => true };
}

/** Whether the probe found a declared program. */
export function hasProgram(caps: Pick<Capabilities, 'programs'>, need: Pick<ProgramNeed, 'role' | 'path'>): boolean {
  return !!caps.programs[programKey(need)];
}

/** The distribution programs the baselines and clients run, declared once with their packages. */
export const MEMCACHED = packaged('server', 'memcached', ['memcached']);
export const MEMCASLAP = packaged('client', 'memcaslap', ['libmemcached-tools']);
export const REDIS_SERVER = packaged('server', 'redis-server', ['redis-server']);
export const REDIS_BENCHMARK = packaged('client', 'redis-benchmark', ['redis-tools']);

/** Every requirement the given experiments' variants declare, deduplicated by what is probed. */
export function declaredNeeds(experiments: readonly Experiment[]): { btf: BtfNeed[]; programs: ProgramNeed[] } {
  const btf = new Map<string, BtfNeed>();
  const programs = new Map<string, ProgramNeed>();
  for (const e of experiments)
    for (const v of e.variants)
      for (const r of v.requires) {
        if (r.kind === 'btf') btf.set(r.name, r);
        if (r.kind === 'program') programs.set(programKey(r), r);
      }
  return { btf: [...btf.values()], programs: [...programs.values()] };
}

/** Why a variant cannot run on these guests, or undefined when it can. Never a failure: a skip with its reason. */
export function unmetRequirement(variant: VariantDef, caps: Capabilities, heapGiB = variant.heapGiB): string | undefined {
  for (const r of variant.requires) {
    if (r.kind === 'native-xdp' && !caps.nativeXdp) return 'native XDP is not available on the server link NIC';
    if (r.kind === 'btf' && !caps.btf) return `guest kernel ${caps.kernelRelease} has no BTF (/sys/kernel/btf/vmlinux): cannot probe for ${r.name}`;
    if (r.kind === 'btf' && !caps.btf?.[r.name]) return r.missing.replace('{release}', caps.kernelRelease);
    if (r.kind === 'program' && !hasProgram(caps, r)) return r.missing;
  }
  if (heapGiB) return heapUnfit(heapGiB, caps);
  return undefined;
}

/** What `plan` assumes the guests will offer, from the profile alone (each requirement says how). */
export function plannedCapabilities(
  profile: Profile,
  experiments: readonly Experiment[],
  facts: Pick<Capabilities, 'serverMemoryMb' | 'serverCpus' | 'la57' | 'accel'>,
): Capabilities {
  const needs = declaredNeeds(experiments);
  return {
    kernelRelease: 'planned',
    btf: Object.fromEntries(needs.btf.map((n) => [n.name, n.planned(profile)])),
    programs: Object.fromEntries(needs.programs.map((n) => [programKey(n), n.planned(profile)])),
    nativeXdp: true,
    linkIfindex: 0,
    ...facts,
  };
}

/** Why a heap of heapGiB cannot be used on this server, or undefined when it can: RAM first, then placement. */
export function heapUnfit(heapGiB: number, caps: Pick<Capabilities, 'serverMemoryMb' | 'la57'>): string | undefined {
  // Every heap map is allocated whole at map creation (ffkx's pools live inside it), plus the guest's own needs.
  const needMb = heapVmMemoryMb(heapGiB);
  if (caps.serverMemoryMb < needMb)
    return (
      `needs a ${heapGiB} GiB KFlex heap (allocated whole at map creation) + the guest, its ` +
      `struct pages and page tables (~${Math.ceil(needMb / 1024)} GiB); the server has ` +
      `${(caps.serverMemoryMb / 1024).toFixed(1)} GiB: raise vms.server.memory_mb, or scale the ` +
      `heaps down (a recorded deviation)`
    );
  if (!heapPlacement(heapGiB, caps.la57).fits)
    return (
      `a ${heapGiB} GiB heap cannot be placed without 5-level paging: libbpf maps it at ` +
      `roundup(1 << 48, size) and steps down at most 1024 times, and the server's kernel runs ` +
      `with 4-level paging (no la57 in /proc/cpuinfo: the CPU model or the kernel lacks LA57)`
    );
  return undefined;
}

/**
 * Everything the server is asked, in one shell (one SSH round trip): $1 the link NIC, $2 a BTF file (for
 * tests; empty for the kernel's), then `btf:NAME` and `prog:PATH` words for what the variants declare.
 * BTF names are looked up in the BTF's string table (names are NUL-separated strings there), not in a text
 * dump of the whole BTF, which takes seconds under TCG. Linux clears the la57 flag when it runs with
 * 4-level paging, so the flag means 5-level paging is active.
 */
export const SERVER_PROBE_SCRIPT = `echo "release=$(uname -r)"
link="$1"; btf="\${2:-/sys/kernel/btf/vmlinux}"; shift 2
names=""; [ -r "$btf" ] && names=$(tr '\\000' '\\n' < "$btf") || echo btf=none
for w in "$@"; do case "$w" in
  btf:*) [ -r "$btf" ] && { if printf '%s\\n' "$names" | grep -qx "\${w#btf:}"; then echo "$w=yes"; else echo "$w=no"; fi; } ;;
  prog:*) if command -v "\${w#prog:}" >/dev/null 2>&1; then echo "$w=yes"; else echo "$w=no"; fi ;;
esac; done
if grep -qw la57 /proc/cpuinfo; then echo la57=yes; else echo la57=no; fi
echo "ifindex=$(cat "/sys/class/net/$link/ifindex")"`;

/** The client's side: `prog:NAME` words, one line each. */
export const CLIENT_PROBE_SCRIPT = `echo probe=client
for w in "$@"; do if command -v "\${w#prog:}" >/dev/null 2>&1; then echo "$w=yes"; else echo "$w=no"; fi; done`;

/** key=value lines, as the probe scripts print them (keys may hold `:` and `/`: prog:/opt/kflex/ffkx=yes). */
export function parseProbeLines(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .split('\n')
      .map((l) => l.match(/^([A-Za-z0-9_:./+-]+)=(.*)$/))
      .filter((m): m is RegExpMatchArray => !!m)
      .map((m) => [m[1]!, m[2]!.trim()]),
  );
}

/** Probe the guests once, each in one round trip and both at once, for what the experiments declare. */
export async function probeCapabilities(
  server: Host,
  client: Host,
  experiments: readonly Experiment[],
  facts: { nativeXdp: boolean; serverMemoryMb: number; serverCpus: number; accel: Accel; linkIf?: string },
): Promise<Capabilities> {
  const linkIf = facts.linkIf ?? LINK_IF;
  const needs = declaredNeeds(experiments);
  const words = (role: Role) => needs.programs.filter((n) => n.role === role).map((n) => `prog:${n.path}`);
  const [s, c] = await Promise.all([
    server.exec(['sh', '-c', SERVER_PROBE_SCRIPT, 'probe', linkIf, '', ...needs.btf.map((n) => `btf:${n.name}`), ...words('server')], {
      allowFailure: true,
      timeoutMs: 120_000,
    }),
    client.exec(['sh', '-c', CLIENT_PROBE_SCRIPT, 'probe', ...words('client')], { allowFailure: true, timeoutMs: 60_000 }),
  ]);
  const sv = parseProbeLines(s.stdout);
  const cv = parseProbeLines(c.stdout);
  const release = sv.release ?? '';
  const ifindex = Number(sv.ifindex);
  const clientDown = cv.probe !== 'client';
  if (!release || !Number.isInteger(ifindex) || ifindex <= 0 || clientDown)
    throw new LabError(
      `capability probe: the ${clientDown ? 'client' : 'server'} did not answer it (exit ` +
        `${clientDown ? c.code : s.code}): ` +
        `${(clientDown ? c.stderr : s.stderr).trim().split('\n').slice(-3).join(' / ') || 'no output'}` +
        `${release && !(ifindex > 0) ? `; no ifindex for ${linkIf}` : ''}`,
      ExitCode.infra,
    );
  return {
    kernelRelease: release,
    btf: sv.btf === 'none' ? undefined : Object.fromEntries(needs.btf.map((n) => [n.name, sv[`btf:${n.name}`] === 'yes'])),
    programs: Object.fromEntries(needs.programs.map((n) => [programKey(n), (n.role === 'server' ? sv : cv)[`prog:${n.path}`] === 'yes'])),
    nativeXdp: facts.nativeXdp,
    serverMemoryMb: facts.serverMemoryMb,
    serverCpus: facts.serverCpus,
    la57: sv.la57 === 'yes',
    accel: facts.accel,
    linkIfindex: ifindex,
  };
}
