import type { Experiment, CellContext, CellOutcome, ClientCell, VariantDef } from './types.js';
import { count, proportion } from './grid.js';
import { FFKX, KFLEX_KERNEL, MEMTIER, REDIS_BENCHMARK, REDIS_SERVER, hasProgram } from './requirements.js';
import { GuestServer, clientConnections, serverNofile } from './server.js';
import { parseMemtier, parseRedisBenchmarkCsv, parseRedisBenchmark } from './parsers.js';
import { KFLEX_GUEST_DIR, SERVICE_PORT } from '../core/guest.js';

function redisServer(ctx: CellContext, variant: VariantDef, mode: '--kmemcached' | '--kredis', ready: string) {
  return variant.id === 'kflex'
    ? {
        server: new GuestServer(ctx.server, 'ffkx', [`${KFLEX_GUEST_DIR}/ffkx`, mode, '--ifindex', String(ctx.caps.linkIfindex)]),
        ready: { text: ready },
        timeoutMs: 900_000,
      }
    : {
        server: new GuestServer(ctx.server, 'redis-server', [
          'redis-server',
          '--port',
          String(SERVICE_PORT),
          '--bind',
          '0.0.0.0',
          '--protected-mode',
          'no',
          '--save',
          '',
          '--appendonly',
          'no',
        ]),
        ready: { tcpPort: SERVICE_PORT },
        timeoutMs: 60_000,
      };
}

/** A cell's client: the argv it runs (its connections size the server's open-file limit) and how its output reads. */
interface RedisClient {
  argv: string[];
  outcome(stdout: string): CellOutcome;
}

/**
 * The server up and ready, with an open-file limit for the client's connections (ffkx keeps every accepted
 * connection and stops accepting at the first failed accept4), the client's run, then the server stopped
 * (ffkx's XDP detached) and its log kept. A server that died under the load fails the cell as that.
 */
async function withServer(ctx: CellContext, variant: VariantDef, mode: '--kmemcached' | '--kredis', ready: string, client: RedisClient): Promise<CellOutcome> {
  const s = redisServer(ctx, variant, mode, ready);
  let out: CellOutcome | undefined;
  let log = '';
  try {
    const { readySeconds, nofile } = await s.server.start(s.ready, s.timeoutMs, { nofile: serverNofile(clientConnections(client.argv)) });
    ctx.phase('ready', Date.now() - readySeconds * 1000);
    ctx.phase('measurement');
    const run = await s.server.during(() => ctx.exec(ctx.client, 'client', client.argv, { timeoutMs: ctx.boundMs }), {
      connections: clientConnections(client.argv),
    });
    out = client.outcome(run.stdout);
    out = { ...out, metrics: { ...out.metrics, server_nofile: nofile ?? 0 } };
  } finally {
    ctx.phase('reset');
    log = await s.server.stop({ detachXdpFrom: variant.id === 'kflex' ? ctx.linkIf : undefined });
  }
  return { ...out, files: { ...out.files, 'server.log': log } };
}

/**
 * The artifact's memtier line (`-d 64 -n 10000 -t 64 --ratio 10:90`): a request count per client when
 * `requests` is given, else a test time; memtier's default 50 clients per thread unless `clients` is given.
 */
export function memtierArgv(
  server: string,
  p: { ratio: string; dataSize: number; threads: number; clients?: number; requests?: number; seconds: number },
): string[] {
  return [
    'memtier_benchmark',
    '-s',
    server,
    '-p',
    String(SERVICE_PORT),
    '--protocol=redis',
    `--ratio=${p.ratio}`,
    '-d',
    String(p.dataSize),
    '-t',
    String(p.threads),
    ...(p.clients ? ['-c', String(p.clients)] : []),
    ...(p.requests ? ['-n', String(p.requests)] : [`--test-time=${p.seconds}`]),
    '--hide-histogram',
  ];
}

export function redisBenchmarkGetSetArgv(server: string, p: { dataSize: number; clients?: number; requests: number }): string[] {
  return [
    'redis-benchmark',
    '-h',
    server,
    '-p',
    String(SERVICE_PORT),
    '-t',
    'set,get',
    '-d',
    String(p.dataSize),
    ...(p.clients ? ['-c', String(p.clients)] : []),
    '-n',
    String(p.requests),
    '-r',
    '100000',
    '--csv',
  ];
}

/** The seed's ZADD command line, with the request count, threads and (when given) clients from the profile's grid. */
export function redisBenchmarkZaddArgv(server: string, p: { threads: number; clients?: number; requests: number }): string[] {
  return [
    'redis-benchmark',
    '--threads',
    String(p.threads),
    '-h',
    server,
    '-p',
    String(SERVICE_PORT),
    ...(p.clients ? ['-c', String(p.clients)] : []),
    '-r',
    '1000000',
    '-n',
    String(p.requests),
    '--csv',
    'zadd',
    'f__rand_int__f',
    '__rand_int__',
    'ele:rand__rand_int__:__rand_int__',
  ];
}

/**
 * ZADD through memtier_benchmark, for the runs where redis-benchmark cannot be used: redis-benchmark always
 * sends CONFIG GET first and waits forever for an answer ffkx --kredis never gives.
 *
 * The connections are the seed's: redis-benchmark's -c (default 50) is the total its --threads share, so
 * memtier opens the same total, as -t T -c C with T the largest divisor of the total not above the threads
 * (the seed's --threads 64 and 50 clients: -t 50 -c 1), and -n is the per-connection share of the requests.
 *
 * What it sends (memtier 2.1.1, checked with redis-cli MONITOR: test/fixtures/clients/memtier-zadd-standin.*):
 * `ZADD <key> <score> xxxxxxxxxxxxxxxx`. Each `__key__` is its own draw (client.cpp create_arbitrary_request:
 * one get_key_for_conn per placeholder; obj_gen.cpp get_key_index: random_range for pattern R), so key and
 * score are independent uniform numbers in 1..999999 (empty key prefix, so the score parses); `__data__` is
 * the 16-byte value buffer, 'x' bytes without --random-data: one constant member. Every connection starts
 * from the same seed (obj_gen.cpp random_generator(): set_seed(0); client.cpp reseeds only for --randomize
 * or --distinct-client-seed), so --distinct-client-seed gives each connection its own sequence, as the seed's
 * clients draw independently.
 */
export function memtierZaddArgv(server: string, p: { threads: number; clients?: number; requests: number }): string[] {
  const connections = Math.max(1, p.clients ?? 50);
  const threads = largestDivisorAtMost(connections, Math.max(1, p.threads));
  const perClient = Math.max(1, Math.ceil(p.requests / connections));
  return [
    'memtier_benchmark',
    '-s',
    server,
    '-p',
    String(SERVICE_PORT),
    '--protocol=redis',
    '-t',
    String(threads),
    '-c',
    String(connections / threads),
    '-n',
    String(perClient),
    '--command=ZADD __key__ __key__ __data__',
    '--command-key-pattern=R',
    '--key-prefix=',
    '--key-minimum=1',
    '--key-maximum=999999',
    '-d',
    '16',
    '--distinct-client-seed',
    '--hide-histogram',
  ];
}

function largestDivisorAtMost(n: number, max: number): number {
  for (let d = Math.min(n, max); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

export const MEMTIER_ZADD_DEVIATION =
  "ZADD driven by memtier_benchmark --command 'ZADD __key__ __key__ __data__' instead of the seed's redis-benchmark line " +
  '(redis-benchmark blocks forever on its startup CONFIG GET, which ffkx --kredis never answers). Same total connections ' +
  '(redis-benchmark -c, default 50) and requests; it sends ZADD <key> <score> xxxxxxxxxxxxxxxx: key and score independent ' +
  'uniform draws in 1..999999, one per connection stream (--distinct-client-seed), and a constant 16-byte member, where ' +
  'the seed sends key f<12 digits>f, a 12-digit score and a random member ele:rand<12 digits>:<12 digits> (so a key drawn ' +
  "twice gets a second member under the seed's load, an updated score under this one)";

/** redis-getset's client: memtier when the image has it, else redis-benchmark's SET and GET phases (recorded). */
function getsetClient(ctx: ClientCell): RedisClient {
  const p = ctx.params;
  const dataSize = Number(p.data_size ?? 64);
  const clients = p.clients === undefined ? undefined : Number(p.clients);
  const threads = Number(p.threads ?? 1);
  if (hasProgram(ctx.caps, MEMTIER)) {
    const requests = p.requests === undefined ? undefined : Number(p.requests);
    return {
      argv: memtierArgv(ctx.serverIp, { ratio: String(p.ratio ?? '10:90'), dataSize, threads, clients, requests, seconds: ctx.settings.duration_s }),
      outcome: (stdout) => ({ metrics: parseMemtier(stdout) }),
    };
  }
  // Substitute: redis-benchmark runs a SET phase then a GET phase, so the SET:GET ratio is not applied.
  // The substitute needs a total count: memtier's per-client count times its connections, else a rate guess.
  const requests = p.requests !== undefined ? Number(p.requests) * threads * (clients ?? 50) : 2000 * ctx.settings.duration_s;
  return {
    argv: redisBenchmarkGetSetArgv(ctx.serverIp, { dataSize, clients, requests }),
    outcome: (stdout) => {
      const m = parseRedisBenchmarkCsv(stdout);
      return {
        metrics: { ...m, ops_sec: m.rps! },
        deviations: [
          `memtier_benchmark is not in the image: substituted redis-benchmark -t set,get ` +
            `(${requests} requests per phase; the ${String(p.ratio ?? '10:90')} SET:GET ratio is not applied)`,
        ],
      };
    },
  };
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
  chart: 'variants',
  grid: {
    ratio: proportion('memtier --ratio'),
    data_size: count('value bytes: memtier / redis-benchmark -d'),
    threads: count('client threads: memtier -t, redis-benchmark --threads'),
    clients: count('clients: memtier -c per thread, redis-benchmark -c'),
    requests: count('requests: memtier -n per client, redis-benchmark -n'),
  },
  parsers: { memtier: parseMemtier, 'redis-benchmark': parseRedisBenchmark },
  artifact: {
    command: 'memtier_benchmark -s <hostname> -p 6969 --protocol=redis -d 64 -n 10000 -t 64 --ratio 10:90',
    params: { ratio: '10:90', data_size: 64, threads: 64, requests: 10000 },
    source: "the artifact's README, 'Redis offload for GETS/SETS' (it names the flag --kmemcache there; the code's pairing is --kmemcached)",
  },
  variants: [
    {
      id: 'kflex',
      description: 'ffkx --kmemcached (sk_skb stream parser/verdict, 256 GiB heap)',
      requires: [KFLEX_KERNEL, FFKX, MEMTIER],
      heapGiB: 256,
      heap: 'kmemcached',
    },
    { id: 'userspace', description: `redis-server --port ${SERVICE_PORT}`, requires: [REDIS_SERVER, REDIS_BENCHMARK] },
  ],
  estimateCellSeconds: (s, accel) => s.duration_s * 2 + (accel === 'tcg' ? 25 : 8),
  clientArgv: (cell) => getsetClient(cell).argv,
  async runCell(ctx, variant) {
    return withServer(ctx, variant, '--kmemcached', 'Memcached ready!', getsetClient(ctx));
  },
};

/** Experiment 3. ffkx --kredis offloads ZADD into a skiplist; the client is the seed's redis-benchmark ZADD line. */
export const redisZadd: Experiment = {
  id: 'redis-zadd',
  title: 'Redis ZADD offload (skiplist, sockmap)',
  claims: ['redis-zadd-throughput'],
  headline: 'rps',
  chart: 'variants',
  grid: {
    threads: count('client threads: memtier -t, redis-benchmark --threads'),
    clients: count('clients: the total connections, redis-benchmark -c (memtier: -t x -c of that total)'),
    requests: count('requests: memtier -n per client, redis-benchmark -n'),
  },
  parsers: { 'redis-benchmark': parseRedisBenchmark, memtier: parseMemtier },
  artifact: {
    command: 'redis-benchmark --threads 64 -h <hostname> -p 6969 -r 1000000 -n 2000000 zadd f__rand_int__f __rand_int__ ele:rand__rand_int__:__rand_int__',
    params: { threads: 64, requests: 2000000 },
    source: "the artifact's README, 'Redis offload for ZADD'",
  },
  variants: [
    { id: 'kflex', description: 'ffkx --kredis (256 GiB heap)', requires: [KFLEX_KERNEL, FFKX, MEMTIER], heapGiB: 256, heap: 'kredis' },
    { id: 'userspace', description: `redis-server --port ${SERVICE_PORT}`, requires: [REDIS_SERVER, REDIS_BENCHMARK] },
  ],
  estimateCellSeconds: (_s, accel) => (accel === 'tcg' ? 40 : 15),
  clientArgv: (cell) => zaddClient(cell).argv,
  async runCell(ctx, variant) {
    return withServer(ctx, variant, '--kredis', 'ToyRedis ready!', zaddClient(ctx));
  },
};

/** redis-zadd's client: the seed's redis-benchmark line, or its memtier stand-in when memtier is there (both variants alike). */
function zaddClient(ctx: ClientCell): RedisClient {
  const p = ctx.params;
  const load = { threads: Number(p.threads ?? 1), clients: p.clients === undefined ? undefined : Number(p.clients), requests: Number(p.requests ?? 20000) };
  // Both variants use the same client when memtier is there, so the comparison is like for like.
  return hasProgram(ctx.caps, MEMTIER)
    ? {
        argv: memtierZaddArgv(ctx.serverIp, load),
        outcome: (stdout) => {
          const m = parseMemtier(stdout);
          return { metrics: { ...m, rps: m.ops_sec! }, deviations: [MEMTIER_ZADD_DEVIATION] };
        },
      }
    : { argv: redisBenchmarkZaddArgv(ctx.serverIp, load), outcome: (stdout) => ({ metrics: parseRedisBenchmarkCsv(stdout) }) };
}
