import { KFLEX_GUEST_DIR } from '../core/guest.js';
import { guestPrograms } from '../experiments/index.js';
import type { Host } from '../core/host.js';

/** The btf section of GATHER_SCRIPT: nobtf, nobpftool, or how often BPF_MAP_TYPE_HEAP (KFlex's heap map) is in the kernel BTF. */
const BTF_PROBE =
  'if [ ! -r /sys/kernel/btf/vmlinux ]; then echo nobtf; elif ! command -v bpftool >/dev/null 2>&1; then echo nobpftool; ' +
  'else bpftool btf dump file /sys/kernel/btf/vmlinux 2>/dev/null | grep -c BPF_MAP_TYPE_HEAP; fi';

/**
 * What the lab reads from a user's machine, in one SSH round trip, as the login user (so $SSH_CONNECTION is
 * still set: sudo would clear it). Every section is a real command's output; the parsers below read them.
 */
export const GATHER_SCRIPT = `PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
IF="$1"; shift
sec() { printf '\\n@@kflex-lab:%s\\n' "$1"; }
sec uname; uname -r
sec os-release; cat /etc/os-release 2>/dev/null
sec machine-id; cat /etc/machine-id 2>/dev/null
sec boot-id; cat /proc/sys/kernel/random/boot_id 2>/dev/null
sec hostname; uname -n
sec uid; id -u
sec nproc; nproc
sec meminfo; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
sec cpuinfo; grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo
sec ssh-connection; printf '%s\\n' "\${SSH_CONNECTION:-}"
sec ssh-route; c="\${SSH_CONNECTION%% *}"; [ -n "$c" ] && ip -j route get "$c" 2>&1
sec ip-addr; ip -j addr 2>&1
sec link; ip -j -d link show dev "$IF" 2>&1
sec ethtool; ethtool -i "$IF" 2>&1
sec driver; readlink "/sys/class/net/$IF/device/driver" 2>&1
sec binaries; for b in "$@"; do p=$(command -v "$b" 2>/dev/null) && echo "$b $p" || echo "$b -"; done
sec kflex; for f in ffkx ffkx-bench; do if [ -x "${KFLEX_GUEST_DIR}/$f" ]; then echo "$f ${KFLEX_GUEST_DIR}/$f"; else echo "$f -"; fi; done
sec btf; ${BTF_PROBE}
sec ntp; timedatectl show -p NTPSynchronized --value 2>/dev/null
true
`;

/** What the lab's own harness runs on each side; the experiments declare their own programs (experiments/index.ts guestPrograms). */
export const HARNESS_BINARIES: Record<'server' | 'client', string[]> = {
  // pgrep only notes programs of the cells' names already running (left alone): the lab stops nothing by name.
  server: ['bpftool', 'ip', 'ss', 'taskset', 'pgrep', 'dmesg', 'ethtool'],
  client: ['ip', 'ping', 'bash', 'pgrep'],
};

/** Binaries looked up on PATH on each side: the harness's, then the experiments' (lab-built ones, by path, are checked apart). */
export function neededBinaries(role: 'server' | 'client'): string[] {
  const declared = guestPrograms(role)
    .map((p) => p.name)
    .filter((n) => !n.startsWith('/'));
  return [...new Set([...HARNESS_BINARIES[role], ...declared])];
}

export function splitSections(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let cur: string | undefined;
  const buf: string[] = [];
  const flush = () => {
    if (cur !== undefined) out[cur] = buf.join('\n').trim();
    buf.length = 0;
  };
  for (const line of text.split('\n')) {
    const m = line.match(/^@@kflex-lab:([\w-]+)$/);
    if (m) {
      flush();
      cur = m[1];
    } else if (cur !== undefined) buf.push(line);
  }
  flush();
  return out;
}

export interface OsRelease {
  id: string;
  idLike: string[];
  versionId?: string;
  codename?: string;
  pretty: string;
}

export function parseOsRelease(text: string): OsRelease {
  const kv: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^([A-Z_]+)=(.*)$/);
    if (m) kv[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  // Debian testing/sid has no VERSION_CODENAME in some releases: the PRETTY_NAME still names it.
  const codename = kv.VERSION_CODENAME || kv.PRETTY_NAME?.match(/\b(trixie|bookworm|bullseye|forky|sid)\b/)?.[1];
  return {
    id: kv.ID ?? 'unknown',
    idLike: (kv.ID_LIKE ?? '').split(/\s+/).filter(Boolean),
    versionId: kv.VERSION_ID,
    codename,
    pretty: kv.PRETTY_NAME ?? kv.ID ?? 'unknown',
  };
}

export function parseMeminfo(text: string): { totalMb: number; availableMb?: number } {
  const kb = (k: string) => {
    const m = text.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : undefined;
  };
  const avail = kb('MemAvailable');
  return { totalMb: Math.floor((kb('MemTotal') ?? 0) / 1024), availableMb: avail === undefined ? undefined : Math.floor(avail / 1024) };
}

/** The CPU model and whether the kernel runs 5-level paging (Linux clears la57 when it does not). */
export function parseCpuinfo(text: string): { model: string; la57: boolean } {
  const model = text.match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim() ?? 'unknown';
  const flags = text.match(/^flags\s*:\s*(.*)$/m)?.[1]?.split(/\s+/) ?? [];
  return { model, la57: flags.includes('la57') };
}

export interface SshConnection {
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
}

/** $SSH_CONNECTION: "client_ip client_port server_ip server_port". */
export function parseSshConnection(text: string): SshConnection | undefined {
  const m = text.trim().match(/^(\S+) (\d+) (\S+) (\d+)$/);
  return m ? { clientIp: m[1]!, clientPort: Number(m[2]), serverIp: m[3]!, serverPort: Number(m[4]) } : undefined;
}

export interface IfAddr {
  ifname: string;
  ifindex: number;
  operstate: string;
  mtu: number;
  mac?: string;
  addrs: Array<{ family: string; local: string; prefixlen: number }>;
}

/** `ip -j addr`. */
export function parseIpAddr(json: string): IfAddr[] {
  const rows = JSON.parse(json) as Array<{
    ifname: string;
    ifindex: number;
    operstate?: string;
    mtu?: number;
    address?: string;
    addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
  }>;
  return rows.map((r) => ({
    ifname: r.ifname,
    ifindex: r.ifindex,
    operstate: r.operstate ?? 'UNKNOWN',
    mtu: r.mtu ?? 0,
    mac: r.address,
    addrs: (r.addr_info ?? []).map((a) => ({ family: a.family, local: a.local, prefixlen: a.prefixlen })),
  }));
}

/** `ip -j route get ADDR`: the interface (and source address) the kernel uses to reach ADDR. */
export function parseRouteGet(json: string): { dev: string; src?: string; gateway?: string } | undefined {
  try {
    const r = (JSON.parse(json) as Array<{ dev?: string; prefsrc?: string; gateway?: string }>)[0];
    return r?.dev ? { dev: r.dev, src: r.prefsrc, gateway: r.gateway } : undefined;
  } catch {
    return undefined;
  }
}

/** `ip -j -d link show dev IF`: the XDP program attached, if any (ip prints an `xdp` object then). */
export function parseLinkXdp(json: string): { attached: boolean; mode?: number; progId?: number } {
  const r = (JSON.parse(json) as Array<{ xdp?: { mode?: number; prog?: { id?: number }; attached?: Array<{ prog?: { id?: number } }> } }>)[0];
  if (!r?.xdp) return { attached: false };
  return { attached: true, mode: r.xdp.mode, progId: r.xdp.prog?.id ?? r.xdp.attached?.[0]?.prog?.id };
}

export interface NicInfo {
  driver?: string;
  version?: string;
  firmware?: string;
  busInfo?: string;
}

/** `ethtool -i IF` (driver, version, firmware-version, bus-info), or the driver symlink's name. */
export function parseEthtoolInfo(text: string): NicInfo {
  const f = (k: string) => text.match(new RegExp(`^${k}:[ \\t]*(.*)$`, 'm'))?.[1]?.trim() || undefined;
  return { driver: f('driver'), version: f('version'), firmware: f('firmware-version'), busInfo: f('bus-info') };
}

export function parseDriverLink(text: string): string | undefined {
  const t = text.trim();
  return t && !/No such file|not found|Invalid/i.test(t) && !t.includes('\n') ? t.split('/').at(-1) : undefined;
}

/** Lines "name /path" or "name -" from the binaries loop. */
export function parseBinaries(text: string): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const line of text.split('\n')) {
    const m = line.trim().match(/^(\S+) (\S+)$/);
    if (m) out[m[1]!] = m[2] === '-' ? undefined : m[2];
  }
  return out;
}

export type BtfProbe = { kind: 'kflex'; hits: number } | { kind: 'not-kflex' } | { kind: 'no-btf' } | { kind: 'no-bpftool' };

export function parseBtfProbe(text: string): BtfProbe {
  const t = text.trim();
  if (t === 'nobtf') return { kind: 'no-btf' };
  if (t === 'nobpftool') return { kind: 'no-bpftool' };
  const n = Number(t);
  return n > 0 ? { kind: 'kflex', hits: n } : { kind: 'not-kflex' };
}

/** Everything read from one host. */
export interface HostFacts {
  role: 'server' | 'client';
  destination: string;
  hostname: string;
  kernel: string;
  os: OsRelease;
  machineId?: string;
  bootId?: string;
  uid: number;
  cpus: number;
  memory: { totalMb: number; availableMb?: number };
  cpu: { model: string; la57: boolean };
  ssh?: SshConnection;
  /** The interface the kernel uses to answer the SSH client. */
  sshRouteDev?: string;
  interfaces: IfAddr[];
  linkIf: string;
  linkXdp?: { attached: boolean; mode?: number; progId?: number };
  /** ip's complaint when the link interface does not exist. */
  linkError?: string;
  nic: NicInfo;
  binaries: Record<string, string | undefined>;
  kflexFiles: Record<string, string | undefined>;
  btf: BtfProbe;
  ntpSynchronized?: boolean;
}

export function parseGather(text: string, meta: { role: 'server' | 'client'; destination: string; linkIf: string }): HostFacts {
  const s = splitSections(text);
  const json = <T>(k: string, parse: (j: string) => T): T | undefined => {
    try {
      return s[k] && s[k]!.trim().startsWith('[') ? parse(s[k]!) : undefined;
    } catch {
      return undefined;
    }
  };
  const linkXdp = json('link', parseLinkXdp);
  const ethtool = parseEthtoolInfo(s.ethtool ?? '');
  const driverLink = parseDriverLink(s.driver ?? '');
  return {
    ...meta,
    hostname: s.hostname ?? 'unknown',
    kernel: s.uname ?? 'unknown',
    os: parseOsRelease(s['os-release'] ?? ''),
    machineId: s['machine-id'] || undefined,
    bootId: s['boot-id'] || undefined,
    uid: Number(s.uid ?? NaN),
    cpus: Number(s.nproc ?? 0),
    memory: parseMeminfo(s.meminfo ?? ''),
    cpu: parseCpuinfo(s.cpuinfo ?? ''),
    ssh: parseSshConnection(s['ssh-connection'] ?? ''),
    sshRouteDev: json('ssh-route', parseRouteGet)?.dev,
    interfaces: json('ip-addr', parseIpAddr) ?? [],
    linkXdp,
    linkError: linkXdp ? undefined : (s.link ?? '').trim() || 'no output from ip link show',
    nic: { ...ethtool, driver: ethtool.driver ?? driverLink },
    binaries: parseBinaries(s.binaries ?? ''),
    kflexFiles: parseBinaries(s.kflex ?? ''),
    btf: parseBtfProbe(s.btf ?? ''),
    ntpSynchronized: s.ntp === 'yes' ? true : s.ntp === 'no' ? false : undefined,
  };
}

/** Read a host's facts in one round trip (as the login user). */
export async function gatherFacts(
  host: Host,
  meta: { role: 'server' | 'client'; destination: string; linkIf: string },
): Promise<{ facts: HostFacts; raw: string }> {
  const r = await host.exec(['sh', '-c', GATHER_SCRIPT, 'gather', meta.linkIf, ...neededBinaries(meta.role)], { timeoutMs: 180_000 });
  return { facts: parseGather(r.stdout, meta), raw: r.stdout };
}

/** The first IPv4 address on an interface. */
export function ipv4Of(ifs: IfAddr[], ifname: string): string | undefined {
  return ifs.find((i) => i.ifname === ifname)?.addrs.find((a) => a.family === 'inet')?.local;
}

/**
 * The offset of a remote clock against ours from one `date +%s%N` round trip: remote - midpoint, with half
 * the round trip as its uncertainty. Pure, so the arithmetic is tested apart from SSH.
 */
export function clockSample(localBeforeMs: number, remoteNs: string, localAfterMs: number): { offsetMs: number; uncertaintyMs: number } {
  const remoteMs = Number(BigInt(remoteNs.trim()) / 1000n) / 1000;
  return { offsetMs: remoteMs - (localBeforeMs + localAfterMs) / 2, uncertaintyMs: (localAfterMs - localBeforeMs) / 2 };
}

/** The best (shortest round trip) of a few samples of a host's clock offset against ours. */
export async function clockOffset(host: Host, samples = 3): Promise<{ offsetMs: number; uncertaintyMs: number }> {
  let best: { offsetMs: number; uncertaintyMs: number } | undefined;
  for (let i = 0; i < samples; i++) {
    const t0 = Date.now();
    const r = await host.exec(['date', '+%s%N'], { timeoutMs: 30_000 });
    const s = clockSample(t0, r.stdout, Date.now());
    if (!best || s.uncertaintyMs < best.uncertaintyMs) best = s;
  }
  return best!;
}

/** Binaries looked up on PATH per side (harness + experiments' declarations), for what installs them up front. */
export const NEEDED_BINARIES: Record<'server' | 'client', string[]> = { server: neededBinaries('server'), client: neededBinaries('client') };
