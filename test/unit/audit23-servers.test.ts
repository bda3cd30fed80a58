import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import type { Host, HostExecOptions } from '../../core/host.js';
import { run } from '../../core/exec.js';
import { TrackedHost } from '../../core/processes.js';
import { loadConfig } from '../../core/config.js';
import { planCells, type ExperimentCell } from '../../experiments/cells.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { ACCEPT_FAILED, GuestServer, acceptFailures, clientConnections, clientLoad, serverNofile } from '../../experiments/server.js';
import { testCaps } from './support/caps.js';
import { tempDir } from '../helpers.js';

/** This machine as a Host: the server scripts are plain sh. */
const local: Host = {
  name: 'local',
  exec: (argv: readonly string[], o: HostExecOptions = {}) => run(argv, { allowFailure: o.allowFailure, timeoutMs: o.timeoutMs, input: o.input }),
  copyIn: async () => undefined,
  copyOut: async () => undefined,
};

/**
 * The line ffkx prints when accept4 fails at its open-file limit, assembled from the sources: KFlex 567387b
 * src/Socket.cpp:58-64 returns absl::ErrnoToStatus(errno, "Failed to accept connection from socket."), and
 * src/Main.cpp:224-227 / :378-381 / :552-555 print it with `std::cerr << client.status()`. abseil (status.cc)
 * prints a status as StatusCodeToString(code) + ": " + message; ErrnoToStatus maps EMFILE to kResourceExhausted
 * ("RESOURCE_EXHAUSTED") and makes the message `<text>: ` + strerror(EMFILE) ("Too many open files").
 */
const EMFILE_LINE = 'RESOURCE_EXHAUSTED: Failed to accept connection from socket.: Too many open files';

describe("ffkx's failed accept4, read from the server's log", () => {
  it('finds the exact line among the accepted-connection lines, and nothing in a healthy log', () => {
    expect(EMFILE_LINE).toContain(ACCEPT_FAILED);
    const accepted = 'Accepted a connection, adding socket to sockmap...';
    const log = ['Memcached ready!', ...Array(3).fill(accepted), EMFILE_LINE, `${EMFILE_LINE}  `, accepted, ''].join('\n');
    expect(acceptFailures(log)).toEqual([EMFILE_LINE, EMFILE_LINE]);
    expect(acceptFailures(['Memcached ready!', accepted, accepted].join('\n'))).toEqual([]);
  });

  it('--kmemcached/--kmemcache: a server still running whose accept thread failed fails the cell as that, not as the client', async () => {
    const d = tempDir();
    // Like ffkx --kmemcached: ready, a few connections, one accept thread ends on EMFILE, the process lives on.
    const script = `echo 'Memcached ready!' >&2; echo 'Accepted a connection, adding socket to sockmap...' >&2; echo '${EMFILE_LINE}' >&2; exec sleep 1000`;
    const s = new GuestServer(new TrackedHost(local, join(d, 'l.pids')), 'ffkx', ['sh', '-c', script], join(d, 'ffkx.log'));
    await s.start({ text: 'Memcached ready!' }, 10_000, { nofile: 1024 });
    const pid = s.process!.pid;
    await new Promise((r) => setTimeout(r, 200));
    const err = await s.during(async () => 'memtier finished', { connections: 3200 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^ffkx \\(pid ${pid}\\) stopped accepting connections during the run: 1 failed accept4 line \\('RESOURCE_EXHAUSTED: Failed to accept ` +
          "connection from socket\\.: Too many open files'\\), with an open-file limit of 1024 \\(ulimit -n\\) for a load that opens 3200 " +
          'connections\\. Its log ends:\\n',
      ),
    );
    // Stopped by the check: the cell's reset finds nothing left.
    expect(s.process).toBeUndefined();
  });

  it("the client's own error comes second", async () => {
    const d = tempDir();
    const script = `echo 'Memcache ready!' >&2; echo '${EMFILE_LINE}' >&2; exec sleep 1000`;
    const s = new GuestServer(new TrackedHost(local, join(d, 'l.pids')), 'ffkx', ['sh', '-c', script], join(d, 'ffkx.log'));
    await s.start({ text: 'Memcache ready!' }, 10_000, { nofile: 1024 });
    await new Promise((r) => setTimeout(r, 200));
    await expect(s.during(async () => Promise.reject(new Error('memcaslap: connection timed out')), { connections: 2000 })).rejects.toThrow(
      new RegExp(
        'stopped accepting connections during the run: 1 failed accept4 line .* for a load that opens 2000 connections; ' +
          'the client then failed: memcaslap: connection timed out\\. Its log ends',
      ),
    );
  });

  it('--kredis: the accept loop is the process, which exits; the death says it stopped accepting', async () => {
    const d = tempDir();
    const script = `echo 'ToyRedis ready!' >&2; sleep 0.3; echo '${EMFILE_LINE}' >&2; exit 1`;
    const s = new GuestServer(new TrackedHost(local, join(d, 'l.pids')), 'ffkx', ['sh', '-c', script], join(d, 'ffkx.log'));
    await s.start({ text: 'ToyRedis ready!' }, 10_000, { nofile: 1024 });
    await expect(
      s.during(
        async () => {
          await new Promise((r) => setTimeout(r, 1000));
          return 'done';
        },
        { connections: 3200 },
      ),
    ).rejects.toThrow(
      /^ffkx \(pid \d+\) died during the run after it stopped accepting connections \(1 failed accept4 line .*3200 connections\)\. Its log ends/,
    );
  });

  it('a server whose log has no such line is left alone', async () => {
    const d = tempDir();
    const s = new GuestServer(new TrackedHost(local, join(d, 'l.pids')), 'memcached', ['sleep', '1000'], join(d, 'm.log'));
    await s.start({}, 10_000);
    expect(await s.during(async () => 42, { connections: 10 })).toBe(42);
    await s.stop();
  });
});

describe("the open-file limit on the argv the paper profile's cells build", () => {
  const paper = loadConfig({ profile: 'paper', env: {} }).profile;
  const cells = planCells(paper, {}, EXPERIMENTS);
  const one = (exp: string, variant: string): ExperimentCell => cells.find((c) => c.experiment.id === exp && c.variant.id === variant)!;
  const argvOf = (c: ExperimentCell, memtier: boolean) =>
    c.experiment.clientArgv!(
      { params: c.params, settings: c.settings, caps: testCaps({ memtier, kflexKernel: true, ffkx: true }), serverIp: '10.0.0.1' },
      c.variant,
    )!;

  it("redis-getset's memtier line (-t 64, memtier's default 50 clients): 3200 connections, nofile 5120", () => {
    const argv = argvOf(one('redis-getset', 'kflex'), true);
    expect(argv.slice(0, 1)).toEqual(['memtier_benchmark']);
    expect(argv).toEqual(expect.arrayContaining(['-t', '64', '-n', '10000', '--ratio=10:90']));
    expect(argv).not.toContain('-c');
    expect(clientLoad(argv)).toEqual({ connections: 3200, how: 'memtier_benchmark -t 64 x -c 50 (default)' });
    expect(serverNofile(clientConnections(argv))).toBe(5120);
  });

  it("redis-getset without memtier: redis-benchmark's SET/GET phases, 50 connections (its default -c), nofile 2048", () => {
    const argv = argvOf(one('redis-getset', 'kflex'), false);
    expect(argv[0]).toBe('redis-benchmark');
    expect(clientLoad(argv)).toEqual({ connections: 50, how: 'redis-benchmark -c 50 (default)' });
    expect(serverNofile(clientConnections(argv))).toBe(2048);
  });

  it("redis-zadd: memtier's stand-in opens the seed's 50 (-t 50 -c 1), as does the seed's redis-benchmark line: nofile 2048", () => {
    const memtier = argvOf(one('redis-zadd', 'kflex'), true);
    expect(clientLoad(memtier)).toEqual({ connections: 50, how: 'memtier_benchmark -t 50 x -c 1' });
    const seed = argvOf(one('redis-zadd', 'kflex'), false);
    expect(seed.slice(0, 3)).toEqual(['redis-benchmark', '--threads', '64']);
    expect(clientConnections(seed)).toBe(50);
    expect([memtier, seed].map((a) => serverNofile(clientConnections(a)))).toEqual([2048, 2048]);
  });

  it('memcache: memcaslap -U -T 128 -c 128 over UDP opens no connection: the default 1024 stays', () => {
    const argv = argvOf(one('memcache', 'kflex'), true);
    expect(argv).toEqual(expect.arrayContaining(['memcaslap', '-U', '-T', '128', '-c', '128']));
    expect(clientLoad(argv)).toEqual({ connections: 0, how: 'memcaslap -U (UDP, no connections)' });
    expect(serverNofile(clientConnections(argv))).toBe(1024);
    // BMC's cell builds its own client.
    expect(
      one('memcache', 'bmc').experiment.clientArgv!(
        { params: {}, settings: one('memcache', 'bmc').settings, caps: testCaps(), serverIp: 'x' },
        one('memcache', 'bmc').variant,
      ),
    ).toBeUndefined();
  });
});
