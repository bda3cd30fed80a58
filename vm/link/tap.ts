/**
 * tap: a bridge and one (multiqueue) tap per VM in a network namespace of the lab's own, vhost-net when
 * /dev/vhost-net exists. QEMU runs inside the namespace to open its taps, so its user-mode SSH forwards
 * live there too: ssh goes through `ip netns exec`. Deleting the namespace removes bridge and taps.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { run } from '../../core/exec.js';
import type { Availability, LinkBackend } from './types.js';

export interface TapLinkState {
  backend: 'tap';
  netns: string;
  bridge: string;
  /** [server's, client's] */
  taps: string[];
  queues: number;
  vhost: boolean;
  mtu: number;
}

export interface TapOptions {
  vhost: boolean;
}

/** What decides whether the tap link can work here. */
export interface TapHostFacts {
  /** Text of /proc/self/status (its CapEff line). */
  status: string;
  tun: boolean;
  vhostNet: boolean;
  ipTool: boolean;
}

// capabilities(7) bit numbers
const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

export function readTapHostFacts(): TapHostFacts {
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    /* no procfs: no capabilities known */
  }
  return { status, tun: existsSync('/dev/net/tun'), vhostNet: existsSync('/dev/vhost-net'), ipTool: onPath('ip') };
}

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => {
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Pure. The one place that decides whether this host can make the tap link (the doctor reports it).
 * Capabilities, not uid: root in a container may lack them, and a non-root process may hold them.
 * CAP_NET_ADMIN makes the bridge and taps; CAP_SYS_ADMIN is what `ip netns add`/`exec` need (unshare and
 * setns of a network namespace, and the bind mount under /run/netns).
 */
export function tapCapabilityFrom(f: TapHostFacts): Availability<TapOptions> {
  const m = f.status.match(/^CapEff:\s*([0-9a-fA-F]+)\s*$/m);
  const eff = m ? BigInt(`0x${m[1]}`) : 0n;
  const has = (bit: bigint) => (eff & (1n << bit)) !== 0n;
  const caps = [...(has(CAP_NET_ADMIN) ? [] : ['CAP_NET_ADMIN']), ...(has(CAP_SYS_ADMIN) ? [] : ['CAP_SYS_ADMIN'])];
  const missing: [string, string][] = [
    ...(caps.length
      ? [
          [
            `lacks ${caps.join(' and ')}${m ? '' : ' (no CapEff in /proc/self/status)'}`,
            'run as root (the tap link needs CAP_NET_ADMIN and CAP_SYS_ADMIN)',
          ] as [string, string],
        ]
      : []),
    ...(f.tun ? [] : [['no /dev/net/tun', 'modprobe tun'] as [string, string]]),
    ...(f.ipTool ? [] : [['no ip(8) on PATH', 'apt-get install iproute2'] as [string, string]]),
  ];
  if (missing.length) return { ok: false, why: missing.map((x) => x[0]).join(', '), fix: missing.map((x) => x[1]).join('; ') };
  return { ok: true, why: f.vhostNet ? 'tap with vhost-net' : 'tap without vhost (no /dev/vhost-net)', options: { vhost: f.vhostNet } };
}

/** Whether this host can make the tap link, and why (or why not). */
export const tapCapability = (): Availability<TapOptions> => tapCapabilityFrom(readTapHostFacts());

/** Names unique to one lab process, short enough for IFNAMSIZ (15). */
export function tapNames(tag: string) {
  return { netns: `kflexlab-${tag}`, bridge: 'kbr0', taps: [`kt${tag}s`, `kt${tag}c`] as const };
}

/** The namespace, a bridge and two (multiqueue) taps in it. */
export function tapSetupArgv(s: TapLinkState): string[][] {
  const inNs = (argv: string[]) => ['ip', '-n', s.netns, ...argv];
  return [
    ['ip', 'netns', 'add', s.netns],
    inNs(['link', 'set', 'lo', 'up']),
    inNs(['link', 'add', s.bridge, 'type', 'bridge']),
    inNs(['link', 'set', s.bridge, 'mtu', String(s.mtu), 'up']),
    ...s.taps.flatMap((t) => [
      inNs(['tuntap', 'add', 'dev', t, 'mode', 'tap', ...(s.queues > 1 ? ['multi_queue'] : [])]),
      inNs(['link', 'set', t, 'master', s.bridge, 'mtu', String(s.mtu), 'up']),
    ]),
  ];
}

/** The bridge and taps live only in the namespace, so deleting it removes them all. */
export const tapTeardownArgv = (s: Pick<TapLinkState, 'netns'>): string[] => ['ip', 'netns', 'delete', s.netns];

function tapOf(s: TapLinkState, role: 'server' | 'client'): string {
  const t = s.taps[role === 'server' ? 0 : 1];
  if (!t) throw new Error(`tap link state has no ${role} tap (taps: ${JSON.stringify(s.taps)})`);
  return t;
}

/** Queue pairs for a VM with `cpus` vCPUs: one per vCPU for the stack, one per vCPU for XDP's own TX queues. */
export const xdpQueuePairs = (cpus: number): number => 2 * Math.max(1, cpus);

export const tapLink: LinkBackend<TapLinkState, TapOptions> = {
  id: 'tap',
  availability: tapCapability,
  plan: (p, o) => {
    const n = tapNames(p.tag);
    // Two queue pairs per vCPU of the larger VM: the guest's virtio_net uses one per online CPU for the stack and
    // gives XDP_TX/XDP_REDIRECT queues of their own only when curr_queue_pairs + nr_cpu_ids <= max_queue_pairs
    // (virtnet_xdp_set); with fewer, XDP_TX shares the stack's queues under a lock (issue 23 item 5).
    return { backend: 'tap', netns: n.netns, bridge: n.bridge, taps: [...n.taps], queues: xdpQueuePairs(p.cpus), vhost: o.vhost, mtu: p.mtu };
  },
  netdev: (s, role) => ({
    type: 'tap',
    // QEMU aborts on vhost=on without /dev/vhost-net: the plan asks for it only when the device exists.
    options: [`ifname=${tapOf(s, role)}`, 'script=no', 'downscript=no', `vhost=${s.vhost ? 'on' : 'off'}`, ...(s.queues > 1 ? [`queues=${s.queues}`] : [])],
    queues: s.queues,
  }),
  setup: async (s, log) => {
    for (const argv of tapSetupArgv(s)) await run(argv, { timeoutMs: 20_000, onLine: log });
  },
  teardown: async (s) => {
    // allowFailure: a half-made link may have no namespace yet, and teardown may run twice
    await run(tapTeardownArgv(s), { allowFailure: true, timeoutMs: 20_000 });
  },
  hostWrapper: (s) => ['ip', 'netns', 'exec', s.netns],
  sshProxyCommand: (s) => `ip netns exec ${s.netns} nc 127.0.0.1 %p`,
  hostResources: (s) => [`netns ${s.netns}`],
  describe: (s) => `tap (${s.queues} queue${s.queues === 1 ? '' : 's'}${s.vhost ? ', vhost-net' : ''})`,
};
