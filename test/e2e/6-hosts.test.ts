import { describe, it, expect, afterAll, onTestFinished } from 'vitest';
import { existsSync, readFileSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lab, explain, readEvents, backgroundLab } from './cli.js';
import { tempDir } from '../helpers.js';
import { loadConfig } from '../../core/config.js';
import { MACS } from '../../vm/spec.js';
import { FIXTURES } from '../helpers.js';

// The lab's own VMs stand in for two bare-metal machines: the hosts testbed reaches them only through the
// ordinary ssh_config that `up` writes, as it would reach a user's machines through ~/.ssh/config.
const VM = process.env.KFLEX_E2E_HOSTS_VM ?? 'hosts-e2e';
const cache = loadConfig({ profile: 'smoke' }).cacheRoot;
const vmDir = join(cache, 'vms', VM);
const work = tempDir('kflex-hosts-');
const results = tempDir('kflex-results-');
const env = { KFLEX_LAB_RESULTS: results };
const hostsYaml = join(work, 'hosts.yaml');
const onVm = (role: 'server' | 'client', argv: string[]) => lab(['exec', role, '--profile', 'smoke', '--vm', VM, '--', ...argv]);

type Check = { host: string; name: string; level: string; detail: string };
type CheckJson = {
  ok: boolean;
  checks: Check[];
  install: Record<string, string>;
  facts: Record<string, { kernel: string; nic: { driver?: string }; linkIf: string }>;
  link: { serverIp: string; clientIp: string };
  xdp?: { mode: string; sent: number; counted: number };
  xdpRefused?: string;
};

/**
 * A local package archive on the client, as air-gapped testbeds have (the VMs have no route to Debian's
 * archive): redis-tools is repacked from its installed files with dpkg-deb, indexed by hand, and offered
 * through a `file:` apt source. Then it is removed, so `prepare` has something real to install.
 */
const LOCAL_ARCHIVE =
  `set -eu
p=redis-tools; r=/srv/kflex-e2e-repo; root=$(mktemp -d)
mkdir -p "$r" "$root/DEBIAN"
dpkg-query -L "$p" | while read -r f; do if [ -f "$f" ] || [ -L "$f" ]; then cp -a --parents "$f" "$root/"; fi; done
dpkg-query -s "$p" | grep -Ev '^(Status|Conffiles):' > "$root/DEBIAN/control"
dpkg-deb -b "$root" "$r/$p.deb" >/dev/null
{ dpkg-deb -f "$r/$p.deb"; echo "Filename: ./$p.deb"; ` +
  `echo "Size: $(stat -c %s "$r/$p.deb")"; echo "SHA256: $(sha256sum "$r/$p.deb" | cut -d' ' -f1)"; echo; } > "$r/Packages"
echo "deb [trusted=yes] file:$r ./" > /etc/apt/sources.list.d/kflex-e2e.list
apt-get remove -y "$p" >/dev/null
! command -v redis-benchmark
`;

afterAll(async () => {
  await lab(['down', '--profile', 'smoke', '--vm', VM]);
});

describe('hosts testbed: two machines over OpenSSH (the VMs, through their ssh_config)', () => {
  it('up boots the stand-ins; the client loses redis-tools but gets a local archive holding it', async () => {
    const up = await lab(['up', '--profile', 'smoke', '--vm', VM]);
    expect(up.code, explain(up)).toBe(0);
    expect(existsSync(join(vmDir, 'ssh_config'))).toBe(true);
    writeFileSync(
      hostsYaml,
      `ssh_config: ${join(vmDir, 'ssh_config')}\nserver:\n  destination: server\n  name: ${VM}-server\n  link: { interface: eth1 }\n` +
        `client:\n  destination: client\n  name: ${VM}-client\n  link: { interface: eth1, address: 10.77.0.2 }\n`,
    );
    // What prepare records lives in the cache: start from no record.
    for (const r of ['server', 'client']) rmSync(join(cache, 'hosts', `${VM}-${r}`), { recursive: true, force: true });
    const r = await onVm('client', ['sh', '-c', LOCAL_ARCHIVE]);
    expect(r.code, explain(r)).toBe(0);
  });

  it('check refuses one machine given twice and XDP on the SSH interface, and attaches nothing', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(
      bad,
      `ssh_config: ${join(vmDir, 'ssh_config')}\nserver:\n  destination: server\n  link: { interface: eth0 }\n` +
        `client:\n  destination: root@server\n  name: again\n  link: { interface: eth1 }\n`,
    );
    const r = await lab(['hosts', 'check', '--profile', 'smoke', '--testbed', bad, '--json']);
    expect(r.code, explain(r)).toBe(1);
    const j = JSON.parse(r.stdout) as CheckJson;
    const fails = j.checks.filter((c) => c.level === 'fail').map((c) => c.name);
    expect(fails).toEqual(expect.arrayContaining(['same machine', 'ssh interface']));
    expect(j.checks.find((c) => c.name === 'ssh interface')!.detail).toMatch(
      /server\.link\.interface eth0 carries this SSH session \(10\.0\.2\.15:22 from 10\.0\.2\.2\)/,
    );
    expect(j.xdp).toBeUndefined();
    expect(j.xdpRefused).toMatch(/^not tried: /);
  });

  it('check: kernel, NIC driver, native XDP by the probe (detached after), what is missing and the install line', async () => {
    const r = await lab(['hosts', 'check', '--profile', 'smoke', '--testbed', hostsYaml, '--json']);
    // redis-benchmark is missing on the client: a failing check, with its fix.
    expect(r.code, explain(r)).toBe(1);
    const j = JSON.parse(r.stdout) as CheckJson;
    expect(j.link).toEqual({ serverIp: '10.77.0.1', clientIp: '10.77.0.2' });
    expect(j.facts.server!.nic.driver).toBe('virtio_net');
    expect(j.facts.server!.kernel).toMatch(/^7\.3\./);
    expect(j.xdp, explain(r)).toMatchObject({ mode: 'driver', sent: 100, counted: 100 });
    expect(j.checks.find((c) => c.host === 'server' && c.name === 'kflex kernel')).toMatchObject({ level: 'warn' });
    expect(j.checks.find((c) => c.host === 'client' && c.name === 'binaries')).toMatchObject({
      level: 'fail',
      // memtier_benchmark is missing too (not packaged; the smoke image could not build it): a soft need, redis-benchmark stands in.
      detail: expect.stringMatching(/^missing: (memtier_benchmark, )?redis-benchmark\b/),
    });
    expect(j.install.client).toBe('apt-get install -y redis-tools');
    expect(j.install.server).toBeUndefined();
    expect(j.checks.filter((c) => c.level === 'fail').map((c) => `${c.host} ${c.name}`)).toEqual(['client binaries']);
    const link = await onVm('server', ['ip', '-j', 'link', 'show', 'dev', 'eth1']);
    expect(JSON.parse(link.stdout)[0].xdp).toBeUndefined();
  });

  it('prepare installs the missing package with apt, records exactly that, and check passes after', async () => {
    const dry = await lab(['hosts', 'prepare', '--profile', 'smoke', '--testbed', hostsYaml, '--dry-run', '--json']);
    expect(dry.code, explain(dry)).toBe(0);
    const plan = JSON.parse(dry.stdout) as { steps: Array<{ host: string; kind: string; packages?: string[]; detail: string }>; outcomes: unknown[] };
    expect(plan.outcomes).toEqual([]);
    expect(plan.steps.filter((s) => s.kind === 'apt')).toEqual([expect.objectContaining({ host: 'client', packages: ['redis-tools'] })]);
    // The smoke profile builds no KFlex user space: prepare says so instead of copying anything.
    expect(plan.steps.find((s) => s.host === 'server' && /ffkx/.test(s.detail))).toMatchObject({
      kind: 'note',
      detail: expect.stringMatching(/builds no KFlex user space \(image\.kflex: false\)/),
    });

    const r = await lab(['hosts', 'prepare', '--profile', 'smoke', '--testbed', hostsYaml, '--json']);
    expect(r.code, explain(r)).toBe(0);
    const done = JSON.parse(r.stdout) as { outcomes: Array<{ ok: boolean; detail: string }>; records: Record<string, string> };
    expect(done.outcomes).toEqual([expect.objectContaining({ ok: true, detail: 'installed 1 package(s): redis-tools' })]);
    const record = JSON.parse(readFileSync(join(cache, 'hosts', `${VM}-client`, 'installed.json'), 'utf8'));
    expect(record.entries).toEqual([expect.objectContaining({ kind: 'apt', requested: ['redis-tools'], installed: ['redis-tools'] })]);
    expect((await onVm('client', ['redis-benchmark', '--version'])).code).toBe(0);

    const again = await lab(['hosts', 'check', '--profile', 'smoke', '--testbed', hostsYaml, '--json']);
    expect(again.code, explain(again)).toBe(0);
    expect((JSON.parse(again.stdout) as CheckJson).install).toEqual({});
  });

  it('reproduce --testbed: user-space cells measured on the hosts, KFlex cells skipped with the probe reason, nothing left running', async () => {
    const events = join(work, 'events.jsonl');
    const r = await lab(['reproduce', '--profile', 'smoke', '--quick', '--only', 'memcache', '--testbed', hostsYaml, '--events', events], env);
    expect(r.code, explain(r)).toBe(0);
    const ev = readEvents(events);
    expect(ev.find((e) => e.type === 'accel')).toMatchObject({ accel: 'native' });
    expect(ev.find((e) => e.type === 'testbed-up')).toMatchObject({ kind: 'hosts', accel: 'native', nativeXdp: true });
    // Only the probe object is built locally: no kernel, no image, no QEMU for this testbed.
    expect(ev.filter((e) => e.type === 'stage-start' || e.type === 'stage-cached').map((e) => e.stage)).toEqual(['llvm']);
    const cells = ev.filter((e) => e.type === 'cell');
    expect(cells.find((c) => c.variant === 'userspace')).toMatchObject({ status: 'ok', headline: { metric: 'tps' } });
    expect((cells.find((c) => c.variant === 'userspace')!.headline as { value: number }).value).toBeGreaterThan(0);
    expect(cells.find((c) => c.variant === 'kflex')).toMatchObject({
      status: 'skipped',
      reason: expect.stringMatching(/not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF/),
    });
    expect(ev.find((e) => e.type === 'testbed-down')).toMatchObject({ kind: 'hosts' });
    // BMC runs when the stand-ins' image carries it (built from --source bmc=), else it is skipped and says why.
    const bmc = cells.find((c) => c.variant === 'bmc')!;
    if (bmc.status !== 'ok') expect(bmc).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/\/opt\/bmc\/bmc is not in the image/) });
    const bmcOk = bmc.status === 'ok' ? 1 : 0;
    expect(ev.find((e) => e.type === 'run-done')).toMatchObject({ counts: { ok: 1 + bmcOk, failed: 0, skipped: 2 - bmcOk }, exitCode: 0 });

    const runDir = join(results, readdirSync(results).find((d) => /^\d{8}T\d{6}Z-smoke$/.test(d))!);
    const m = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
    expect(m.testbed).toMatchObject({
      testbed: 'hosts',
      server: { hostname: 'server', kernel: expect.stringMatching(/^7\.3\./), link: { interface: 'eth1', address: '10.77.0.1', driver: 'virtio_net' } },
      client: { hostname: 'client', link: { address: '10.77.0.2' } },
    });
    expect(m.testbed.down).toMatchObject({ xdp_detached: true, left_running: [] });
    expect(m.xdp_check).toMatchObject({ mode: 'driver', sent: 100, counted: 100 });
    const cmd = readFileSync(join(runDir, 'runs/memcache/userspace', readdirSync(join(runDir, 'runs/memcache/userspace'))[0]!, 'rep-1', 'client.cmd'), 'utf8');
    expect(cmd).toMatch(/^client\$ memcaslap -s 10\.77\.0\.1:6969 /);
    expect(existsSync(join(runDir, 'logs', 'server.facts.txt'))).toBe(true);

    // Checked from outside too: no server or client process, no XDP program on the link NIC.
    const ps = await onVm('server', ['sh', '-c', 'pgrep -x memcached; pgrep -x ffkx; true']);
    expect(ps.stdout.trim()).toBe('');
    expect((await onVm('client', ['sh', '-c', 'pgrep -x memcaslap; true'])).stdout.trim()).toBe('');
    expect(JSON.parse((await onVm('server', ['ip', '-j', 'link', 'show', 'dev', 'eth1'])).stdout)[0].xdp).toBeUndefined();
  });

  it('hosts from-manifest: a manifest of the VMs becomes a hosts.yaml that hosts check accepts, the link NIC found by its MAC', async () => {
    const manifest = join(FIXTURES, 'cloudlab', 'lab-vms.xml');
    const xml = readFileSync(manifest, 'utf8');
    // The fixture names the VMs' own link MACs: it fails here if vm/spec.ts changes them.
    for (const role of ['server', 'client'] as const) expect(xml).toContain(`mac_address="${MACS[role].link.replace(/:/g, '')}"`);
    const r = await lab(['hosts', 'from-manifest', manifest]);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(
      /server:\n {2}destination: server\n {2}user: root\n {2}sudo: false\n {2}link:\n {4}mac: 52:54:00:77:01:01\n {4}address: 10\.77\.0\.1\n/,
    );
    const converted = join(work, 'from-manifest.yaml');
    writeFileSync(converted, `ssh_config: ${join(vmDir, 'ssh_config')}\n${r.stdout}`);
    const c = await lab(['hosts', 'check', '--profile', 'smoke', '--testbed', converted, '--json']);
    expect(c.code, explain(c)).toBe(0);
    const j = JSON.parse(c.stdout) as CheckJson;
    expect([j.facts.server!.linkIf, j.facts.client!.linkIf]).toEqual(['eth1', 'eth1']);
    expect(j.link).toEqual({ serverIp: '10.77.0.1', clientIp: '10.77.0.2' });
    expect(j.xdp).toMatchObject({ mode: 'driver', sent: 100, counted: 100 });
  });

  describe("the lab stops only what it started: the user's memcached and redis-server survive", () => {
    const userPids: Record<string, string> = {};
    // The user's own servers, on ports of their own (not the lab's 6969), daemonized as a user would.
    // (redis-server prints its banner before it daemonizes: quiet both, then print the pids on one marked line.)
    const START_USER =
      'memcached -u root -p 11299 -U 0 -d -P /tmp/user-memcached.pid >/dev/null 2>&1 && ' +
      "redis-server --port 6399 --daemonize yes --pidfile /tmp/user-redis.pid --save '' --appendonly no >/dev/null 2>&1 && " +
      'for i in $(seq 1 100); do [ -s /tmp/user-redis.pid ] && [ -s /tmp/user-memcached.pid ] && break; sleep 0.1; done; ' +
      'echo "userpids $(cat /tmp/user-memcached.pid) $(cat /tmp/user-redis.pid)"';
    // A client that never ends, so the cell hangs past its bound (and a killed run has something to stop).
    const HANG = "printf '#!/bin/sh\\nexec sleep 100001\\n' > /usr/local/bin/memcaslap && chmod +x /usr/local/bin/memcaslap";
    const set = ['--set', 'experiments.memcache.warmup_s=0', '--set', 'experiments.memcache.variants=[userspace]'];
    /** The newest run directory (the bundle beside it, <run>.tar.gz, sorts after it). */
    const latestRun = () =>
      join(
        results,
        readdirSync(results)
          .filter((d) => /^\d{8}T\d{6}Z-smoke$/.test(d))
          .sort()
          .at(-1)!,
      );
    /** The user's two processes by their pids: their names, as /proc says them now. */
    const userAlive = async () => {
      const r = await onVm('server', [
        'sh',
        '-c',
        'for p in "$@"; do echo "comm $(cat /proc/$p/comm 2>/dev/null)"; done',
        'alive',
        userPids.memcached!,
        userPids.redis!,
      ]);
      return [...r.stdout.matchAll(/^comm (.*)$/gm)].map((m) => m[1]);
    };
    /** The cell's server (whatever listens on the lab's port) and the never-ending client; undefined when a VM did not answer. */
    const cellProcesses = async (): Promise<{ server: string; client: string } | undefined> => {
      const s = await onVm('server', ['sh', '-c', "echo mark; ss -Hltnp 'sport = :6969' | grep -o 'pid=[0-9]*' | sort -u; true"]);
      const c = await onVm('client', ['sh', '-c', "echo mark; pgrep -f '^sleep 100001$'; true"]);
      if (s.code !== 0 || c.code !== 0 || !/^mark$/m.test(s.stdout) || !/^mark$/m.test(c.stdout)) return undefined;
      const pick = (out: string, re: RegExp) =>
        out
          .split('\n')
          .filter((l) => re.test(l))
          .join(' ');
      return { server: pick(s.stdout, /^pid=\d+$/), client: pick(c.stdout, /^\d+$/) };
    };

    it('the user starts a memcached and a redis-server; the client gets a memcaslap that never ends', async () => {
      const r = await onVm('server', ['sh', '-c', START_USER]);
      expect(r.code, explain(r)).toBe(0);
      const m = r.stdout.match(/^userpids (\d+) (\d+)$/m);
      expect(m, explain(r)).not.toBeNull();
      Object.assign(userPids, { memcached: m![1], redis: m![2] });
      expect(await userAlive()).toEqual(['memcached', 'redis-server']);
      expect((await onVm('client', ['sh', '-c', HANG])).code).toBe(0);
    });

    it('a cell that overruns its bound is cancelled: its memcached and client are stopped, the user servers keep running', async () => {
      const events = join(work, 'overrun.jsonl');
      const r = await lab(['reproduce', '--profile', 'smoke', '--quick', '--only', 'memcache', ...set, '--testbed', hostsYaml, '--events', events], env);
      expect(r.code, explain(r)).toBe(1);
      const ev = readEvents(events);
      expect(ev.find((e) => e.type === 'warn' && /already running before the run \(left alone\): server: memcached/.test(String(e.message)))).toBeDefined();
      expect(ev.find((e) => e.type === 'cell' && e.variant === 'userspace')).toMatchObject({
        status: 'failed',
        reason: expect.stringMatching(/^exceeded its bound of \d+ s .*its processes were stopped/),
      });
      expect(await cellProcesses()).toEqual({ server: '', client: '' });
      expect(await userAlive()).toEqual(['memcached', 'redis-server']);
      const runDir = latestRun();
      const m = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
      expect(m.testbed.down).toMatchObject({ left_running: [], xdp_detached: true });
      // The ledger of the run is gone from both hosts once all it recorded is stopped.
      for (const role of ['server', 'client'] as const)
        expect((await onVm(role, ['sh', '-c', `test -e ${m.testbed.ledger} && echo left; true`])).stdout.trim()).toBe('');
    });

    it('a run killed with SIGKILL mid-cell: the hosts reaper stops what its cell started, and nothing else', async () => {
      const events = join(work, 'killed.jsonl');
      const bg = backgroundLab(['reproduce', '--profile', 'smoke', '--quick', '--only', 'memcache', ...set, '--testbed', hostsYaml, '--events', events], env);
      // Whatever fails below, the run does not go on into the next test (its reaper then cleans up after it).
      onTestFinished(() => void bg.child.kill('SIGKILL'));
      const started = await bg.waitFor(events, (e) => e.type === 'cell-start', 10 * 60_000);
      expect(started, bg.output().slice(-3000)).toBeDefined();
      let running: { server: string; client: string } | undefined;
      for (const end = Date.now() + 180_000; Date.now() < end && !(running?.server && running.client); ) {
        running = (await cellProcesses()) ?? running;
        await new Promise((res) => setTimeout(res, 1000));
      }
      if (!running) throw new Error('the VMs did not answer');
      expect(running.server, bg.output().slice(-3000)).toMatch(/^pid=\d+$/);
      expect(running.client).toMatch(/^\d+$/);
      bg.child.kill('SIGKILL');
      await bg.exited;
      let left = running;
      for (const end = Date.now() + 120_000; Date.now() < end && (left.server || left.client); ) {
        await new Promise((res) => setTimeout(res, 1000));
        left = (await cellProcesses()) ?? left;
      }
      expect(left).toEqual({ server: '', client: '' });
      expect(await userAlive()).toEqual(['memcached', 'redis-server']);
      const runDir = latestRun();
      const log = readFileSync(join(cache, 'vms', runDir.split('/').at(-1)!, 'hosts-reaper.log'), 'utf8');
      expect(log).toMatch(/lab gone before its teardown/);
      expect(log).toMatch(/server: stopped memcached \d+; survived 0/);
      expect(log).toMatch(/client: stopped memcaslap \d+; survived 0/);
    });

    it('the user servers are still the same processes; the never-ending client goes', async () => {
      expect(await userAlive()).toEqual(['memcached', 'redis-server']);
      await onVm('server', ['sh', '-c', `kill ${userPids.memcached} ${userPids.redis}`]);
      expect((await onVm('client', ['rm', '-f', '/usr/local/bin/memcaslap'])).code).toBe(0);
    });
  });

  it('prepare --undo removes what prepare installed, and only that', async () => {
    const list = await lab(['hosts', 'prepare', '--profile', 'smoke', '--testbed', hostsYaml, '--list', '--json']);
    expect(list.code, explain(list)).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ role: string; entries: unknown[] }>).map((r) => [r.role, r.entries.length])).toEqual([
      ['server', 0],
      ['client', 1],
    ]);
    const r = await lab(['hosts', 'prepare', '--profile', 'smoke', '--testbed', hostsYaml, '--undo', '--json']);
    expect(r.code, explain(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { host: 'server', stopped: [], removed: [], failed: [] },
      { host: 'client', stopped: [], removed: ['redis-tools'], failed: [] },
    ]);
    expect((await onVm('client', ['sh', '-c', 'command -v redis-benchmark'])).code).not.toBe(0);
    expect((await onVm('server', ['sh', '-c', 'command -v memcached'])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(cache, 'hosts', `${VM}-client`, 'installed.json'), 'utf8')).entries).toEqual([]);
  });

  it('down leaves no VM behind', async () => {
    const d = await lab(['down', '--profile', 'smoke', '--vm', VM]);
    expect(d.code, explain(d)).toBe(0);
    expect(existsSync(join(vmDir, 'state.json'))).toBe(false);
  });
});
