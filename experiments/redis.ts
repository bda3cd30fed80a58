import type { Experiment, CellContext, VariantDef } from './types.js';
import { GuestServer, detachXdp } from './server.js';
import { parseMemtier, parseRedisBenchmarkCsv } from './parsers.js';
import { KFLEX_GUEST_DIR, SERVICE_PORT } from '../core/guest.js';

function redisServer(ctx: CellContext, variant: VariantDef, mode: '--kmemcached' | '--kredis', ready: RegExp) {
  return variant.id === 'kflex'
    ? { server: new GuestServer(ctx.server, 'ffkx', [`${KFLEX_GUEST_DIR}/ffkx`, mode, '--ifindex', String(ctx.caps.linkIfindex)]), ready: { line: ready }, timeoutMs: 900_000 }
    : {
        server: new GuestServer(ctx.server, 'redis-server', ['redis-server', '--port', String(SERVICE_PORT), '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no']),
        ready: { tcpPort: SERVICE_PORT },
        timeoutMs: 60_000,
      };
}

async function withServer<T>(ctx: CellContext, variant: VariantDef, mode: '--kmemcached' | '--kredis', ready: RegExp, body: (s: GuestServer) => Promise<T>): Promise<T> {
  const s = redisServer(ctx, variant, mode, ready);
  await s.server.start(s.ready, s.timeoutMs);
  try {
    return await body(s.server);
  } finally {
    await s.server.stop();
    if (variant.id === 'kflex') await detachXdp(ctx.server, ctx.linkIf);
  }
}

export function memtierArgv(server: string, p: { ratio: string; dataSize: number; clients: number; seconds: number }): string[] {
  return ['memtier_benchmark', '-s', server, '-p', String(SERVICE_PORT), '--protocol=redis', `--ratio=${p.ratio}`, '-d', String(p.dataSize), '-t', '1', '-c', String(p.clients), `--test-time=${p.seconds}`, '--hide-histogram'];
}

export function redisBenchmarkGetSetArgv(server: string, p: { dataSize: number; clients: number; requests: number }): string[] {
  return ['redis-benchmark', '-h', server, '-p', String(SERVICE_PORT), '-t', 'set,get', '-d', String(p.dataSize), '-c', String(p.clients), '-n', String(p.requests), '-r', '100000', '--csv'];
}

/** The seed's ZADD command line, with the request count, threads and clients from the profile's grid. */
export function redisBenchmarkZaddArgv(server: string, p: { threads: number; clients: number; requests: number }): string[] {
  return ['redis-benchmark', '--threads', String(p.threads), '-h', server, '-p', String(SERVICE_PORT), '-c', String(p.clients), '-r', '1000000', '-n', String(p.requests), '--csv', 'zadd', 'f__rand_int__f', '__rand_int__', 'ele:rand__rand_int__:__rand_int__'];
}

/**
 * Experiment 2. ffkx --kmemcached offloads Redis GET/SET over TCP with sockmap (the seed README pairs it
 * with memcaslap; the code speaks RESP, so the client is memtier_benchmark --protocol=redis).
 */
export const redisGetSet: Experiment = {
  id: 'redis-getset',
  title: 'Redis GET/SET offload (sockmap, TCP)',
  claims: ['redis-getset-throughput'],
  headline: 'ops_sec',
  variants: [
    { id: 'kflex', description: 'ffkx --kmemcached (sk_skb stream parser/verdict, 256 GiB heap)', requires: ['kflex-kernel', 'ffkx'], heapGiB: 256 },
    { id: 'userspace', description: `redis-server --port ${SERVICE_PORT}`, requires: [] },
  ],
  estimateCellSeconds: (s, accel) => s.duration_s * 2 + (accel === 'tcg' ? 25 : 8),
  async runCell(ctx, variant) {
    const p = ctx.params;
    return withServer(ctx, variant, '--kmemcached', /Memcached ready!/, async (server) => {
      const dataSize = Number(p.data_size ?? 64);
      const clients = Number(p.clients ?? 8);
      if (ctx.caps.memtier) {
        const out = await ctx.exec(ctx.client, 'client', memtierArgv(ctx.serverIp, { ratio: String(p.ratio ?? '1:9'), dataSize, clients, seconds: ctx.settings.duration_s }), { timeoutMs: (ctx.settings.duration_s + 180) * 1000 });
        return { metrics: parseMemtier(out.stdout), files: { 'server.log': await server.log() } };
      }
      // Substitute: redis-benchmark runs a SET phase then a GET phase, so the SET:GET ratio is not applied.
      const requests = Number(p.requests ?? 2000 * ctx.settings.duration_s);
      const out = await ctx.exec(ctx.client, 'client', redisBenchmarkGetSetArgv(ctx.serverIp, { dataSize, clients, requests }), { timeoutMs: (ctx.settings.duration_s * 10 + 300) * 1000 });
      const m = parseRedisBenchmarkCsv(out.stdout);
      return {
        metrics: { ...m, ops_sec: m.rps! },
        deviations: [`memtier_benchmark is not in the image: substituted redis-benchmark -t set,get (${requests} requests per phase; the ${String(p.ratio ?? '1:9')} SET:GET ratio is not applied)`],
        files: { 'server.log': await server.log() },
      };
    });
  },
};

/** Experiment 3. ffkx --kredis offloads ZADD into a skiplist; the client is the seed's redis-benchmark ZADD line. */
export const redisZadd: Experiment = {
  id: 'redis-zadd',
  title: 'Redis ZADD offload (skiplist, sockmap)',
  claims: ['redis-zadd-throughput'],
  headline: 'rps',
  variants: [
    { id: 'kflex', description: 'ffkx --kredis (256 GiB heap)', requires: ['kflex-kernel', 'ffkx'], heapGiB: 256 },
    { id: 'userspace', description: `redis-server --port ${SERVICE_PORT}`, requires: [] },
  ],
  estimateCellSeconds: (s, accel) => (accel === 'tcg' ? 40 : 15),
  async runCell(ctx, variant) {
    const p = ctx.params;
    return withServer(ctx, variant, '--kredis', /ToyRedis ready!/, async (server) => {
      const argv = redisBenchmarkZaddArgv(ctx.serverIp, { threads: Number(p.threads ?? 1), clients: Number(p.clients ?? 8), requests: Number(p.requests ?? 20000) });
      const out = await ctx.exec(ctx.client, 'client', argv, { timeoutMs: 30 * 60_000 });
      return { metrics: parseRedisBenchmarkCsv(out.stdout), files: { 'server.log': await server.log() } };
    });
  },
};
