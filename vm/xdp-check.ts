import type { Host } from '../core/host.js';
import { LabError, ExitCode } from '../core/errors.js';

export const PROBE_PIN = '/sys/fs/bpf/kflex_lab_probe';
export const PROBE_MAPS = '/sys/fs/bpf/kflex_lab_probe_maps';
const UDP = 17;

export interface ProbeCount {
  proto: number;
  port: number;
  count: number;
}

/**
 * Parse `bpftool map dump -j` of the probe's map. With BTF bpftool adds a `formatted` object; without it
 * keys and values are arrays of hex bytes (little endian): key = u16 proto, u16 port; value = u64.
 */
export function parseProbeMapDump(json: string): ProbeCount[] {
  const entries = JSON.parse(json) as Array<{ key?: unknown; value?: unknown; formatted?: { key: { proto: number; port: number }; value: number } }>;
  const le = (bytes: string[]) => bytes.reduce((acc, b, i) => acc + Number(BigInt(parseInt(b, 16)) << BigInt(8 * i)), 0);
  return entries
    .map((e) => {
      if (e.formatted) return { proto: e.formatted.key.proto, port: e.formatted.key.port, count: Number(e.formatted.value) };
      const k = e.key as string[];
      return { proto: le(k.slice(0, 2)), port: le(k.slice(2, 4)), count: le(e.value as string[]) };
    })
    .sort((a, b) => b.count - a.count);
}

/** Parse `bpftool net show dev IF -j`: the XDP attach mode of the interface (driver, generic, offload) or undefined. */
export function parseXdpMode(json: string, ifname: string): string | undefined {
  const out = JSON.parse(json) as Array<{ xdp?: Array<{ devname: string; mode: string }> }>;
  return out.flatMap((o) => o.xdp ?? []).find((x) => x.devname === ifname)?.mode;
}

/** Why the kernel refused native XDP, and what in the lab's settings fixes it. */
export function explainXdpRefusal(text: string): string {
  if (/GRO_HW\/CSUM|guest offloads|LRO/i.test(text)) return 'the host implements guest offloads on the link NIC: the lab sets guest_csum/guest_tso4/guest_tso6/guest_ecn/guest_ufo=off on the device (vm/spec.ts linkDeviceArgs); a custom QEMU device line must do the same';
  if (/MTU too large/i.test(text)) return 'the link MTU is too large for XDP on virtio-net (no multi-buffer): set vms.link.mtu to 1500 or less';
  if (/Too few free TX rings|queue/i.test(text)) return 'not enough TX queues for XDP_TX: give the link 2 x vCPU queues (tap backend with multiqueue)';
  if (/Operation not supported|not supported/i.test(text)) return 'the NIC driver has no native XDP: the link NIC must be virtio-net-pci';
  return `unexplained refusal: ${text.trim().split('\n').slice(-3).join(' / ')}`;
}

export interface XdpCheckResult {
  mode: string;
  port: number;
  sent: number;
  counted: number;
  other: ProbeCount[];
  warnings: string[];
}

/** The two machines and the link the probe is checked on (the lab's VMs, or hosts over SSH). */
export interface XdpLink {
  server: Host;
  client: Host;
  /** The server's link NIC: the only interface the check touches. */
  serverIf: string;
  serverIp: string;
}

/**
 * Attach the lab's probe in driver mode on the server's link NIC, send `packets` UDP datagrams to `port`
 * from the client, and require that port's counter to equal the number sent. Always detaches.
 */
export async function checkNativeXdp(link: XdpLink, probeObject: string, opts: { packets?: number; port?: number } = {}): Promise<XdpCheckResult> {
  const packets = opts.packets ?? 100;
  const port = opts.port ?? 7777;
  const { server: s, client, serverIf: ifname } = link;
  await detachProbe(s, ifname);
  await s.copyIn(probeObject, '/tmp/xdp_probe.bpf.o');
  await s.exec(['bpftool', 'prog', 'load', '/tmp/xdp_probe.bpf.o', PROBE_PIN, 'type', 'xdp', 'pinmaps', PROBE_MAPS], { timeoutMs: 60_000 });
  const attach = await s.exec(['ip', 'link', 'set', 'dev', ifname, 'xdpdrv', 'pinned', PROBE_PIN], { allowFailure: true, timeoutMs: 60_000 });
  const warnings: string[] = [];
  try {
    if (attach.code !== 0) {
      const dmesg = (await s.exec(['dmesg'], { allowFailure: true })).stdout.split('\n').slice(-5).join('\n');
      throw new LabError(`native (driver-mode) XDP refused on the server's ${ifname}: ${explainXdpRefusal(attach.stderr + attach.stdout + '\n' + dmesg)}\n  ip said: ${(attach.stderr + attach.stdout).trim()}`, ExitCode.infra);
    }
    const mode = parseXdpMode((await s.exec(['bpftool', 'net', 'show', 'dev', ifname, '-j'])).stdout, ifname);
    if (mode !== 'driver') throw new LabError(`XDP on ${ifname} is in ${mode ?? 'no'} mode, not driver mode`, ExitCode.infra);
    const dmesg = (await s.exec(['dmesg'], { allowFailure: true })).stdout;
    if (/XDP_TX.*lock|locked XDP_TX|XDP_TX and XDP_REDIRECT will operate in a slower locked/i.test(dmesg)) warnings.push('fewer than 2 x vCPU queues: XDP_TX runs in the slower locked mode');
    // ARP first, so no datagram waits on neighbour resolution.
    await client.exec(['ping', '-c', '1', '-W', '5', link.serverIp], { timeoutMs: 30_000 });
    await client.exec(['bash', '-c', 'for i in $(seq 1 "$1"); do printf x > "/dev/udp/$2/$3"; done', 'send', String(packets), link.serverIp, String(port)], { timeoutMs: 120_000 });
    await new Promise((r) => setTimeout(r, 500));
    const counts = parseProbeMapDump((await s.exec(['bpftool', 'map', 'dump', 'pinned', `${PROBE_MAPS}/counts`, '-j'])).stdout);
    const mine = counts.find((c) => c.proto === UDP && c.port === port)?.count ?? 0;
    return { mode, port, sent: packets, counted: mine, other: counts.filter((c) => !(c.proto === UDP && c.port === port)), warnings };
  } finally {
    await detachProbe(s, ifname);
  }
}

export async function detachProbe(server: Host, ifname: string): Promise<void> {
  await server.exec(['ip', 'link', 'set', 'dev', ifname, 'xdp', 'off'], { allowFailure: true, timeoutMs: 30_000 });
  await server.exec(['rm', '-rf', PROBE_PIN, PROBE_MAPS], { allowFailure: true, timeoutMs: 30_000 });
}
