import { existsSync } from 'node:fs';
import { run, probe } from '../core/exec.js';
import { LabError, ExitCode } from '../core/errors.js';

export type LinkBackend = 'socket' | 'tap';

export interface LinkChoice {
  backend: LinkBackend;
  vhost: boolean;
  why: string;
}

/**
 * tap (bridge in the lab's own network namespace, vhost-net when /dev/vhost-net exists) needs root and
 * /dev/net/tun; otherwise QEMU's unprivileged socket backend. QEMU aborts on vhost=on without
 * /dev/vhost-net, so vhost is only asked for when the device is there.
 */
export function chooseLink(wanted: 'auto' | 'tap' | 'socket', host: { root: boolean; tun: boolean; vhostNet: boolean; ipTool: boolean }): LinkChoice {
  const tapOk = host.root && host.tun && host.ipTool;
  const whyNot = !host.root ? 'not root' : !host.tun ? 'no /dev/net/tun' : 'no ip(8)';
  if (wanted === 'socket') return { backend: 'socket', vhost: false, why: 'profile asks for socket' };
  if (wanted === 'tap' && !tapOk) throw new LabError(`vms.link.backend is tap but this host cannot make taps (${whyNot}); run as root or set vms.link.backend: socket`, ExitCode.infra);
  if (tapOk) return { backend: 'tap', vhost: host.vhostNet, why: host.vhostNet ? 'tap with vhost-net' : 'tap without vhost (no /dev/vhost-net)' };
  return { backend: 'socket', vhost: false, why: `socket: tap unavailable (${whyNot})` };
}

export function hostLinkFacts() {
  return { root: process.getuid?.() === 0, tun: existsSync('/dev/net/tun'), vhostNet: existsSync('/dev/vhost-net') };
}

/** Names unique to one VM dir, short enough for IFNAMSIZ (15). */
export function tapNames(tag: string) {
  return { netns: `kflexlab-${tag}`, bridge: 'kbr0', taps: [`kt${tag}s`, `kt${tag}c`] as const };
}

/** argv list to create the namespace, a bridge and two multiqueue taps in it. */
export function tapSetupArgv(tag: string, queues: number, mtu: number): string[][] {
  const n = tapNames(tag);
  const inNs = (argv: string[]) => ['ip', '-n', n.netns, ...argv];
  return [
    ['ip', 'netns', 'add', n.netns],
    inNs(['link', 'set', 'lo', 'up']),
    inNs(['link', 'add', n.bridge, 'type', 'bridge']),
    inNs(['link', 'set', n.bridge, 'mtu', String(mtu), 'up']),
    ...n.taps.flatMap((t) => [
      inNs(['tuntap', 'add', 'dev', t, 'mode', 'tap', ...(queues > 1 ? ['multi_queue'] : [])]),
      inNs(['link', 'set', t, 'master', n.bridge, 'mtu', String(mtu), 'up']),
    ]),
  ];
}

export async function setupTapLink(tag: string, queues: number, mtu: number, log: (l: string) => void): Promise<void> {
  if (!(await probe(['ip', '-V']))) throw new LabError('ip(8) missing: apt-get install iproute2', ExitCode.infra);
  for (const argv of tapSetupArgv(tag, queues, mtu)) await run(argv, { timeoutMs: 20_000, onLine: log });
}
