import { describe, it, expect } from 'vitest';
import type { Profile } from '../../core/config.js';
import { LabError } from '../../core/errors.js';
import { qemuArgv } from '../../vm/spec.js';
import { Cluster, planCluster, sshConfigText, type PlanInputs } from '../../vm/cluster.js';
import type { ClusterState } from '../../vm/state.js';
import {
  LINK_BACKENDS,
  chooseLink,
  describeLink,
  linkBackendOf,
  linkHostResources,
  tapCapabilityFrom,
  tapNames,
  tapSetupArgv,
  tapTeardownArgv,
  type LinkAvailability,
  type LinkState,
  type TapLinkState,
} from '../../vm/link/index.js';

// The capability lines of /proc/self/status captured from a root shell on the lab's build host; the
// other CapEff values below are assembled from it by clearing bits 12 (CAP_NET_ADMIN) and 21 (CAP_SYS_ADMIN).
const ROOT_STATUS =
  'Name:\tcat\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n';
const withCapEff = (hex: string) => ROOT_STATUS.replace(/^CapEff:.*$/m, `CapEff:\t${hex}`);
const NO_NET_ADMIN = (0x1fffeffffffn & ~(1n << 12n)).toString(16).padStart(16, '0');
const NO_SYS_ADMIN = (0x1fffeffffffn & ~(1n << 21n)).toString(16).padStart(16, '0');
const host = { status: ROOT_STATUS, tun: true, vhostNet: true, ipTool: true };

const avail = (over: Partial<typeof host> = {}): LinkAvailability => ({
  tap: tapCapabilityFrom({ ...host, ...over }),
  socket: { ok: true, why: 'socket over loopback', options: {} },
});

describe('tap capability (decided once, for the link chooser and the doctor)', () => {
  it('root with /dev/net/tun and ip(8): tap, vhost only when /dev/vhost-net exists', () => {
    expect(tapCapabilityFrom(host)).toEqual({ ok: true, why: 'tap with vhost-net', options: { vhost: true } });
    expect(tapCapabilityFrom({ ...host, vhostNet: false })).toEqual({ ok: true, why: 'tap without vhost (no /dev/vhost-net)', options: { vhost: false } });
  });

  it('decides by the effective capabilities, not the uid, and names each missing piece with its fix', () => {
    const noNet = tapCapabilityFrom({ ...host, status: withCapEff(NO_NET_ADMIN) });
    expect(noNet).toMatchObject({ ok: false, why: 'lacks CAP_NET_ADMIN' });
    expect(tapCapabilityFrom({ ...host, status: withCapEff(NO_SYS_ADMIN) })).toMatchObject({ ok: false, why: 'lacks CAP_SYS_ADMIN' });
    // an unprivileged user: CapEff is 0
    const user = tapCapabilityFrom({ status: withCapEff('0000000000000000'), tun: false, vhostNet: false, ipTool: false });
    expect(user).toEqual({
      ok: false,
      why: 'lacks CAP_NET_ADMIN and CAP_SYS_ADMIN, no /dev/net/tun, no ip(8) on PATH',
      fix: expect.stringMatching(/^run as root .*; modprobe tun; apt-get install iproute2$/),
    });
    expect(tapCapabilityFrom({ ...host, status: 'Name:\tx\n' })).toMatchObject({ ok: false, why: expect.stringMatching(/no CapEff in \/proc\/self\/status/) });
  });
});

describe('link backend choice', () => {
  it('auto prefers tap, and says why it fell back to socket', () => {
    expect(chooseLink('auto', avail())).toMatchObject({ backend: 'tap', why: 'auto: tap with vhost-net', options: { vhost: true } });
    expect(chooseLink('auto', avail({ tun: false }))).toEqual({ backend: 'socket', why: 'auto: tap unavailable (no /dev/net/tun)', options: {} });
  });

  it('a forced backend is used when available and fails with the fix when not', () => {
    expect(chooseLink('socket', avail()).backend).toBe('socket');
    expect(chooseLink('tap', avail({ vhostNet: false }))).toMatchObject({ backend: 'tap', options: { vhost: false } });
    const forced = () => chooseLink('tap', avail({ status: withCapEff(NO_NET_ADMIN) }));
    expect(forced).toThrow(LabError);
    expect(forced).toThrow(/vms\.link\.backend is tap but this host cannot use it: lacks CAP_NET_ADMIN; run as root .*, or set vms\.link\.backend: auto/);
    expect(() => chooseLink('bridge', avail())).toThrow(/'bridge' is not a link backend; allowed: auto, tap, socket/);
  });

  it('every registered backend has a distinct id', () => {
    const ids = LINK_BACKENDS.map((b) => b.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('tap link', () => {
  const s: TapLinkState = { backend: 'tap', ...tapNames('12345'), taps: [...tapNames('12345').taps], queues: 2, vhost: true, mtu: 1500 };

  it('creates namespace, bridge and multiqueue taps with names that fit IFNAMSIZ, and deletes the namespace', () => {
    for (const t of s.taps) expect(t.length).toBeLessThanOrEqual(15);
    const argvs = tapSetupArgv(s);
    expect(argvs[0]).toEqual(['ip', 'netns', 'add', 'kflexlab-12345']);
    expect(argvs).toContainEqual(['ip', '-n', 'kflexlab-12345', 'tuntap', 'add', 'dev', 'kt12345s', 'mode', 'tap', 'multi_queue']);
    expect(argvs).toContainEqual(['ip', '-n', 'kflexlab-12345', 'link', 'set', 'kt12345c', 'master', 'kbr0', 'mtu', '1500', 'up']);
    expect(tapSetupArgv({ ...s, queues: 1 }).flat()).not.toContain('multi_queue');
    expect(tapTeardownArgv(s)).toEqual(['ip', 'netns', 'delete', 'kflexlab-12345']);
  });

  it('puts ssh and QEMU inside the namespace', () => {
    const b = linkBackendOf(s);
    expect(b.hostWrapper(s)).toEqual(['ip', 'netns', 'exec', 'kflexlab-12345']);
    expect(b.sshProxyCommand(s)).toBe('ip netns exec kflexlab-12345 nc 127.0.0.1 %p');
    expect(linkHostResources(s)).toEqual(['netns kflexlab-12345']);
    expect(describeLink(s)).toBe('tap (2 queues, vhost-net)');
    expect(describeLink({ ...s, queues: 1, vhost: false })).toBe('tap (1 queue)');
  });
});

describe('state.json link: a union tagged by backend', () => {
  it('each state finds its own backend; a state.json from an unknown backend names the file and the field', () => {
    const sock: LinkState = { backend: 'socket', port: 40000 };
    expect(linkBackendOf(sock).hostWrapper(sock)).toEqual([]);
    expect(linkBackendOf(sock).sshProxyCommand(sock)).toBeUndefined();
    expect(describeLink(sock)).toBe('socket');
    expect(() => linkBackendOf({ backend: 'vde' } as unknown as LinkState)).toThrow(/state\.json: link\.backend 'vde' is not one of tap, socket/);
  });
});

describe('cluster plan (pure)', () => {
  const vms: Profile['vms'] = {
    accel: 'auto',
    boot_timeout_s: 240,
    server: { cpus: 2, memory_mb: 2048 },
    client: { cpus: 1, memory_mb: 1024 },
    link: { backend: 'auto', mtu: 1500 },
  } as Profile['vms'];
  const inputs = (over: Partial<PlanInputs> = {}): PlanInputs => ({
    kernel: '/k/bzImage',
    dir: '/v/x',
    vms,
    owner: 'up',
    labPid: 4242,
    created: '2025-01-01T00:00:00.000Z',
    host: { kvm: { ok: false, why: '/dev/kvm does not exist' }, links: avail() },
    ports: { server: 2201, client: 2202, link: 40000 },
    ...over,
  });
  const keys = { identity: '/k/id', knownHosts: '/k/kh', hostAlias: 'kflex-lab-guest' } as Parameters<typeof sshConfigText>[1];

  it('tap: one namespace named for the lab process, two queue pairs per vCPU of the larger VM (XDP_TX gets its own), each VM on its own tap', () => {
    const p = planCluster(inputs());
    expect(p.state.link).toEqual({ backend: 'tap', netns: 'kflexlab-4242', bridge: 'kbr0', taps: ['kt4242s', 'kt4242c'], queues: 4, vhost: true, mtu: 1500 });
    expect(p.specs.server.link).toBe(p.state.link);
    expect(qemuArgv(p.specs.server).filter((a) => a.startsWith('tap,'))).toEqual(['tap,id=link,ifname=kt4242s,script=no,downscript=no,vhost=on,queues=4']);
    expect(qemuArgv(p.specs.client).filter((a) => a.startsWith('tap,'))).toEqual(['tap,id=link,ifname=kt4242c,script=no,downscript=no,vhost=on,queues=4']);
    expect(p.steps[0]).toBe('accel tcg (/dev/kvm does not exist), link tap (4 queues, vhost-net): auto: tap with vhost-net');
    const st: ClusterState = p.state;
    expect(Cluster.hostsFor('/v/x', st, keys).server.host.target.wrapper).toEqual(['ip', 'netns', 'exec', 'kflexlab-4242']);
    expect(sshConfigText(st, keys)).toContain('  ProxyCommand ip netns exec kflexlab-4242 nc 127.0.0.1 %p\n');
  });

  it('a root-started QEMU 7.2 drops to nobody with -runas in both VMs, and the plan says so; as a user it keeps its uid', () => {
    const p = planCluster(inputs({ host: { links: avail(), privileges: { euid: 0, qemuVersion: [7, 2], userExists: true } } }));
    for (const role of ['server', 'client'] as const) expect(qemuArgv(p.specs[role]).slice(-2)).toEqual(['-runas', 'nobody']);
    expect(p.steps).toContain("QEMU drops root to 'nobody' once its devices are open (-runas)");
    const user = planCluster(inputs({ host: { links: avail(), privileges: { euid: 1000, userExists: false } } }));
    expect(qemuArgv(user.specs.server)).not.toContain('-runas');
  });

  it('socket: the chosen port, server listens and client connects; no wrapper, no ProxyCommand', () => {
    const p = planCluster(inputs({ host: { kvm: { ok: true, why: 'a Linux guest ran under KVM' }, links: avail({ tun: false }) } }));
    expect(p.state.link).toEqual({ backend: 'socket', port: 40000 });
    expect(p.state.accel).toBe('kvm');
    expect(p.warnings).toEqual([]);
    expect(qemuArgv(p.specs.server)).toContain('socket,id=link,listen=127.0.0.1:40000');
    expect(qemuArgv(p.specs.client)).toContain('socket,id=link,connect=127.0.0.1:40000');
    expect(Cluster.hostsFor('/v/x', p.state, keys).client.host.target.wrapper).toBeUndefined();
    expect(sshConfigText(p.state, keys)).not.toContain('ProxyCommand');
    expect(sshConfigText(p.state, keys)).toContain('Host client\n  HostName 127.0.0.1\n  Port 2202\n');
    // With the VM dir, a user's ssh shares the lab's connection to that VM.
    expect(sshConfigText(p.state, keys)).not.toContain('ControlPath');
    expect(sshConfigText(p.state, keys, '/v/x')).toContain('  ControlMaster auto\n  ControlPath /v/x/client.ssh\n  ControlPersist 300');
  });

  it('state.json records every VM path and port before anything starts, and survives a JSON round trip', () => {
    const p = planCluster(inputs());
    expect(p.state).toMatchObject({ owner: 'up', labPid: 4242, phase: 'booting', accel: 'tcg', created: '2025-01-01T00:00:00.000Z' });
    expect(p.state.vms.server).toEqual({
      pidfile: '/v/x/server.pid',
      qmp: '/v/x/server.qmp',
      serial: '/v/x/server.serial.log',
      sshPort: 2201,
      disk: '/v/x/server.qcow2',
    });
    expect(p.state.vms.client.sshPort).toBe(2202);
    expect(p.specs.server).toMatchObject({ cpus: 2, memoryMb: 2048, linkAddr: '10.77.0.1/24', sshPort: 2201 });
    expect(p.specs.client).toMatchObject({ cpus: 1, memoryMb: 1024, linkAddr: '10.77.0.2/24', sshPort: 2202 });
    expect(JSON.parse(JSON.stringify(p.state))).toEqual(p.state);
    expect(p.warnings).toEqual(['no usable KVM: TCG emulation, results are functional only, not performance-comparable']);
  });

  it('a forced accelerator ignores the KVM probe; a forced tap on a host without it fails before anything starts', () => {
    expect(planCluster(inputs({ vms: { ...vms, accel: 'kvm' }, host: { links: avail() } })).state.accel).toBe('kvm');
    expect(planCluster(inputs({ vms: { ...vms, accel: 'tcg' }, host: { kvm: { ok: true, why: '' }, links: avail() } })).state.accel).toBe('tcg');
    expect(() => planCluster(inputs({ vms: { ...vms, link: { backend: 'tap', mtu: 1500 } }, host: { links: avail({ ipTool: false }) } }))).toThrow(
      /no ip\(8\) on PATH; apt-get install iproute2/,
    );
  });
});
