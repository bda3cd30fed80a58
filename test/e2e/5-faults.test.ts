import { describe, it, expect, afterAll } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { lab, explain, readEvents, backgroundLab } from './cli.js';
import { loadConfig } from '../../core/config.js';
import { qemuPid } from '../../vm/state.js';
import { tempDir } from '../helpers.js';

// Fault drills on real VMs: a guest that dies mid-run, a lab killed with SIGKILL. Nothing may be left behind.
const cache = loadConfig({ profile: 'smoke' }).cacheRoot;
const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const qemusUnder = (dir: string): string[] => {
  try {
    return execFileSync('pgrep', ['-af', '^qemu-system-x86_64 '], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(`${dir}/`));
  } catch {
    return [];
  }
};
const runDirOf = (results: string) => join(results, readdirSync(results).find((d) => /^\d{8}T\d{6}Z-smoke$/.test(d))!);

afterAll(async () => {
  await lab(['clean', '--profile', 'smoke']);
});

describe('fault drills', () => {
  const QEMU_KILLED =
    "the server's QEMU killed during a cell: that cell fails with the reason, the rest are not run, summary, report and bundle are still written, exit 1";
  it(QEMU_KILLED, async () => {
    const results = tempDir('kflex-results-');
    const events = join(tempDir(), 'events.jsonl');
    const bg = backgroundLab(['reproduce', '--profile', 'smoke', '--quick', '--only', 'memcache', 'redis-zadd', '--events', events], {
      KFLEX_LAB_RESULTS: results,
    });
    const start = await bg.waitFor(events, (e) => e.type === 'cell-start' && e.variant === 'userspace', 15 * 60_000);
    expect(start, bg.output().slice(-3000)).toBeDefined();
    const runDir = runDirOf(results);
    const vms = join(cache, 'vms', runDir.split('/').at(-1)!);
    const state = JSON.parse(readFileSync(join(vms, 'state.json'), 'utf8'));
    const pid = qemuPid(state.vms.server.pidfile)!;
    expect(pid).toBeGreaterThan(0);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const code = await bg.exited;
    expect(code, bg.output().slice(-3000)).toBe(1);
    const ev = readEvents(events);
    const failed = ev.find((e) => e.type === 'cell' && e.status === 'failed');
    expect(failed, JSON.stringify(ev.filter((e) => e.type === 'cell'))).toBeDefined();
    expect(String(failed!.reason)).toMatch(/testbed lost during this cell: the server VM's QEMU is gone/);
    // Noticed within seconds, not after an SSH keep-alive timeout.
    expect(Date.parse(failed!.t) - killedAt).toBeLessThan(20_000);
    const lost = ev.find((e) => e.type === 'testbed-lost');
    expect(String(lost?.why)).toMatch(/last serial lines/);
    const after = ev.filter((e) => e.type === 'cell' && (e.index as number) > (failed!.index as number));
    expect(after.length).toBeGreaterThan(0);
    for (const c of after) {
      expect(c.status).toBe('skipped');
      expect(String(c.reason)).toMatch(/^not run: the testbed was lost/);
    }
    const done = ev.find((e) => e.type === 'run-done');
    expect(done).toMatchObject({ exitCode: 1 });
    for (const f of ['summary.json', 'cells.json', 'report.html', 'report.md']) expect(existsSync(join(runDir, f)), f).toBe(true);
    expect(existsSync(`${runDir}.tar.gz`)).toBe(true);
    expect(qemusUnder(vms)).toEqual([]);
    if (state.link.netns) expect(netnsList()).not.toContain(state.link.netns);

    // --resume runs only what the lost testbed could not: the failed cell and the ones after it.
    const resumed = join(tempDir(), 'resume.jsonl');
    const r = await lab(['reproduce', '--profile', 'smoke', '--quick', '--only', 'memcache', 'redis-zadd', '--resume', runDir, '--events', resumed], {
      KFLEX_LAB_RESULTS: results,
    });
    expect(r.code, explain(r)).toBe(0);
    const cells = readEvents(resumed).filter((e) => e.type === 'cell');
    expect(cells.filter((e) => e.status === 'kept').length).toBe(ev.filter((e) => e.type === 'cell' && (e.index as number) < (failed!.index as number)).length);
    expect(cells.filter((e) => e.status === 'failed')).toEqual([]);
  });

  it('a reproduce killed with SIGKILL leaves no QEMU, namespace or tap behind, without another lab command', async () => {
    const results = tempDir('kflex-results-');
    const events = join(tempDir(), 'events.jsonl');
    const bg = backgroundLab(['reproduce', '--profile', 'smoke', '--quick', '--only', 'memcache', '--events', events], { KFLEX_LAB_RESULTS: results });
    const up = await bg.waitFor(events, (e) => e.type === 'testbed-up', 15 * 60_000);
    expect(up, bg.output().slice(-3000)).toBeDefined();
    const runDir = runDirOf(results);
    const vms = join(cache, 'vms', runDir.split('/').at(-1)!);
    const state = JSON.parse(readFileSync(join(vms, 'state.json'), 'utf8'));
    expect(qemusUnder(vms).length).toBe(2);
    bg.child.kill('SIGKILL');
    await bg.exited;
    const t0 = Date.now();
    while (Date.now() - t0 < 30_000 && (qemusUnder(vms).length || (state.link.netns && netnsList().includes(state.link.netns))))
      await new Promise((r) => setTimeout(r, 250));
    expect(qemusUnder(vms)).toEqual([]);
    if (state.link.netns) expect(netnsList()).not.toContain(state.link.netns);
    expect(existsSync(join(vms, 'state.json'))).toBe(false);
  });

  // BMC comes from GitHub, which CI cannot reach: opt in with KFLEX_BMC_SRC (a checkout of rs3lab/bmc-cache @1fb8f96).
  // The fork as published (image.bmc=artifact, no lab patch) is what upstream's verifier refuses on Linux 7.3.
  const BMC_SRC = process.env.KFLEX_BMC_SRC;
  const BMC_REFUSED = "a BMC the verifier refuses (the unpatched fork on 7.3) fails its cell with the verifier's last lines, and leaves nothing attached";
  if (!BMC_SRC) console.warn(`skipped: '${BMC_REFUSED}' needs KFLEX_BMC_SRC (a checkout of rs3lab/bmc-cache @1fb8f96; GitHub is not reachable here)`);
  it.skipIf(!BMC_SRC)(BMC_REFUSED, async () => {
    const results = tempDir('kflex-results-');
    const events = join(tempDir(), 'events.jsonl');
    const args = ['reproduce', '--profile', 'smoke', '--quick', '--only', 'memcache', '--set', 'image.bmc=artifact', '--source', `bmc=${BMC_SRC}`];
    const r = await lab([...args, '--events', events], { KFLEX_LAB_RESULTS: results });
    expect(r.code, explain(r)).toBe(1);
    const cells = readEvents(events).filter((e) => e.type === 'cell');
    const bmc = cells.find((e) => e.variant === 'bmc')!;
    expect(bmc.status, JSON.stringify(bmc)).toBe('failed');
    expect(String(bmc.reason)).toMatch(
      /BMC did not load: the verifier refused it\. bmc_write_reply_main: function calls are not allowed while holding a lock\n/,
    );
    // upstream's verifier: bmc_write_reply_main calls bpf_dynptr_slice_rdwr under bpf_spin_lock.
    expect(String(bmc.reason)).toMatch(/function calls are not allowed while holding a lock/);
    expect(cells.find((e) => e.variant === 'userspace')?.status).toBe('ok');
    const dir = join(runDirOf(results), 'runs/memcache/bmc');
    const rep = join(dir, readdirSync(dir)[0]!, 'rep-1');
    expect(readFileSync(join(rep, 'bmc.log'), 'utf8')).toMatch(/holding a lock/);
    expect(readFileSync(join(rep, 'bmc-detach.stdout'), 'utf8')).not.toMatch(/^(xdp|egress) \S/m);
  });
});
