import { describe, it, expect, afterAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { lab, spawnLab, explain, readEvents } from './cli.js';
import { tempDir } from '../helpers.js';
import { loadConfig } from '../../core/config.js';
import { qemuPid } from '../../vm/state.js';
import { pidAlive } from '../../core/stage.js';

// Real QEMU guests booted from the smoke kernel and image (built by 1-stages), driven over real OpenSSH.
const cache = loadConfig({ profile: 'smoke' }).cacheRoot;
const vmsOf = (name: string) => join(cache, 'vms', name);
const qemuPids = (name: string): number[] => {
  try {
    return execFileSync('pgrep', ['-f', `^qemu-system-x86_64 .*${vmsOf(name)}/`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};
const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
/** The two QEMUs of a set, by their pid files (pgrep would also match wrappers that carry the same paths). */
const vmPids = (name: string): number[] => (['server', 'client'] as const).map((r) => qemuPid(join(vmsOf(name), `${r}.pid`))).filter((p): p is number => !!p);
async function waitForBoth(name: string): Promise<number[]> {
  const t0 = Date.now();
  while (Date.now() - t0 < 120_000 && vmPids(name).length < 2) await new Promise((r) => setTimeout(r, 250));
  return vmPids(name);
}
// A killed QEMU can stay a zombie until init reaps it: that is not a running guest.
const alive = (pid: number) => pidAlive(pid);

afterAll(async () => {
  for (const n of ['e2e', 'e2e-kill', 'e2e-int', 'e2e-a', 'e2e-b']) await lab(['down', '--profile', 'smoke', '--vm', n]);
});

describe('server and client VMs', () => {
  it('up boots both, the link pings both ways, native XDP counts exactly what the client sent, down leaves nothing', async () => {
    const events = join(tempDir(), 'events.jsonl');
    const up = await lab(['up', '--profile', 'smoke', '--vm', 'e2e', '--events', events]);
    expect(up.code, explain(up)).toBe(0);
    const ev = readEvents(events);
    // The testbed comes up only when the probe counted exactly what the client sent, in driver mode.
    expect(
      ev.find((e) => e.type === 'testbed-up'),
      explain(up),
    ).toMatchObject({ kind: 'vm', nativeXdp: true });
    const accel = ev.find((e) => e.type === 'accel');
    expect(accel?.accel).toMatch(/^(kvm|tcg)$/);
    const state0 = JSON.parse(readFileSync(join(vmsOf('e2e'), 'state.json'), 'utf8'));
    expect(state0.accel).toBe(accel!.accel);

    const host = await lab(['exec', 'server', '--profile', 'smoke', '--vm', 'e2e', '--', 'hostname']);
    expect(host.stdout.trim()).toBe('server');
    expect((await lab(['exec', 'client', '--profile', 'smoke', '--vm', 'e2e', '--', 'hostname'])).stdout.trim()).toBe('client');
    const link = await lab(['exec', 'server', '--profile', 'smoke', '--vm', 'e2e', '--', 'ip', '-d', 'link', 'show', 'eth1']);
    expect(link.stdout).toMatch(/eth1: .*UP/);
    expect(link.stdout).toMatch(/parentbus virtio/);
    for (const [from, to] of [
      ['client', '10.77.0.1'],
      ['server', '10.77.0.2'],
    ]) {
      const ping = await lab(['exec', from!, '--profile', 'smoke', '--vm', 'e2e', '--', 'ping', '-c', '3', '-W', '5', to!]);
      expect(ping.code, explain(ping)).toBe(0);
      expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
    }
    const cg = await lab(['exec', 'server', '--profile', 'smoke', '--vm', 'e2e', '--', 'stat', '-f', '-c', '%T', '/sys/fs/cgroup']);
    expect(cg.stdout.trim()).toBe('cgroup2fs');
    const status = await lab(['status', '--profile', 'smoke', '--vm', 'e2e']);
    expect(status.stdout).toMatch(/ready, owner up/);
    const state = JSON.parse(readFileSync(join(vmsOf('e2e'), 'state.json'), 'utf8'));

    const down = await lab(['down', '--profile', 'smoke', '--vm', 'e2e']);
    expect(down.code, explain(down)).toBe(0);
    expect(qemuPids('e2e')).toEqual([]);
    if (state.link.netns) expect(netnsList()).not.toContain(state.link.netns);
    expect(existsSync(join(vmsOf('e2e'), 'server.qcow2'))).toBe(false);
    expect(existsSync(join(vmsOf('e2e'), 'server.serial.log'))).toBe(true);
  });

  it('a lab killed with SIGKILL during boot leaves a stale set that the next command cleans: no QEMU, no namespace', async () => {
    const child = spawnLab(['up', '--profile', 'smoke', '--vm', 'e2e-kill']);
    const stateFile = join(vmsOf('e2e-kill'), 'state.json');
    const pids = await waitForBoth('e2e-kill');
    expect(pids).toHaveLength(2);
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    expect(state.phase).toBe('booting');
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(pids.filter(alive)).toEqual(pids); // the guests outlive the lab...
    const status = await lab(['status', '--profile', 'smoke', '--vm', 'e2e-kill']);
    expect(status.stderr).toMatch(/cleaned a stale VM set \(its lab process is gone\): .*e2e-kill/);
    expect(pids.filter(alive)).toEqual([]); // ...until the next command
    expect(qemuPids('e2e-kill')).toEqual([]);
    if (state.link.netns) expect(netnsList()).not.toContain(state.link.netns);
    expect(existsSync(stateFile)).toBe(false);
  });

  it('SIGINT to a lab while it boots stops both QEMUs and removes the set, then exits 130', async () => {
    const child = spawnLab(['up', '--profile', 'smoke', '--vm', 'e2e-int']);
    const pids = await waitForBoth('e2e-int');
    expect(pids).toHaveLength(2);
    const state = JSON.parse(readFileSync(join(vmsOf('e2e-int'), 'state.json'), 'utf8'));
    const code = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.kill('SIGINT');
    expect(await code).toBe(130);
    expect(pids.filter(alive)).toEqual([]);
    expect(qemuPids('e2e-int')).toEqual([]);
    if (state.link.netns) expect(netnsList()).not.toContain(state.link.netns);
    expect(existsSync(join(vmsOf('e2e-int'), 'state.json'))).toBe(false);
  });

  it('two labs with different VM sets at once do not collide (ports, taps, namespaces)', async () => {
    const [a, b] = await Promise.all([lab(['up', '--profile', 'smoke', '--vm', 'e2e-a']), lab(['up', '--profile', 'smoke', '--vm', 'e2e-b'])]);
    expect(a.code, explain(a)).toBe(0);
    expect(b.code, explain(b)).toBe(0);
    const sa = JSON.parse(readFileSync(join(vmsOf('e2e-a'), 'state.json'), 'utf8'));
    const sb = JSON.parse(readFileSync(join(vmsOf('e2e-b'), 'state.json'), 'utf8'));
    expect(new Set([sa.vms.server.sshPort, sa.vms.client.sshPort, sb.vms.server.sshPort, sb.vms.client.sshPort]).size).toBe(4);
    if (sa.link.netns) expect(sa.link.netns).not.toBe(sb.link.netns);
    for (const set of ['e2e-a', 'e2e-b']) {
      const r = await lab(['exec', 'client', '--profile', 'smoke', '--vm', set, '--', 'ping', '-c', '1', '-W', '5', '10.77.0.1']);
      expect(r.code, explain(r)).toBe(0);
    }
    for (const set of ['e2e-a', 'e2e-b']) expect((await lab(['down', '--profile', 'smoke', '--vm', set])).code).toBe(0);
    expect([...qemuPids('e2e-a'), ...qemuPids('e2e-b')]).toEqual([]);
  });
});
