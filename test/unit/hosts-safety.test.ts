import { describe, it, expect } from 'vitest';
import {
  sameMachineRefusal,
  sshInterfaceRefusal,
  sshInterfaces,
  linkInterfaceRefusal,
  linkAddress,
  clientRouteRefusal,
  foreignXdpRefusal,
  rootRefusal,
} from '../../hosts/safety.js';
import type { IfAddr } from '../../hosts/facts.js';
import { parsePgrep } from '../../hosts/testbed.js';

// A bare-metal server: management on eno1 (where SSH arrives), the experiment link on enp1s0f0.
const ifs: IfAddr[] = [
  { ifname: 'lo', ifindex: 1, operstate: 'UNKNOWN', mtu: 65536, addrs: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  { ifname: 'eno1', ifindex: 2, operstate: 'UP', mtu: 1500, addrs: [{ family: 'inet', local: '192.168.1.20', prefixlen: 24 }] },
  {
    ifname: 'enp1s0f0',
    ifindex: 3,
    operstate: 'UP',
    mtu: 1500,
    addrs: [
      { family: 'inet', local: '10.0.0.1', prefixlen: 24 },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
    ],
  },
];
const server = (linkIf: string, sshServerIp = '192.168.1.20', sshRouteDev = 'eno1') => ({
  role: 'server' as const,
  destination: 'lab1',
  interfaces: ifs,
  linkIf,
  ssh: { clientIp: '192.168.1.5', clientPort: 50000, serverIp: sshServerIp, serverPort: 22 },
  sshRouteDev,
});

describe('refusals on the hosts testbed', () => {
  it('refuses when server and client are one machine (same machine-id)', () => {
    const a = { machineId: 'c0ffee', bootId: 'b1', hostname: 'lab1' };
    expect(sameMachineRefusal(a, { machineId: 'c0ffee', bootId: 'b1', hostname: 'lab1' })).toMatch(/same machine \(both report \/etc\/machine-id c0ffee/);
    expect(sameMachineRefusal(a, { machineId: 'f00d', bootId: 'b2', hostname: 'lab2' })).toBeUndefined();
  });

  it('refuses two containers of one kernel (same boot_id, different machine-ids)', () => {
    expect(sameMachineRefusal({ machineId: 'a', bootId: 'same', hostname: 'x' }, { machineId: 'b', bootId: 'same', hostname: 'y' })).toMatch(
      /same kernel \(both report boot_id same\)/,
    );
  });

  it('refuses XDP on the interface that carries the SSH session, by its address or by the route back', () => {
    expect(sshInterfaces(server('enp1s0f0'))).toEqual(['eno1']);
    expect(sshInterfaceRefusal(server('enp1s0f0'))).toBeUndefined();
    expect(sshInterfaceRefusal(server('eno1'))).toMatch(/^server\.link\.interface eno1 carries this SSH session \(192\.168\.1\.20:22 from 192\.168\.1\.5\)/);
    // SSH arrives on the link's address (the user ssh'ed over the experiment network).
    expect(sshInterfaceRefusal(server('enp1s0f0', '10.0.0.1', 'enp1s0f0'))).toMatch(/enp1s0f0 carries this SSH session/);
    // Asymmetric routing: the session's address is on eno1, but replies leave through the link NIC.
    expect(sshInterfaceRefusal(server('enp1s0f0', '192.168.1.20', 'enp1s0f0'))).toMatch(/enp1s0f0 carries this SSH session/);
  });

  it('refuses to guess when $SSH_CONNECTION is not there', () => {
    expect(sshInterfaceRefusal({ ...server('enp1s0f0'), ssh: undefined })).toMatch(/cannot tell which interface carries the SSH session/);
  });

  it('refuses a link NIC that does not exist, naming the ones that do', () => {
    expect(linkInterfaceRefusal({ role: 'client', destination: 'lab2', interfaces: ifs, linkIf: 'eth1', linkError: 'Device "eth1" does not exist.' })).toBe(
      'client.link.interface: eth1 does not exist on lab2 (ip: Device "eth1" does not exist.); its interfaces: eno1, enp1s0f0',
    );
    expect(linkInterfaceRefusal({ role: 'client', destination: 'lab2', interfaces: ifs, linkIf: 'enp1s0f0' })).toBeUndefined();
  });

  it('discovers the link address, or refuses a configured one that is elsewhere', () => {
    expect(linkAddress({ role: 'server', interfaces: ifs, linkIf: 'enp1s0f0' }, undefined)).toEqual({ address: '10.0.0.1' });
    expect(linkAddress({ role: 'server', interfaces: ifs, linkIf: 'enp1s0f0' }, '10.0.0.1')).toEqual({ address: '10.0.0.1' });
    expect(linkAddress({ role: 'server', interfaces: ifs, linkIf: 'enp1s0f0' }, '192.168.1.20').refusal).toBe(
      'server.link.address: 192.168.1.20 is not on enp1s0f0 but on eno1; enp1s0f0 has 10.0.0.1',
    );
    expect(linkAddress({ role: 'server', interfaces: [{ ...ifs[2]!, addrs: [] }], linkIf: 'enp1s0f0' }, undefined).refusal).toMatch(
      /has no IPv4 address to discover/,
    );
  });

  it('refuses a client that reaches the server around the link', () => {
    expect(clientRouteRefusal('enp1s0f0', 'enp1s0f0', '10.0.0.1')).toBeUndefined();
    expect(clientRouteRefusal('enp1s0f0', 'eno1', '10.0.0.1')).toMatch(/through eno1, not its link NIC enp1s0f0: the experiments would not cross the link/);
    expect(clientRouteRefusal('enp1s0f0', undefined, '10.0.0.1')).toMatch(/no route/);
  });

  it("refuses to replace someone else's XDP program on the link NIC", () => {
    expect(foreignXdpRefusal({ role: 'server', linkIf: 'enp1s0f0', linkXdp: { attached: true, mode: 1, progId: 42 } })).toMatch(
      /XDP program \(id 42\) is already attached to the server's enp1s0f0/,
    );
    expect(foreignXdpRefusal({ role: 'server', linkIf: 'enp1s0f0', linkXdp: { attached: false } })).toBeUndefined();
  });

  it('needs root: directly or through passwordless sudo', () => {
    expect(rootRefusal('server', 0, false, undefined)).toBeUndefined();
    expect(rootRefusal('server', 1000, false, undefined)).toMatch(/uid 1000, not root; set server\.sudo: true/);
    expect(rootRefusal('client', 1000, true, 0)).toBeUndefined();
    expect(rootRefusal('client', 1000, true, undefined, 'sudo: a password is required\n')).toMatch(
      /sudo -n does not give root \(sudo: a password is required\)/,
    );
  });
});

describe('programs already running before the run', () => {
  it('are read by name only to warn about them (stopping goes by the ledger: test/unit/processes.test.ts)', () => {
    expect(parsePgrep('memcached:812 \nredis-server:\nffkx:4300 4301 \n')).toEqual({ memcached: [812], 'redis-server': [], ffkx: [4300, 4301] });
  });
});
