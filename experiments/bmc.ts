import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CellContext, CellOutcome } from './types.js';
import { GuestServer } from './server.js';
import { parseMemcaslap, type Metrics } from './parsers.js';
import { BMC_PORT } from '../core/guest.js';
import { LabError, ExitCode } from '../core/errors.js';
import {
  BMC_READY_TEXT,
  BMC_LOAD_FAILED_TEXT,
  bmcArgv,
  bmcAttachTcScript,
  bmcCollectScript,
  bmcDetachScript,
  bmcHitProblem,
  bmcLoadFailure,
  bmcMemcachedArgv,
  bmcMemcaslapArgv,
  parseBmcStats,
  remainingAttachments,
  type BmcStats,
} from './bmc-support.js';

/** memcached's own counters over its text protocol (bash's /dev/tcp: no client program needed in the guest). */
export const MEMCACHED_STATS_SCRIPT = `exec 3<>/dev/tcp/127.0.0.1/"$1" || exit 3
printf 'stats\\r\\nquit\\r\\n' >&3
timeout 10 cat <&3`;

/** `STAT name value` lines as numbers (memcached's and BMC's files share the shape). */
export function parseStatLines(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^STAT (\w+) (\d+(?:\.\d+)?)\r?$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** BMC's counters and memcached's, as cell metrics (the share of GETs answered in XDP is what BMC is for). */
export function bmcMetrics(client: Metrics, bmc: BmcStats, memcached: Record<string, number>): Metrics {
  const gets = bmc.get_recv_count;
  return {
    ...client,
    bmc_get_recv: gets,
    bmc_hits: bmc.hit_count,
    bmc_misses: bmc.miss_count,
    bmc_updates: bmc.update_count,
    bmc_invalidations: bmc.invalidation_count,
    bmc_hit_ratio: gets ? bmc.hit_count / gets : 0,
    ...(memcached.cmd_get !== undefined ? { memcached_cmd_get: memcached.cmd_get } : {}),
  };
}

/**
 * A BMC that did not load fails its cell with the refused program, the verifier's own message and the log's last
 * lines, not only "exited before it was ready". The start error holds only the log's last 30 lines; on Linux 7.x
 * the verifier's message sits above a longer explanation, so the whole log is read again (stop is idempotent).
 */
async function startBmc(bmc: GuestServer): Promise<void> {
  try {
    await bmc.start({ text: BMC_READY_TEXT }, 600_000);
  } catch (e) {
    const msg = (e as Error).message;
    if (!msg.includes(BMC_LOAD_FAILED_TEXT) && !/failed to load/.test(msg)) throw e;
    const log = msg
      .split('\n')
      .map((l) => l.replace(/^ {2}\| /, ''))
      .join('\n');
    const found = bmcLoadFailure(await bmc.stop().catch(() => '')) ?? bmcLoadFailure(log);
    throw new LabError(found ? `BMC did not load: the verifier refused it. ${found}` : `BMC did not load. Its last lines:\n${log}`, ExitCode.checkFailed);
  }
}

/**
 * The memcache/bmc cell: memcached on BMC's port, BMC's XDP program in driver mode on the link NIC and its tc
 * egress program on clsact, memcaslap -U at the userspace cell's load, then BMC's counters (SIGUSR1) and
 * memcached's. No cache hit fails the cell. XDP and tc are detached afterwards whatever happened, and a NIC
 * left with either attached fails the cell too.
 */
export async function runBmcCell(ctx: CellContext, load: { threads: number; concurrency: number; config: string }): Promise<CellOutcome> {
  const memcached = new GuestServer(ctx.server, 'memcached', bmcMemcachedArgv(ctx.caps.serverCpus));
  const bmc = new GuestServer(ctx.server, 'bmc', bmcArgv(ctx.linkIf));
  let out: { metrics: Metrics } | undefined;
  let left: string[] = [];
  try {
    const [s] = await Promise.all([
      memcached.start({ tcpPort: BMC_PORT }, 60_000),
      ctx.exec(ctx.client, 'config', ['sh', '-c', 'cat > /tmp/memcaslap.cfg'], { input: load.config }),
    ]);
    await startBmc(bmc);
    ctx.phase('ready', Date.now() - s.readySeconds * 1000);
    await ctx.exec(ctx.server, 'bmc-tc', bmcAttachTcScript(ctx.linkIf));
    const client = (seconds: number) => bmcMemcaslapArgv(ctx.serverIp, { threads: load.threads, concurrency: load.concurrency, seconds });
    if (ctx.settings.warmup_s > 0) {
      ctx.phase('warm-up');
      await ctx.exec(ctx.client, 'warmup', client(ctx.settings.warmup_s), { timeoutMs: (ctx.settings.warmup_s + 120) * 1000 });
    }
    ctx.phase('measurement');
    const run = await bmc.during(() => ctx.exec(ctx.client, 'client', client(ctx.settings.duration_s), { timeoutMs: (ctx.settings.duration_s + 180) * 1000 }));
    ctx.phase('collection');
    const stats = parseBmcStats((await ctx.exec(ctx.server, 'bmc-stats', bmcCollectScript(bmc.process!.pid))).stdout);
    const mc = parseStatLines((await ctx.exec(ctx.server, 'memcached-stats', ['bash', '-c', MEMCACHED_STATS_SCRIPT, 'stats', String(BMC_PORT)])).stdout);
    const problem = bmcHitProblem(stats);
    if (problem) throw new LabError(`no BMC cache hit: ${problem}`, ExitCode.checkFailed);
    out = { metrics: bmcMetrics(parseMemcaslap(run.stdout), stats, mc) };
  } finally {
    ctx.phase('reset');
    // Kept even when the cell fails: BMC's log holds the verifier's output of a load that failed.
    await writeFile(join(ctx.cellDir, 'bmc.log'), await bmc.stop());
    left = remainingAttachments((await ctx.exec(ctx.server, 'bmc-detach', bmcDetachScript(ctx.linkIf), { allowFailure: true })).stdout);
    await writeFile(join(ctx.cellDir, 'server.log'), await memcached.stop());
  }
  // (A cell that already failed keeps its first error; the detach's output is in bmc-detach.stdout either way.)
  if (left.length) throw new LabError(`BMC left attached on ${ctx.linkIf} after its detach: ${left.join('; ')}`, ExitCode.checkFailed);
  return { metrics: out!.metrics };
}
