import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { qemuArgv, kernelCmdline, linkDeviceArgs, parseQemuVersion, privilegeDrop, type VmSpec } from '../../vm/spec.js';
import { parseProbeMapDump, parseXdpMode, explainXdpRefusal } from '../../core/xdp-check.js';
import { sshArgv, scpArgv } from '../../core/ssh.js';
import { FIXTURES } from '../helpers.js';

const spec = (over: Partial<VmSpec> = {}): VmSpec => ({
  role: 'server',
  cpus: 2,
  memoryMb: 1024,
  accel: 'tcg',
  kernel: '/k/bzImage',
  disk: '/v/server.qcow2',
  sshPort: 2222,
  mgmtMac: '52:54:00:77:00:01',
  linkMac: '52:54:00:77:01:01',
  linkAddr: '10.77.0.1/24',
  mtu: 1500,
  link: { backend: 'socket', port: 40000 },
  serialLog: '/v/server.serial.log',
  qmpSocket: '/v/server.qmp',
  pidfile: '/v/server.pid',
  ...over,
});

const valuesAfter = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('QEMU argv', () => {
  it('TCG: -accel tcg -cpu max, the kernel booted directly on the overlay, management forward on loopback only', () => {
    const a = qemuArgv(spec());
    expect(a[0]).toBe('qemu-system-x86_64');
    expect(valuesAfter(a, '-accel')).toEqual(['tcg,thread=multi']);
    expect(valuesAfter(a, '-cpu')).toEqual(['max']);
    expect(valuesAfter(a, '-kernel')).toEqual(['/k/bzImage']);
    expect(valuesAfter(a, '-drive')[0]).toBe('file=/v/server.qcow2,format=qcow2,if=none,id=root,cache=unsafe');
    expect(valuesAfter(a, '-netdev')).toEqual(['user,id=mgmt,hostfwd=tcp:127.0.0.1:2222-:22', 'socket,id=link,listen=127.0.0.1:40000']);
    expect(a).toContain('-daemonize');
    expect(valuesAfter(a, '-qmp')).toEqual(['unix:/v/server.qmp,server=on,wait=off']);
    expect(valuesAfter(a, '-serial')).toEqual(['file:/v/server.serial.log']);
  });

  it('KVM: -accel kvm -cpu host', () => {
    const a = qemuArgv(spec({ accel: 'kvm' }));
    expect(valuesAfter(a, '-accel')).toEqual(['kvm']);
    expect(valuesAfter(a, '-cpu')).toEqual(['host']);
  });

  it('link NIC: guest offloads off for XDP; tap multiqueue with 2*q+2 vectors; vhost only when asked', () => {
    const sock = linkDeviceArgs(spec({ role: 'client' }));
    expect(sock[1]).toBe('socket,id=link,connect=127.0.0.1:40000');
    expect(sock[3]).toMatch(/guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off/);
    expect(sock[3]).not.toMatch(/mq=on/);
    const tapLink = { backend: 'tap' as const, netns: 'kflexlab-1', bridge: 'kbr0', taps: ['kt1s', 'kt1c'], queues: 4, vhost: false, mtu: 1500 };
    const tap = linkDeviceArgs(spec({ link: tapLink }));
    expect(tap[1]).toBe('tap,id=link,ifname=kt1s,script=no,downscript=no,vhost=off,queues=4');
    expect(tap[3]).toMatch(/mq=on,vectors=10$/);
    expect(linkDeviceArgs(spec({ role: 'client', link: tapLink }))[1]).toMatch(/^tap,id=link,ifname=kt1c,/);
    expect(linkDeviceArgs(spec({ link: { ...tapLink, queues: 1, vhost: true } }))[1]).toBe('tap,id=link,ifname=kt1s,script=no,downscript=no,vhost=on');
  });

  it('kernel command line: root, console, classic NIC names, kernel DHCP on eth0, link address', () => {
    const c = kernelCmdline(spec());
    for (const w of [
      'root=/dev/vda',
      'console=ttyS0',
      'net.ifnames=0',
      'ip=:::::eth0:dhcp',
      'kflex.addr=10.77.0.1/24',
      'kflex.mtu=1500',
      'systemd.hostname=server',
    ])
      expect(c.split(' ')).toContain(w);
  });
});

describe('QEMU gives up root once its devices are open', () => {
  const drop = (euid: number, v: string, userExists = true) => privilegeDrop({ euid, qemuVersion: parseQemuVersion(v), userExists });
  it('reads the version QEMU prints', () => {
    expect(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022')).toEqual([7, 2]);
    expect(parseQemuVersion('QEMU emulator version 10.0.2')).toEqual([10, 0]);
    expect(parseQemuVersion('command not found')).toBeUndefined();
  });
  it('QEMU < 9 (this host: 7.2): -runas nobody, as the last words of the argv', () => {
    const a = qemuArgv(spec({ dropTo: drop(0, 'QEMU emulator version 7.2.22') }));
    expect(a.slice(-2)).toEqual(['-runas', 'nobody']);
    expect(a).not.toContain('-run-with');
  });
  it('QEMU >= 9: -run-with user=nobody (-runas is deprecated there, then removed)', () => {
    for (const v of ['QEMU emulator version 9.0.0', 'QEMU emulator version 10.1.0']) {
      const a = qemuArgv(spec({ dropTo: drop(0, v) }));
      expect(valuesAfter(a, '-run-with')).toEqual(['user=nobody']);
      expect(a).not.toContain('-runas');
    }
  });
  it('no drop when the lab is not root (QEMU could not switch), when the user is missing, or the version is unknown', () => {
    expect(drop(1000, 'QEMU emulator version 7.2.22')).toBeUndefined();
    expect(drop(0, 'QEMU emulator version 7.2.22', false)).toBeUndefined();
    expect(drop(0, 'garbage')).toBeUndefined();
    const a = qemuArgv(spec());
    expect(a).not.toContain('-runas');
    expect(a).not.toContain('-run-with');
  });
});

describe('native XDP check, on bpftool and kernel output captured in a guest', () => {
  const fx = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');
  it('reads the probe map with BTF-formatted and raw keys', () => {
    const c = parseProbeMapDump(fx('bpftool/map-dump-counts.json'));
    expect(c).toEqual([
      { proto: 17, port: 7777, count: 5 },
      { proto: 1, port: 0, count: 1 },
    ]);
    const raw = JSON.stringify(JSON.parse(fx('bpftool/map-dump-counts.json')).map((e: Record<string, unknown>) => ({ key: e.key, value: e.value })));
    expect(parseProbeMapDump(raw)).toEqual(c);
  });

  it('tells driver mode from generic mode', () => {
    expect(parseXdpMode(fx('bpftool/net-show-driver.json'), 'eth1')).toBe('driver');
    expect(parseXdpMode(fx('bpftool/net-show-generic.json'), 'eth1')).toBe('generic');
    expect(parseXdpMode(fx('bpftool/net-show-generic.json'), 'eth0')).toBeUndefined();
  });

  it('explains a refusal with the fix', () => {
    expect(explainXdpRefusal(fx('xdp/refused-mtu9000.txt'))).toMatch(/set vms\.link\.mtu to 1500/);
    // The text virtio_net prints when the host implements guest offloads (seen by the tap prototype).
    expect(explainXdpRefusal("Error: virtio_net: Can't set XDP while host is implementing GRO_HW/CSUM, disable GRO_HW/CSUM first.")).toMatch(
      /guest_csum\/guest_tso4/,
    );
  });
});

describe('ssh argv', () => {
  const t = { name: 'server', host: '127.0.0.1', port: 2222, user: 'root', identity: '/k/id', knownHosts: '/k/kh', hostKeyAlias: 'kflex-lab-guest' };
  it('pins the host key, uses only the lab key, never prompts, and quotes the remote argv', () => {
    const a = sshArgv(t, ['sh', '-c', 'echo "a b"; ls']);
    expect(a.slice(0, 3)).toEqual(['ssh', '-F', '/dev/null']);
    for (const o of [
      'StrictHostKeyChecking=yes',
      'BatchMode=yes',
      'UserKnownHostsFile=/k/kh',
      'HostKeyAlias=kflex-lab-guest',
      'IdentityFile=/k/id',
      'IdentitiesOnly=yes',
    ])
      expect(a).toContain(o);
    // POSIX quoting, not bash's $'...': any login shell reads it.
    expect(a.at(-1)).toBe(`sh -c 'echo "a b"; ls'`);
    expect(sshArgv(t, ['echo', "it's", ''])).toContain(`echo 'it'\\''s' ''`);
    expect(sshArgv({ ...t, wrapper: ['ip', 'netns', 'exec', 'ns'] }, ['true']).slice(0, 5)).toEqual(['ip', 'netns', 'exec', 'ns', 'ssh']);
    expect(scpArgv(t, '/a', 'root@127.0.0.1:/b')).toContain('-P');
  });
});
