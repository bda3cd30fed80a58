import type { ClientCell, Experiment } from './types.js';
import { runBmcCell } from './bmc.js';
import { count, proportion } from './grid.js';
import { FFKX, KFLEX_KERNEL, BMC, MEMCACHED, MEMCASLAP } from './requirements.js';
import { GuestServer, clientConnections, serverNofile } from './server.js';
import { parseMemcaslap, type Metrics } from './parsers.js';
import { BMC_PORT, KFLEX_GUEST_DIR, SERVICE_PORT } from '../core/guest.js';

/** memcaslap's -F file: key/value `min max proportion`, cmd `type proportion` (0 = set, 1 = get). */
export function memcaslapConfig(setGet: string, valueSize: number, keySize = 32): string {
  const [set, get] = setGet.split(':').map(Number) as [number, number];
  const total = set + get;
  return `key\n${keySize} ${keySize} 1\nvalue\n${valueSize} ${valueSize} 1\ncmd\n0 ${(set / total).toFixed(4)}\n1 ${(get / total).toFixed(4)}\n`;
}

/** The baseline: memcached on the service port, UDP on the same port (memcaslap -U), a thread per server CPU. */
export function memcachedArgv(serverCpus: number): string[] {
  return [
    'memcached',
    '-u',
    'root',
    '-l',
    '0.0.0.0',
    '-p',
    String(SERVICE_PORT),
    '-U',
    String(SERVICE_PORT),
    '-t',
    String(Math.max(1, serverCpus)),
    '-m',
    '256',
  ];
}

export function memcaslapArgv(server: string, p: { threads: number; concurrency: number; seconds: number; udp: boolean }): string[] {
  return [
    'memcaslap',
    '-s',
    `${server}:${SERVICE_PORT}`,
    '-F',
    '/tmp/memcaslap.cfg',
    '-T',
    String(p.threads),
    '-c',
    String(p.concurrency),
    ...(p.udp ? ['-U'] : []),
    '-S',
    '1s',
    '-t',
    `${p.seconds}s`,
  ];
}

/**
 * Experiment 1. ffkx --kmemcache parses memcache over UDP in XDP (the seed README pairs it with the
 * wrong client; the code's pairing is memcaslap -U). The baseline is memcached on the same port, UDP on.
 */
export const memcache: Experiment = {
  id: 'memcache',
  title: 'Memcache GET/SET offload (XDP, UDP)',
  claims: ['memcache-throughput'],
  headline: 'tps',
  chart: 'variants',
  grid: {
    set_get: proportion("memcaslap's -F cmd proportions"),
    threads: count('client threads: memcaslap -T'),
    concurrency: count('concurrent connections: memcaslap -c'),
    value_size: count('value bytes: memcaslap -F value line'),
  },
  deviations: () => [
    {
      topic: 'server/client pairing',
      artifact: 'README pairs ffkx --kmemcached with memcaslap and --kmemcache with memtier_benchmark',
      lab: 'memcaslap -U against --kmemcache (memcache over UDP in XDP); memtier_benchmark --protocol=redis against --kmemcached (RESP over TCP)',
      why: "the code (src/Main.cpp) parses memcache in --kmemcache and Redis RESP in --kmemcached: the README's pairing cannot measure anything",
      affects: 'memcache, redis-getset',
    },
  ],
  parsers: { memcaslap: parseMemcaslap },
  artifact: {
    command: 'memcaslap -s <hostname>:6969 -F config -U -T 128 -c 128 -S 1s -t 30s',
    params: { threads: 128, concurrency: 128 },
    duration_s: 30,
    source: "the artifact's README, 'Memcached offload for GETS/SETS'",
    // Its -F config file sets the SET:GET proportion and the value size.
    inCommand: ['set_get', 'value_size'],
  },
  variants: [
    {
      id: 'kflex',
      description: `ffkx --kmemcache --ifindex <link NIC> (XDP, 128 GiB heap)`,
      requires: [KFLEX_KERNEL, FFKX, { kind: 'native-xdp' }, MEMCASLAP],
      heapGiB: 128,
      heap: 'kmemcache',
    },
    { id: 'userspace', description: `memcached -U ${SERVICE_PORT} -p ${SERVICE_PORT}`, requires: [MEMCACHED, MEMCASLAP] },
    {
      id: 'bmc',
      description: `BMC (NSDI '21, rs3lab/bmc-cache): its XDP cache in driver mode and its tc egress program in front of memcached on UDP ${BMC_PORT}`,
      requires: [BMC, MEMCACHED, MEMCASLAP, { kind: 'native-xdp' }],
    },
  ],
  estimateCellSeconds: (s, accel) => s.warmup_s + s.duration_s + (accel === 'tcg' ? 25 : 8),
  // The measured run's memcaslap (the warm-up runs the same load for warmup_s); BMC's cell builds its own.
  clientArgv: (cell, variant) =>
    variant.id === 'bmc' ? undefined : memcaslapArgv(cell.serverIp, { ...memcaslapRun(cell), seconds: cell.settings.duration_s }),
  async runCell(ctx, variant) {
    const p = ctx.params;
    const run = memcaslapRun(ctx);
    if (variant.id === 'bmc')
      return runBmcCell(ctx, {
        threads: run.threads,
        concurrency: run.concurrency,
        config: memcaslapConfig(String(p.set_get ?? '10:90'), Number(p.value_size ?? 32)),
      });
    const kflex = variant.id === 'kflex';
    const server = kflex
      ? new GuestServer(ctx.server, 'ffkx', [`${KFLEX_GUEST_DIR}/ffkx`, '--kmemcache', '--ifindex', String(ctx.caps.linkIfindex)])
      : new GuestServer(ctx.server, 'memcached', memcachedArgv(ctx.caps.serverCpus));
    let metrics: Metrics | undefined;
    let log = '';
    // Enough open files for every connection the client opens (none over UDP), plus a margin; recorded.
    const connections = clientConnections(memcaslapArgv(ctx.serverIp, { ...run, seconds: ctx.settings.duration_s }));
    const nofile = serverNofile(connections);
    try {
      // The client's -F file is written while the server starts: the two machines work at once.
      const [s] = await Promise.all([
        server.start(kflex ? { text: 'Memcache ready!' } : { tcpPort: SERVICE_PORT }, kflex ? 900_000 : 60_000, { nofile }),
        ctx.exec(ctx.client, 'config', ['sh', '-c', 'cat > /tmp/memcaslap.cfg'], {
          input: memcaslapConfig(String(p.set_get ?? '10:90'), Number(p.value_size ?? 32)),
        }),
      ]);
      ctx.phase('ready', Date.now() - s.readySeconds * 1000);
      // A server that dies under the load fails the cell as that, not as the client's error.
      const out = await server.during(
        async () => {
          if (ctx.settings.warmup_s > 0) {
            ctx.phase('warm-up');
            await ctx.exec(ctx.client, 'warmup', memcaslapArgv(ctx.serverIp, { ...run, seconds: ctx.settings.warmup_s }), {
              timeoutMs: (ctx.settings.warmup_s + 120) * 1000,
            });
          }
          ctx.phase('measurement');
          return ctx.exec(ctx.client, 'client', memcaslapArgv(ctx.serverIp, { ...run, seconds: ctx.settings.duration_s }), {
            timeoutMs: (ctx.settings.duration_s + 180) * 1000,
          });
        },
        { connections },
      );
      metrics = { ...parseMemcaslap(out.stdout), server_nofile: s.nofile ?? 0 };
    } finally {
      // Stopped (and ffkx's XDP program detached) whatever happened; its log comes back in the same round trip.
      ctx.phase('reset');
      log = await server.stop({ detachXdpFrom: kflex ? ctx.linkIf : undefined });
    }
    return { metrics: metrics!, files: { 'server.log': log } };
  },
};

/** memcaslap's load for a grid point: -T threads, -c concurrency, always UDP (-U), as the artifact's line. */
function memcaslapRun(cell: Pick<ClientCell, 'params'>): { threads: number; concurrency: number; udp: boolean } {
  return { threads: Number(cell.params.threads ?? 1), concurrency: Number(cell.params.concurrency ?? 8), udp: true };
}
