import { describe, it, expect, afterEach } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host, HostExecOptions } from '../../core/host.js';
import { run } from '../../core/exec.js';
import { guardArgv, ledgerPath, parseGuard, stopTracked, trackedArgv, TrackedHost, TRACK_SCRIPT, tagOf } from '../../core/processes.js';
import { GuestServer, clientConnections, resetHosts, serverNofile } from '../../experiments/server.js';
import { memcaslapArgv } from '../../experiments/memcache.js';
import { tempDir } from '../helpers.js';

/** This machine as a Host: the scripts are plain sh, so they run here as on a guest or a user's host. */
const local: Host = {
  name: 'local',
  exec: (argv: readonly string[], o: HostExecOptions = {}) => run(argv, { allowFailure: o.allowFailure, timeoutMs: o.timeoutMs, input: o.input }),
  copyIn: async () => undefined,
  copyOut: async () => undefined,
};

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.pid) execFileSync('sh', ['-c', `kill -9 ${c.pid} 2>/dev/null; true`]);
});

/** A process of this machine; `argv` through sh when it should be recorded first. */
function start(argv: string[]): ChildProcess {
  const c = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  children.push(c);
  return c;
}

/** Running and not a zombie (a child this test has not reaped yet still has a /proc entry). */
function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}

const until = async (ok: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; Date.now() < end && !ok(); ) await new Promise((r) => setTimeout(r, 50));
  return ok();
};

const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const starttimeOf = (pid: number) =>
  Number(
    readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .split(' ')[19],
  );

describe('pure builders', () => {
  it('wrap a command so it records itself, and the guard over ledgers', () => {
    expect(trackedArgv('/var/tmp/kflex-lab/r.pids', ['/usr/bin/memcached', '-p', '6969'])).toEqual([
      'sh',
      '-c',
      TRACK_SCRIPT,
      'track',
      '/var/tmp/kflex-lab/r.pids',
      'memcached',
      '/usr/bin/memcached',
      '-p',
      '6969',
    ]);
    expect(guardArgv(['/a.pids', '/b.pids'], 3).slice(3)).toEqual(['guard', '3', '/a.pids', '/b.pids']);
    expect(ledgerPath('20260101T000000Z-smoke/x y')).toBe('/var/tmp/kflex-lab/20260101T000000Z-smoke_x_y.pids');
    expect(tagOf(['sh', '-c', 'x'])).toBe('sh');
    expect(parseGuard('stopped 12 memcached\nkilled 13 ffkx\nsurvived 14 x\ngone 15 y\nreused 16 sleep\nother-boot 17 z\nnoise\n')).toEqual({
      stopped: [
        { pid: 12, tag: 'memcached', signal: 'TERM' },
        { pid: 13, tag: 'ffkx', signal: 'KILL' },
      ],
      survived: [{ pid: 14, tag: 'x' }],
      gone: 1,
      reused: [
        { pid: 16, tag: 'sleep' },
        { pid: 17, tag: 'z' },
      ],
    });
  });
});

describe('the guard, run for real against processes of this machine', () => {
  it('stops the recorded sleep and leaves a sleep of the same name that it did not start', async () => {
    const ledger = join(tempDir(), 'ledger', 'run.pids');
    const ours = start(trackedArgv(ledger, ['sleep', '1000']));
    const theirs = start(['sleep', '1000']);
    expect(await until(() => existsSync(ledger) && readFileSync(ledger, 'utf8').includes(`${ours.pid} `))).toBe(true);
    // The record is the process itself (the shell exec'ed sleep): same PID, its start time, this boot.
    expect(readFileSync(ledger, 'utf8')).toBe(`${ours.pid} ${starttimeOf(ours.pid!)} ${bootId()} sleep\n`);
    expect(readFileSync(`/proc/${ours.pid}/comm`, 'utf8').trim()).toBe('sleep');

    const out = execFileSync(guardArgv([ledger], 2)[0]!, guardArgv([ledger], 2).slice(1), { encoding: 'utf8' });
    expect(parseGuard(out)).toEqual({ stopped: [{ pid: ours.pid, tag: 'sleep', signal: 'TERM' }], survived: [], gone: 0, reused: [] });
    expect(await until(() => !runs(ours.pid!))).toBe(true);
    expect(runs(theirs.pid!)).toBe(true);
    // Everything it recorded is stopped: the ledger is gone.
    expect(existsSync(ledger)).toBe(false);
  });

  it('leaves a PID that now belongs to another process, or to another boot; SIGKILLs what ignores SIGTERM', async () => {
    const ledger = join(tempDir(), 'run.pids');
    const user = start(['sleep', '1000']);
    const stubborn = start(trackedArgv(ledger, ['sh', '-c', 'trap "" TERM; while :; do sleep 0.1; done'], 'stubborn'));
    expect(await until(() => existsSync(ledger) && readFileSync(ledger, 'utf8').includes(`${stubborn.pid} `))).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    // As if the lab had recorded the user's PID for one of its own processes, long gone: same PID, other start time.
    writeFileSync(
      ledger,
      `${user.pid} ${starttimeOf(user.pid!) - 1} ${bootId()} memcached\n` +
        `${user.pid} ${starttimeOf(user.pid!)} 00000000-0000-0000-0000-000000000000 memcached\n` +
        `4194303 12345 ${bootId()} redis-server\n`,
      { flag: 'a' },
    );
    const g = parseGuard(execFileSync(guardArgv([ledger], 1)[0]!, guardArgv([ledger], 1).slice(1), { encoding: 'utf8' }));
    expect(g).toEqual({
      stopped: [{ pid: stubborn.pid, tag: 'stubborn', signal: 'KILL' }],
      survived: [],
      gone: 1,
      reused: [
        { pid: user.pid, tag: 'memcached' },
        { pid: user.pid, tag: 'memcached' },
      ],
    });
    expect(runs(user.pid!)).toBe(true);
    expect(await until(() => !runs(stubborn.pid!))).toBe(true);
  });

  it('reads the start time right when the command name has ") " in it', async () => {
    const d = tempDir();
    symlinkSync(execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim(), join(d, 'a) b'));
    const ledger = join(d, 'run.pids');
    const odd = start(trackedArgv(ledger, [join(d, 'a) b'), '1000'], 'odd'));
    expect(await until(() => existsSync(ledger) && readFileSync(ledger, 'utf8').includes(`${odd.pid} `))).toBe(true);
    expect(readFileSync(`/proc/${odd.pid}/comm`, 'utf8').trim()).toBe('a) b');
    expect(readFileSync(ledger, 'utf8').split(' ')[1]).toBe(String(starttimeOf(odd.pid!)));
    expect(parseGuard(execFileSync(guardArgv([ledger], 2)[0]!, guardArgv([ledger], 2).slice(1), { encoding: 'utf8' })).stopped).toEqual([
      { pid: odd.pid, tag: 'odd', signal: 'TERM' },
    ]);
  });

  it('a command that cannot be recorded is not run', () => {
    const d = tempDir();
    writeFileSync(join(d, 'file'), '');
    const marker = join(d, 'ran');
    const r = (() => {
      try {
        execFileSync(
          trackedArgv(join(d, 'file', 'ledger.pids'), ['touch', marker])[0]!,
          trackedArgv(join(d, 'file', 'ledger.pids'), ['touch', marker]).slice(1),
          {
            stdio: 'pipe',
          },
        );
        return 0;
      } catch (e) {
        return (e as { status: number }).status;
      }
    })();
    expect(r).toBe(125);
    expect(existsSync(marker)).toBe(false);
  });
});

describe("a cell's servers and clients on a tracked host", () => {
  it('a cell past its bound: resetHosts stops the server and client the cell started, not the same programs of the user', async () => {
    const d = tempDir();
    const ledger = join(d, 'cells.pids');
    const host = new TrackedHost(local, ledger);
    const server = new GuestServer(host, 'sleep', ['sleep', '1000'], join(d, 'server.log'));
    await server.start({}, 10_000);
    const userServer = start(['sleep', '1000']);
    // A client in the foreground, cut off by the cell's bound (the local command is abandoned, the remote one runs on).
    void host.exec(['sleep', '999'], { allowFailure: true });
    expect(await until(() => existsSync(ledger) && readFileSync(ledger, 'utf8').split('\n').length === 3)).toBe(true);
    const r = await resetHosts(host, new TrackedHost(local, join(d, 'client.pids')), 'kflex-test-nonexistent0');
    // The server (SIGTERM) and the abandoned client: exactly the two processes the ledger holds.
    expect(r.server!.stopped.map((p) => p.tag).sort()).toEqual(['sleep', 'sleep']);
    expect(r.server!.stopped.map((p) => p.pid)).toContain(server.process!.pid);
    expect(r.client).toEqual({ stopped: [], survived: [], gone: 0, reused: [] });
    expect(await until(() => !runs(server.process!.pid))).toBe(true);
    expect(runs(userServer.pid!)).toBe(true);
    // An untracked host has no ledger: nothing is stopped there.
    expect(await stopTracked(local)).toEqual({ stopped: [], survived: [], gone: 0, reused: [] });
  });

  it('starts a server with the open-file limit it is given, and says what limit it runs with', async () => {
    const d = tempDir();
    const hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
    const want = Math.min(hard, serverNofile(3200));
    const s = new GuestServer(new TrackedHost(local, join(d, 'l.pids')), 'sleep', ['sleep', '1000'], join(d, 's.log'));
    const r = await s.start({}, 10_000, { nofile: want });
    expect(r.nofile).toBe(want);
    expect(readFileSync(`/proc/${s.process!.pid}/limits`, 'utf8')).toMatch(new RegExp(`^Max open files +${want} +${want} +files`, 'm'));
    await s.stop();
    expect(runs(s.process?.pid ?? 0)).toBe(false);
  });

  it('a server that dies during the run fails the cell as that, not as the client error that follows', async () => {
    const d = tempDir();
    const s = new GuestServer(
      new TrackedHost(local, join(d, 'l.pids')),
      'dies',
      ['sh', '-c', 'echo up; sleep 0.5; echo "out of file descriptors"; exit 1'],
      join(d, 's.log'),
    );
    await s.start({ text: 'up' }, 10_000);
    await expect(
      s.during(async () => {
        await new Promise((r) => setTimeout(r, 1500));
        throw new Error('memtier_benchmark: connection refused');
      }),
    ).rejects.toThrow(
      new RegExp(
        '^dies \\(pid \\d+\\) died during the run; the client then failed: memtier_benchmark: connection refused\\. ' +
          'Its log ends:\\n {2}\\| up\\n {2}\\| out of file descriptors',
      ),
    );
    const alive = new GuestServer(new TrackedHost(local, join(d, 'l.pids')), 'lives', ['sleep', '1000'], join(d, 'a.log'));
    await alive.start({}, 10_000);
    await expect(alive.during(async () => Promise.reject(new Error('client failed')))).rejects.toThrow(/^client failed$/);
    expect(await alive.during(async () => 42)).toBe(42);
    await alive.stop();
  });
});

describe('the open-file limit from the load', () => {
  it('is the connections the client opens plus a margin, in steps of 1024, never below the default 1024', () => {
    expect(serverNofile(0)).toBe(1024);
    expect(serverNofile(1)).toBe(2048);
    expect(serverNofile(3200)).toBe(5120);
    expect(serverNofile(50)).toBe(2048);
    expect(serverNofile(6400)).toBe(8192);
  });

  it("counts the connections from the client's own argv", () => {
    // The artifact's ZADD load: memtier -t 64 with its default 50 clients per thread.
    expect(clientConnections(['memtier_benchmark', '-s', '10.0.0.1', '-p', '6969', '--protocol=redis', '-t', '64', '-n', '10000'])).toBe(3200);
    expect(clientConnections(['redis-benchmark', '--threads', '64', '-h', '10.0.0.1', '-n', '2000000'])).toBe(50);
    expect(clientConnections(memcaslapArgv('10.0.0.1', { threads: 128, concurrency: 128, seconds: 30, udp: true }))).toBe(0);
    expect(clientConnections(memcaslapArgv('10.0.0.1', { threads: 4, concurrency: 64, seconds: 30, udp: false }))).toBe(64);
    expect(clientConnections(['memtier_benchmark', '--threads=8', '--clients', '10'])).toBe(80);
    expect(clientConnections(['memtier_benchmark'])).toBe(200);
    expect(clientConnections(['redis-benchmark', '-h', '10.0.0.1', '-t', 'set,get', '-c', '200', '-n', '1000'])).toBe(200);
    expect(clientConnections(['redis-benchmark', '--threads', '64', '-n', '2000000'])).toBe(50);
    expect(clientConnections(['memcaslap', '-s', '10.0.0.1:6969', '-T', '128', '-c', '128', '-t', '30s'])).toBe(128);
    expect(clientConnections(['memcaslap', '-U', '-c', '128'])).toBe(0);
    expect(clientConnections(['memcaslap', '-c', '4', '-n', '3'])).toBe(12);
    expect(clientConnections(['ping', '-c', '5'])).toBe(0);
  });
});
