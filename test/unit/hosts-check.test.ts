import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseGather, parseLinkXdp, parseEthtoolInfo, parseRouteGet, parseOsRelease, clockSample, splitSections, type HostFacts } from '../../hosts/facts.js';
import { assess, profileHeaps, xdpRefusalOf, type Inspection } from '../../hosts/check.js';
import { installPlan, installLine } from '../../hosts/packages.js';
import { parseDpkgInstalled, newlyInstalled, planPrepare } from '../../hosts/prepare.js';
import { linkInterfaceRefusal } from '../../hosts/safety.js';
import { loadConfig } from '../../core/config.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { FIXTURES, tempDir } from '../helpers.js';

const fx = (f: string) => readFileSync(join(FIXTURES, 'hosts', f), 'utf8');
const server = () => parseGather(fx('gather-server.txt'), { role: 'server', destination: 'server', linkIf: 'eth1' });
const client = () => parseGather(fx('gather-client.txt'), { role: 'client', destination: 'client', linkIf: 'eth1' });

describe("parsing what the hosts' commands print (captured on the lab's VMs)", () => {
  it('reads the server: kernel, distribution, ids, RAM, CPU and la57, the SSH session and its route', () => {
    const s = server();
    expect(s).toMatchObject({
      hostname: 'server',
      kernel: '6.1.192',
      uid: 0,
      cpus: 1,
      machineId: '5af27471bc5d41a38e50d4d4a98a6541',
      bootId: 'e2787c02-7826-4a75-a4f1-eda119d9bf65',
    });
    expect(s.os).toMatchObject({ id: 'debian', codename: 'trixie', versionId: '13', pretty: 'Debian GNU/Linux 13 (trixie)' });
    expect(s.memory).toEqual({ totalMb: 993, availableMb: 949 });
    expect(s.cpu).toEqual({ model: 'QEMU TCG CPU version 2.5+', la57: true });
    expect(s.ssh).toEqual({ clientIp: '10.0.2.2', clientPort: 46574, serverIp: '10.0.2.15', serverPort: 22 });
    expect(s.sshRouteDev).toBe('eth0');
    expect(s.ntpSynchronized).toBe(false);
  });

  it('reads the interfaces, the link NIC (driver, bus) and that no XDP program is attached', () => {
    const s = server();
    expect(s.interfaces.map((i) => [i.ifname, i.addrs.filter((a) => a.family === 'inet').map((a) => a.local)])).toEqual([
      ['lo', ['127.0.0.1']],
      ['eth0', ['10.0.2.15']],
      ['eth1', ['10.77.0.1']],
      ['sit0', []],
    ]);
    expect(s.nic).toEqual({ driver: 'virtio_net', version: '1.0.0', firmware: undefined, busInfo: '0000:00:05.0' });
    expect(s.linkXdp).toEqual({ attached: false });
    expect(s.linkError).toBeUndefined();
  });

  it('reads which binaries are there, ffkx in /opt/kflex, and the BTF probe', () => {
    const s = server();
    expect(s.binaries).toMatchObject({ memcached: '/usr/bin/memcached', bpftool: '/usr/sbin/bpftool', ethtool: '/usr/sbin/ethtool' });
    expect(s.kflexFiles).toEqual({ ffkx: undefined, 'ffkx-bench': undefined });
    expect(s.btf).toEqual({ kind: 'not-kflex' });
    expect(client().binaries).toEqual({
      memcaslap: '/usr/bin/memcaslap',
      'redis-benchmark': '/usr/bin/redis-benchmark',
      memtier_benchmark: undefined,
      ip: '/usr/sbin/ip',
      ping: '/usr/bin/ping',
      bash: '/usr/bin/bash',
      pkill: '/usr/bin/pkill',
    });
  });

  it("reads ip's XDP object (the lab's probe attached in driver mode) and its absence", () => {
    expect(parseLinkXdp(fx('ip-link-xdp-attached.json'))).toEqual({ attached: true, mode: 1, progId: 44 });
    expect(parseLinkXdp(fx('ip-link-no-xdp.json'))).toEqual({ attached: false });
  });

  it('a link NIC that does not exist: ip says so, and the refusal quotes it', () => {
    const text = fx('gather-server.txt').replace(/(@@kflex-lab:link\n)[^\n]*\n/, `$1${fx('ip-link-missing.txt')}`);
    const f = parseGather(text, { role: 'server', destination: 'server', linkIf: 'eth9' });
    expect(f.linkError).toBe('Device "eth9" does not exist.');
    expect(linkInterfaceRefusal(f)).toBe(
      'server.link.interface: eth9 does not exist on server (ip: Device "eth9" does not exist.); its interfaces: eth0, eth1, sit0',
    );
  });

  it("reads ethtool -i of a bare-metal NIC (assembled: an X710 port's fields) and ip route get", () => {
    expect(parseEthtoolInfo(fx('ethtool-i40e.txt'))).toEqual({
      driver: 'i40e',
      version: '6.1.0-27-amd64',
      firmware: '9.20 0x8000d8c5 1.3146.0',
      busInfo: '0000:3b:00.0',
    });
    expect(parseRouteGet(fx('ip-route-get.json'))).toEqual({ dev: 'eth1', src: '10.77.0.2', gateway: undefined });
    expect(parseRouteGet('RTNETLINK answers: Network is unreachable')).toBeUndefined();
  });

  it('reads Ubuntu os-release (ID_LIKE) and sections with nothing after them', () => {
    expect(parseOsRelease('NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\nVERSION_CODENAME=noble\n')).toEqual({
      id: 'ubuntu',
      idLike: ['debian'],
      versionId: '24.04',
      codename: 'noble',
      pretty: 'Ubuntu 24.04.1 LTS',
    });
    expect(splitSections('junk\n@@kflex-lab:a\n1\n@@kflex-lab:b\n')).toEqual({ a: '1', b: '' });
  });

  it('reads dpkg-query status and finds exactly what an install added', () => {
    const before = parseDpkgInstalled(fx('dpkg-query-installed.txt'));
    expect(before.size).toBe(149);
    expect(before.has('redis-tools')).toBe(true);
    // Assembled: "rc" is a removed package whose configuration files remain: not installed.
    const removed = parseDpkgInstalled(fx('dpkg-query-installed.txt').replace('redis-tools\tii ', 'redis-tools\trc '));
    expect(removed.has('redis-tools')).toBe(false);
    expect(newlyInstalled(removed, before)).toEqual(['redis-tools']);
  });

  it("measures a clock offset against the round trip's midpoint", () => {
    expect(clockSample(1_000, '1500000000', 1_200)).toEqual({ offsetMs: 400, uncertaintyMs: 100 });
  });
});

describe('what hosts check says from those facts', () => {
  const smoke = loadConfig({ profile: 'smoke', env: {} }).profile;
  const ins = (mut: (s: HostFacts, c: HostFacts) => void = () => {}): Inspection => {
    const s = server();
    const c = client();
    mut(s, c);
    return {
      facts: { server: s, client: c },
      raw: {},
      unreachable: {},
      uid: { server: 0, client: 0 },
      serverIp: '10.77.0.1',
      clientIp: '10.77.0.2',
      refusals: [],
    };
  };

  it('one install line per host for what is missing; memtier is named, not invented as a package', () => {
    const a = assess(
      ins((_s, c) => {
        c.binaries['redis-benchmark'] = undefined;
      }),
      { heaps: [], profileCpus: { server: 1, client: 1 } },
    );
    expect(a.install).toEqual({ client: 'apt-get install -y redis-tools' });
    expect(a.checks.find((c) => c.host === 'client' && c.name === 'binaries')).toMatchObject({
      level: 'fail',
      detail: expect.stringMatching(/^missing: redis-benchmark, memtier_benchmark; memtier_benchmark: not packaged by Debian or Ubuntu/),
    });
  });

  it('a non-root login gets sudo in its line; Ubuntu gets bpftool from linux-tools of its kernel', () => {
    const ubuntu = parseOsRelease('ID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n');
    const plan = installPlan(['bpftool', 'memcached', 'ss', 'ip'], ubuntu, '6.8.0-45-generic');
    expect(installLine(plan, false, ubuntu)).toBe('sudo apt-get install -y linux-tools-common linux-tools-6.8.0-45-generic memcached iproute2');
    const fedora = parseOsRelease('ID=fedora\nPRETTY_NAME="Fedora Linux 40"\n');
    expect(installLine(installPlan(['memcached'], fedora, '6.9'), true, fedora)).toBe(
      '(no package mapping for Fedora Linux 40: install memcached with its package manager)',
    );
  });

  it("the profile's heaps against the server's RAM, and the KFlex kernel with how to get one", () => {
    const paper = loadConfig({ env: {} }).profile;
    const heaps = profileHeaps(paper, EXPERIMENTS);
    expect(heaps[0]).toBeGreaterThanOrEqual(64);
    const a = assess(ins(), { heaps, profileCpus: { server: 8, client: 8 } });
    expect(a.checks.find((c) => c.name === 'heap ram')).toMatchObject({
      level: 'warn',
      detail: expect.stringMatching(/^1\.0 GiB of RAM: the KFlex heaps \d+ GiB \(needs ~\d+ GiB of RAM\)/),
    });
    expect(a.checks.find((c) => c.name === 'kflex kernel')).toMatchObject({
      level: 'warn',
      fix: expect.stringMatching(/kflex-lab build kernel --deb --profile paper.*never reboots/),
    });
    expect(a.checks.find((c) => c.host === 'server' && c.name === 'cpus')).toMatchObject({ level: 'warn' });
    expect(profileHeaps(smoke, EXPERIMENTS)).toEqual(heaps.filter((h) => profileHeaps(smoke, EXPERIMENTS).includes(h)));
  });

  it('refusals are failing checks; a clock far off warns', () => {
    const i = ins();
    i.refusals.push({ name: 'same machine', host: 'both', why: 'server and client are the same machine' });
    const a = assess(i, { heaps: [], profileCpus: { server: 1, client: 1 }, clockOffsetMs: 850, clockUncertaintyMs: 20 });
    expect(a.checks.filter((c) => c.level === 'fail').map((c) => c.name)).toEqual(['same machine']);
    expect(a.checks.find((c) => c.name === 'clock')).toMatchObject({ level: 'warn', fix: expect.stringMatching(/NTP/) });
  });

  it("keeps ip's words when a driver refuses XDP, not the VM advice", () => {
    const e = new Error(
      "native (driver-mode) XDP refused on the server's eno1: the NIC driver has no native XDP: the link NIC must be virtio-net-pci\n" +
        '  ip said: Error: Underlying driver does not support XDP in native mode.',
    );
    expect(xdpRefusalOf(e, 'e1000e', 'eno1')).toBe(
      'driver e1000e refused driver-mode XDP on eno1: Error: Underlying driver does not support XDP in native mode.',
    );
  });
});

describe('what hosts prepare would do', () => {
  it('apt for the missing packages; for ffkx, a note saying how when there is no build to copy', () => {
    const c = client();
    c.binaries['redis-benchmark'] = undefined;
    expect(planPrepare('client', c, { suite: 'trixie', why: 'x' })).toEqual([
      { host: 'client', kind: 'apt', packages: ['redis-tools'], detail: 'apt-get install -y --no-install-recommends redis-tools' },
      { host: 'client', kind: 'note', detail: expect.stringMatching(/^memtier_benchmark: not packaged/) },
    ]);
    expect(planPrepare('server', server(), { suite: 'trixie', why: 'profile smoke builds no KFlex user space' })).toEqual([
      { host: 'server', kind: 'note', detail: 'ffkx, ffkx-bench: profile smoke builds no KFlex user space' },
    ]);
  });

  it("copies the kflex build (with its runtime libraries) only to a host that runs the build's suite", () => {
    const dir = tempDir();
    for (const f of ['ffkx', 'ffkx-bench', 'ffkx-test', 'kmemcache.bpf.o']) writeFileSync(join(dir, f), '');
    const steps = planPrepare('server', server(), { suite: 'trixie', dir });
    expect(steps.map((s) => s.kind)).toEqual(['apt', 'copy-kflex']);
    expect(steps[0]!.packages).toContain('libabsl-dev');
    expect(steps[1]!.files).toEqual(['ffkx', 'ffkx-bench', 'ffkx-test', 'kmemcache.bpf.o']);
    const other = planPrepare('server', server(), { suite: 'forky', dir });
    expect(other).toEqual([
      {
        host: 'server',
        kind: 'note',
        detail: expect.stringMatching(/build is for Debian forky, and this host runs Debian GNU\/Linux 13 \(trixie\): its libraries .* would not match/),
      },
    ]);
  });
});
