import { readFile } from 'node:fs/promises';
import type { Host } from './host.js';
import { LabError, ExitCode } from './errors.js';

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
  if (/GRO_HW\/CSUM|guest offloads|LRO/i.test(text))
    return (
      'the host implements guest offloads on the link NIC: the lab sets ' +
      'guest_csum/guest_tso4/guest_tso6/guest_ecn/guest_ufo=off on the device (vm/spec.ts ' +
      'linkDeviceArgs); a custom QEMU device line must do the same'
    );
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
 * Server side, one round trip: detach anything left, write the probe object (base64 on stdin: no scp),
 * load and pin it, attach it in driver mode, and report the mode and the kernel's XDP_TX lines. Sections
 * start with `@@name` lines; a failure is `@@copy-failed`, `@@load-failed` or `@@refused` followed by
 * what the tools said. $1 NIC, $2 object path, $3 program pin, $4 maps pin.
 */
export const XDP_ATTACH_SCRIPT = `ifname="$1"; obj="$2"; pin="$3"; maps="$4"
ip link set dev "$ifname" xdp off 2>/dev/null; rm -rf "$pin" "$maps"
base64 -d > "$obj" 2>/tmp/kflex-xdp-copy.err || { echo @@copy-failed; cat /tmp/kflex-xdp-copy.err; exit 0; }
out=$(bpftool prog load "$obj" "$pin" type xdp pinmaps "$maps" 2>&1) || { echo @@load-failed; echo "$out"; exit 0; }
if ! out=$(ip link set dev "$ifname" xdpdrv pinned "$pin" 2>&1); then
  echo @@refused; echo "$out"; echo @@dmesg; dmesg | tail -n 5; exit 0
fi
echo @@mode; bpftool net show dev "$ifname" -j
echo @@dmesg; dmesg | grep -i xdp_tx | tail -n 5`;

/** Client side, one round trip (bash, for /dev/udp): ARP first, so no datagram waits on neighbour resolution, then $2 datagrams to $1:$3. */
export const XDP_SEND_SCRIPT =
  'ping -c 1 -W 5 "$1" > /dev/null || { echo "ping $1 failed" >&2; exit 1; }; for i in $(seq 1 "$2"); do printf x > "/dev/udp/$1/$3"; done';

/** Server side, one round trip: let the last datagrams land, dump the counters, detach. $1 NIC, $2 program pin, $3 maps pin. */
export const XDP_COLLECT_SCRIPT = `sleep 0.5
bpftool map dump pinned "$3/counts" -j; rc=$?
ip link set dev "$1" xdp off 2>/dev/null; rm -rf "$2" "$3"
exit $rc`;

/** The sections of the attach script's output, by name (text before the first marker under ''). */
export function parseSections(out: string): Record<string, string> {
  const sections: Record<string, string> = {};
  let name = '';
  for (const line of out.split('\n')) {
    const m = line.match(/^@@([a-z-]+)$/);
    if (m) {
      name = m[1]!;
      sections[name] = '';
    } else sections[name] = `${(sections[name] ?? '') + line}\n`;
  }
  return sections;
}

/**
 * Attach the lab's probe in driver mode on the server's link NIC, send `packets` UDP datagrams to `port`
 * from the client, and require that port's counter to equal the number sent. Always detaches. Three
 * round trips in all (attach, send, collect): each costs a fraction of a second under TCG.
 */
export async function checkNativeXdp(link: XdpLink, probeObject: string, opts: { packets?: number; port?: number } = {}): Promise<XdpCheckResult> {
  const packets = opts.packets ?? 100;
  const port = opts.port ?? 7777;
  const { server: s, client, serverIf: ifname } = link;
  const object = (await readFile(probeObject)).toString('base64');
  const attach = await s.exec(['sh', '-c', XDP_ATTACH_SCRIPT, 'attach', ifname, '/tmp/xdp_probe.bpf.o', PROBE_PIN, PROBE_MAPS], {
    input: object,
    timeoutMs: 120_000,
  });
  const out = parseSections(attach.stdout);
  const warnings: string[] = [];
  let detached = false;
  try {
    if ('copy-failed' in out) throw new LabError(`could not write the XDP probe to the server's /tmp: ${out['copy-failed']!.trim()}`, ExitCode.infra);
    if ('load-failed' in out)
      throw new LabError(
        `bpftool prog load of the XDP probe failed on the server:\n${out['load-failed']!.trim()
          .split('\n')
          .map((l) => `  | ${l}`)
          .join('\n')}`,
        ExitCode.infra,
      );
    if ('refused' in out) {
      const said = out.refused!.trim();
      throw new LabError(
        `native (driver-mode) XDP refused on the server's ${ifname}: ${explainXdpRefusal(`${said}\n${out.dmesg ?? ''}`)}\n  ip said: ${said}`,
        ExitCode.infra,
      );
    }
    if (!('mode' in out))
      throw new LabError(
        `the XDP attach script on the server printed no result (exit ${attach.code}): ${(attach.stdout + attach.stderr).trim().slice(-300)}`,
        ExitCode.infra,
      );
    const mode = parseXdpMode(out.mode!, ifname);
    if (mode !== 'driver') throw new LabError(`XDP on ${ifname} is in ${mode ?? 'no'} mode, not driver mode`, ExitCode.infra);
    if (/XDP_TX.*lock|locked XDP_TX|XDP_TX and XDP_REDIRECT will operate in a slower locked/i.test(out.dmesg ?? ''))
      warnings.push('fewer than 2 x vCPU queues: XDP_TX runs in the slower locked mode');
    await client.exec(['bash', '-c', XDP_SEND_SCRIPT, 'send', link.serverIp, String(packets), String(port)], { timeoutMs: 150_000 });
    const dump = await s.exec(['sh', '-c', XDP_COLLECT_SCRIPT, 'collect', ifname, PROBE_PIN, PROBE_MAPS], { timeoutMs: 60_000 });
    detached = true;
    const counts = parseProbeMapDump(dump.stdout);
    const mine = counts.find((c) => c.proto === UDP && c.port === port)?.count ?? 0;
    return { mode, port, sent: packets, counted: mine, other: counts.filter((c) => !(c.proto === UDP && c.port === port)), warnings };
  } finally {
    if (!detached) await detachProbe(s, ifname);
  }
}

export async function detachProbe(server: Host, ifname: string): Promise<void> {
  await server.exec(['sh', '-c', 'ip link set dev "$1" xdp off; rm -rf "$2" "$3"', 'detach', ifname, PROBE_PIN, PROBE_MAPS], {
    allowFailure: true,
    timeoutMs: 30_000,
  });
}
