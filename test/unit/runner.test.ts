import { testCaps } from './support/caps.js';
import { KFLEX_KERNEL } from '../../experiments/requirements.js';
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCells } from '../../experiments/runner.js';
import { planCells } from '../../experiments/cells.js';
import { writeSummary } from '../../experiments/summary.js';
import { EventBus, type LabEvent } from '../../core/events.js';
import type { Host } from '../../core/host.js';
import type { Experiment, Capabilities } from '../../experiments/types.js';
import { loadConfig } from '../../core/config.js';
import { tempDir } from '../helpers.js';

// A stub Host (unit tests may stub a process): answers the runner's own dmesg calls.
const stubHost = (name: string): Host => ({
  name,
  exec: async (argv) => ({ code: 0, stdout: argv.join(' ').includes('wc -l') ? '10\n' : '[  1.0] kernel line\n', stderr: '' }),
  copyIn: async () => {},
  copyOut: async () => {},
});
const caps: Capabilities = testCaps({ kernelRelease: '6.1', la57: false });

describe('cell runner', () => {
  it('keeps going after a failed cell, records everything, and --resume reruns only failed and missing cells', async () => {
    let calls = 0;
    let failNext = true;
    const exp: Experiment = {
      id: 'memcache',
      title: 't',
      claims: [],
      headline: 'tps',
      chart: 'variants',
      grid: {},
      parsers: {},
      variants: [
        { id: 'kflex', description: '', requires: [KFLEX_KERNEL] },
        { id: 'userspace', description: '', requires: [] },
      ],
      estimateCellSeconds: () => 1,
      async runCell(ctx) {
        calls++;
        await ctx.exec(ctx.client, 'client', ['memcaslap', '-s', `${ctx.serverIp}:6969`]);
        if (failNext && ctx.rep === 1) {
          failNext = false;
          throw new Error('client timed out');
        }
        return { metrics: { tps: 100 * ctx.rep }, files: { 'server.log': 'ok' } };
      },
    };
    const profile = loadConfig({ profile: 'smoke', env: {}, set: ['experiments.memcache.variants=[kflex,userspace]'] }).profile;
    const cells = planCells(profile, { only: ['memcache'] }, [exp]);
    expect(cells).toHaveLength(4);
    const runDir = tempDir();
    const env = { runDir, server: stubHost('server'), client: stubHost('client'), serverIp: '10.77.0.1', linkIf: 'eth1', caps, bus: new EventBus() };
    const { records: first } = await runCells(cells, env);
    expect(first.map((r) => `${r.variant}/${r.rep}:${r.status}`)).toEqual(['kflex/1:skipped', 'kflex/2:skipped', 'userspace/1:failed', 'userspace/2:ok']);
    expect(first[2]!.reason).toBe('client timed out');
    const failedDir = join(runDir, cells[2]!.path);
    for (const f of ['client.cmd', 'client.stdout', 'kernel.log', 'status.json']) expect(existsSync(join(failedDir, f)), f).toBe(true);
    expect(readFileSync(join(failedDir, 'client.cmd'), 'utf8')).toBe('client$ memcaslap -s 10.77.0.1:6969\n');
    expect(calls).toBe(2);

    const { records: again } = await runCells(cells, { ...env, resume: true });
    expect(calls).toBe(3); // only the failed cell ran again
    expect(again.map((r) => r.status)).toEqual(['skipped', 'skipped', 'ok', 'ok']);
    const rows = await writeSummary(runDir, again);
    expect(rows.find((r) => r.variant === 'userspace' && r.metric === 'tps')).toMatchObject({ median: 150, n_ok: 2 });
    for (const f of ['summary.json', 'summary.csv', 'cells.json']) expect(existsSync(join(runDir, f))).toBe(true);
  });

  it('a testbed lost during a cell fails that cell with the reason, skips the rest for --resume, and resume runs them', async () => {
    let alive = true;
    let calls = 0;
    const exp: Experiment = {
      id: 'memcache',
      title: 't',
      claims: [],
      headline: 'tps',
      chart: 'variants',
      grid: {},
      parsers: {},
      variants: [
        { id: 'kflex', description: '', requires: [KFLEX_KERNEL] },
        { id: 'userspace', description: '', requires: [] },
      ],
      estimateCellSeconds: () => 1,
      async runCell() {
        calls++;
        if (calls === 2) {
          alive = false;
          // The client hangs on a dead machine: only the health watch can end this cell.
          await new Promise(() => {});
        }
        return { metrics: { tps: 1 } };
      },
    };
    const profile = loadConfig({ profile: 'smoke', env: {}, set: ['experiments.memcache.variants=[kflex,userspace]'] }).profile;
    const userspace = planCells(profile, { only: ['memcache'] }, [exp]).filter((c) => c.variant.id === 'userspace');
    const cells = [...userspace, { ...userspace[0]!, rep: 3, path: userspace[0]!.path.replace('rep-1', 'rep-3') }];
    expect(cells).toHaveLength(3);
    const runDir = tempDir();
    const bus = new EventBus();
    const events: LabEvent[] = [];
    bus.on((e) => events.push(e));
    const env = {
      runDir,
      server: stubHost('server'),
      client: stubHost('client'),
      serverIp: '10.77.0.1',
      linkIf: 'eth1',
      caps,
      bus,
      health: async () => (alive ? undefined : "the server VM's QEMU is gone"),
      healthIntervalMs: 20,
    };
    const { records, lost } = await runCells(cells, env);
    expect(lost).toBe("the server VM's QEMU is gone");
    expect(records.map((r) => r.status)).toEqual(['ok', 'failed', 'skipped']);
    expect(records[1]!.reason).toMatch(/^testbed lost during this cell: the server VM's QEMU is gone/);
    expect(records[2]!.reason).toMatch(/^not run: the testbed was lost/);
    expect(records[2]!.rerun).toBe(true);
    expect(events.some((e) => e.type === 'testbed-lost')).toBe(true);
    alive = true;
    const again = await runCells(cells, { ...env, resume: true });
    expect(again.records.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
    expect(calls).toBe(4); // cell 2 and cell 3 ran again, cell 1 was kept
  });
});

describe('resume asks what the run asked', () => {
  it('names the difference and gives the exact command that finishes the run', async () => {
    const { runRequest, resumeMismatch, resumeCommand } = await import('../../lab/run.js');
    const smoke = loadConfig({ profile: 'smoke', env: {}, set: ['vms.client.memory_mb=2048'] });
    const recorded = runRequest(smoke, { quick: true, only: ['redis-zadd', 'memcache'] });
    expect(resumeCommand(recorded, '/r/20261127T000000Z-smoke')).toBe(
      'kflex-lab reproduce --profile smoke --quick --only memcache redis-zadd --set vms.client.memory_mb=2048 --resume /r/20261127T000000Z-smoke',
    );
    const paper = loadConfig({ profile: 'paper', env: {} });
    expect(resumeMismatch(recorded, runRequest(paper, {}))).toBe(
      'profile smoke (now paper), --quick (now without), --only memcache redis-zadd (now all), overrides --set vms.client.memory_mb=2048 (now none)',
    );
    expect(resumeMismatch(recorded, runRequest(smoke, { quick: true, only: ['memcache', 'redis-zadd'] }))).toBeUndefined();
  });
});
