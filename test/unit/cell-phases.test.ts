import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { freePort } from '../../vm/state.js';
import type { Host, HostExecOptions } from '../../core/host.js';
import { run } from '../../core/exec.js';
import { phaseClock } from '../../experiments/cells.js';
import { GuestServer, parseStartOutput } from '../../experiments/server.js';
import { tempDir } from '../helpers.js';

/** This machine as a Host: the start and stop scripts are plain sh, so they run here as in a guest. */
const local: Host = {
  name: 'local',
  exec: (argv: readonly string[], o: HostExecOptions = {}) => run(argv, { allowFailure: o.allowFailure, timeoutMs: o.timeoutMs, input: o.input }),
  copyIn: async () => undefined,
  copyOut: async () => undefined,
};

describe('cell phases', () => {
  it('turns marks into seconds per phase; fixed cost is all but warm-up and measurement', () => {
    const c = phaseClock(1000);
    c.mark('server-start', 1000);
    c.mark('ready', 1500);
    c.mark('warm-up', 2000);
    c.mark('measurement', 7000);
    c.mark('reset', 17000);
    c.mark('collection', 17400);
    const s = c.seconds(18000);
    expect(s.phases).toEqual({ 'server-start': 0.5, ready: 0.5, 'warm-up': 5, measurement: 10, reset: 0.4, collection: 0.6 });
    expect(Object.keys(s.phases)).toEqual(['server-start', 'ready', 'warm-up', 'measurement', 'reset', 'collection']);
    expect(s.fixed_seconds).toBe(2);
  });

  it('a mark placed after the fact never goes back before the previous one; a phase entered twice adds up', () => {
    const c = phaseClock(0);
    c.mark('server-start', 0);
    c.mark('ready', -5000);
    c.mark('measurement', 1000);
    c.mark('collection', 2000);
    c.mark('measurement', 2500);
    expect(c.seconds(3000).phases).toEqual({ 'server-start': 0, ready: 1, measurement: 1.5, collection: 0.5 });
  });
});

describe('GuestServer: launch and readiness in one round trip, stop and log in another', () => {
  it('waits for the ready text, reports the wait by the guest clock, and returns the log on stop', async () => {
    const d = tempDir();
    const s = new GuestServer(local, 'fake', ['sh', '-c', 'echo starting; sleep 0.3; echo "Memcache ready!"; exec sleep 30'], join(d, 'fake.log'));
    const { readySeconds } = await s.start({ text: 'Memcache ready!' }, 10_000);
    expect(readySeconds).toBeGreaterThanOrEqual(0.2);
    expect(readySeconds).toBeLessThan(5);
    expect(await s.stop()).toBe('starting\nMemcache ready!\n');
  });

  it('fails with the log when the server exits before it is ready, and when it is not ready in time', async () => {
    const d = tempDir();
    const dies = new GuestServer(local, 'dies', ['sh', '-c', 'echo "bind: Address already in use"; exit 71'], join(d, 'dies.log'));
    await expect(dies.start({ text: 'ready!' }, 10_000)).rejects.toThrow(/dies exited before it was ready:\n {2}\| bind: Address already in use/);
    const slow = new GuestServer(local, 'slow', ['sleep', '30'], join(d, 'slow.log'));
    await expect(slow.start({ text: 'ready!' }, 1000)).rejects.toThrow(/slow not ready within 1 s \(waiting for 'ready!' in its log\)/);
  });

  it('is ready on a TCP port only when its own process listens there, not a server someone left on it', async () => {
    const d = tempDir();
    const port = await freePort();
    const listen = `require('net').createServer().listen(${port}, '127.0.0.1')`;
    const other = spawn(process.execPath, ['-e', listen], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const squatter = new GuestServer(local, 'late', ['sleep', '30'], join(d, 'late.log'));
      await expect(squatter.start({ tcpPort: port }, 1000)).rejects.toThrow(/late not ready within 1 s \(port \d+\)/);
    } finally {
      other.kill('SIGKILL');
    }
    await new Promise((r) => setTimeout(r, 300));
    const own = new GuestServer(local, 'own', [process.execPath, '-e', listen], join(d, 'own.log'));
    await own.start({ tcpPort: port }, 10_000);
    await own.stop();
  });

  it('parses what the start script prints', () => {
    expect(parseStartOutput('launched 12.34 4242\nready 13.01\n')).toEqual({ pid: 4242, launched: 12.34, outcome: 'ready', at: 13.01 });
    expect(parseStartOutput('')).toEqual({ pid: undefined, launched: undefined, outcome: undefined, at: undefined });
  });
});
