import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testCaps } from './support/caps.js';
import { tempDir } from '../helpers.js';
import type { RetryClock } from '../../core/retry.js';
import type { Host } from '../../core/host.js';
import { EventBus } from '../../core/events.js';
import { loadConfig } from '../../core/config.js';
import { planCells } from '../../experiments/cells.js';
import { runCells } from '../../experiments/runner.js';
import type { CellPhase, Experiment } from '../../experiments/types.js';
import {
  HEAP_FREE_MARGIN_KB,
  HeapFreeGate,
  HeapNotFreed,
  heapFreed,
  memAvailableKb,
  waitHeapFreed,
  type HeapFreeWait,
  MIN_HEAP_GIB,
  heapPlacement,
  isPowerOfTwo,
  heapVmMemoryMb,
} from '../../experiments/heaps.js';

describe("KFlex heap placement (libbpf's roundup(1 << 48, size), stepping down by size at most 1024 times)", () => {
  it('without LA57 only the 256 GiB heaps fit below the 47-bit user space', () => {
    expect(heapPlacement(256, false)).toMatchObject({ fits: true, steps: 514 });
    expect(heapPlacement(128, false).fits).toBe(false);
    expect(heapPlacement(64, false).fits).toBe(false);
    expect(heapPlacement(16, false).fits).toBe(false);
  });
  it('with LA57 every size fits at 1 << 48 itself', () => {
    for (const g of [1, 16, 64, 128, 256]) expect(heapPlacement(g, true)).toEqual({ fits: true, address: 2 ** 48, steps: 0 });
  });
  it('sizes are powers of two; a VM needs the heap (the pools live inside it) and the guest', () => {
    expect([1, 2, 64, 256].every(isPowerOfTwo)).toBe(true);
    expect([0, 3, 96, 1.5].some(isPowerOfTwo)).toBe(false);
    expect(heapVmMemoryMb(64)).toBe(Math.ceil((64 * 1024 * (1 + 1 / 512) + 2048) * (64 / 63)));
    // 256 GiB of heap wants ~264 GiB of VM RAM, not 258: struct page and the heap's page tables.
    expect(Math.round(heapVmMemoryMb(256) / 1024)).toBe(263);
  });
});

describe('scaled heaps are rewritten into the copied KFlex tree before build.sh', () => {
  it("the artifact's sizes need no hook; each scaled program gets a rewrite of its own file and a check", async () => {
    const { heapRewriteHooks } = await import('../../images/kflex.js');
    expect(heapRewriteHooks({ kmemcache: 128, kmemcached: 256, kredis: 256, bench: 64 }, '/build/KFlex')).toEqual([]);
    const hooks = heapRewriteHooks({ kmemcache: 32, kmemcached: 256, kredis: 32, bench: 8 }, '/build/KFlex');
    expect(hooks).toHaveLength(6);
    expect(hooks[0]).toBe(`chroot "$1" sed -i -E 's/^ffkx_heap\\(128, 0\\) heap SEC/ffkx_heap(32, 0) heap SEC/' /build/KFlex/bpf/ffkx_memcache.bpf.c`);
    expect(hooks.join('\n')).not.toMatch(/ffkx_memcached/);
    expect(hooks[5]).toMatch(/grep -cE "\^ffkx_heap\\\(8, 0\\\) heap SEC" \/build\/KFlex\/bpf\/bench_data_structures\.bpf\.c/);
  });

  // Opt-in: KFLEX_SRC=/path/to/a/KFlex/checkout runs the rewrite (without chroot) on a copy of its bpf/.
  it.skipIf(!process.env.KFLEX_SRC)('on the real sources (KFLEX_SRC), every rewrite takes and its check passes', async () => {
    const { heapRewriteHooks } = await import('../../images/kflex.js');
    const { cpSync, mkdtempSync, readFileSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    const dir = mkdtempSync('/tmp/kflex-heaps-');
    cpSync(`${process.env.KFLEX_SRC}/bpf`, `${dir}/bpf`, { recursive: true });
    for (const h of heapRewriteHooks({ kmemcache: 32, kmemcached: 32, kredis: 32, bench: 8 }, dir)) execFileSync('sh', ['-c', h.replace(/^chroot "\$1" /, '')]);
    expect(readFileSync(`${dir}/bpf/ffkx_redis.bpf.c`, 'utf8')).toMatch(/^ffkx_heap\(32, 0\) heap SEC/m);
  });
});

const GiB_KB = 1024 * 1024;
const BEFORE = 20 * GiB_KB;

/** A clock whose pauses only move its time: a wait of minutes runs in microseconds. */
function fakeClock(): RetryClock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

/** A reader answering these MemAvailable values in turn (the last one from then on), counting its reads. */
function reader(values: number[]) {
  const r = { reads: 0, read: async () => values[Math.min(r.reads++, values.length - 1)]! };
  return r;
}

/**
 * /proc/meminfo as Linux prints it (assembled: the first lines of its layout, `%-16s%8lu kB`), with this
 * MemAvailable.
 */
const meminfo = (availKb: number) =>
  [
    `MemTotal:       ${String(24 * GiB_KB).padStart(8)} kB`,
    `MemFree:        ${String(availKb - 4096).padStart(8)} kB`,
    `MemAvailable:   ${String(availKb).padStart(8)} kB`,
    'Buffers:            2048 kB',
    'Cached:           102400 kB',
    '',
  ].join('\n');

describe('heap freed: the rule', () => {
  it('MemAvailable back within the margin of its level before the first KFlex cell', () => {
    expect(heapFreed(BEFORE, BEFORE)).toBe(true);
    expect(heapFreed(BEFORE, BEFORE + 1)).toBe(true);
    expect(heapFreed(BEFORE, BEFORE - HEAP_FREE_MARGIN_KB)).toBe(true);
    expect(heapFreed(BEFORE, BEFORE - HEAP_FREE_MARGIN_KB - 1)).toBe(false);
    expect(heapFreed(BEFORE, BEFORE - 8 * GiB_KB)).toBe(false);
    expect(heapFreed(BEFORE, BEFORE - 100, 50)).toBe(false);
  });

  it('the margin is far below the smallest heap a profile may configure, so a heap still held never passes', () => {
    const smallestKb = Math.min(...Object.values(MIN_HEAP_GIB)) * GiB_KB;
    expect(HEAP_FREE_MARGIN_KB).toBeLessThanOrEqual(smallestKb / 16);
  });

  it('reads MemAvailable from /proc/meminfo', () => {
    expect(memAvailableKb(meminfo(123456))).toBe(123456);
    expect(memAvailableKb('MemTotal:  1000 kB\n')).toBeUndefined();
  });
});

describe('waiting for a heap to be freed (injected clock and reader)', () => {
  it('freed at once: one read, no wait', async () => {
    const clock = fakeClock();
    const r = reader([BEFORE]);
    const w = await waitHeapFreed({ beforeKb: BEFORE, read: r.read, boundMs: 600_000, intervalMs: 2000, clock });
    expect(w).toMatchObject({ freed: true, polls: 1, waited_s: 0, seen_kb: BEFORE, wanted_kb: BEFORE - HEAP_FREE_MARGIN_KB, bound_s: 600 });
  });

  it('freed after polls: waits one interval per read that is still short', async () => {
    const clock = fakeClock();
    const r = reader([BEFORE - 128 * GiB_KB, BEFORE - 40 * GiB_KB, BEFORE - 1024]);
    const w = await waitHeapFreed({ beforeKb: BEFORE, read: r.read, boundMs: 600_000, intervalMs: 2000, clock });
    expect(w).toMatchObject({ freed: true, polls: 3, waited_s: 4, seen_kb: BEFORE - 1024 });
    expect(r.reads).toBe(3);
  });

  it('never freed: fails past the bound with wanted, seen and waited', async () => {
    const clock = fakeClock();
    const r = reader([BEFORE - 10 * GiB_KB]);
    const err = await waitHeapFreed({ beforeKb: BEFORE, read: r.read, boundMs: 10_000, intervalMs: 2000, clock }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HeapNotFreed);
    const e = err as HeapNotFreed;
    expect(e.wait).toEqual({
      before_kb: BEFORE,
      margin_kb: HEAP_FREE_MARGIN_KB,
      wanted_kb: BEFORE - HEAP_FREE_MARGIN_KB,
      seen_kb: BEFORE - 10 * GiB_KB,
      waited_s: 10,
      polls: 6,
      bound_s: 10,
      freed: false,
    } satisfies HeapFreeWait);
    expect(e.message).toContain('the last KFlex heap was not freed within 10 s');
    expect(e.message).toContain("the server's MemAvailable was 10,240 MiB, wanted 19,968 MiB (20,480 MiB before the first KFlex cell - 512 MiB)");
    expect(e.message).toContain('waited 10 s over 6 reads of /proc/meminfo');
  });

  it('stops when the cell is cancelled, even in the middle of a pause', async () => {
    const abort = new AbortController();
    const r = reader([0]);
    const t0 = Date.now();
    setTimeout(() => abort.abort(), 50);
    await expect(waitHeapFreed({ beforeKb: BEFORE, read: r.read, boundMs: 600_000, intervalMs: 60_000, signal: abort.signal })).rejects.toThrow(
      /waiting for the last KFlex heap to be freed: the cell was cancelled/,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.reads).toBe(1);
  });
});

describe('the gate between KFlex cells', () => {
  /** A cell context whose server answers /proc/meminfo with these MemAvailable values in turn. */
  function ctxWith(values: number[]) {
    const phases: CellPhase[] = [];
    const r = { reads: 0 };
    const server: Host = { name: 'server', exec: async () => ({ code: 0, stdout: '', stderr: '' }), copyIn: async () => {}, copyOut: async () => {} };
    const ctx = {
      server,
      cellDir: tempDir(),
      signal: new AbortController().signal,
      caps: testCaps({ accel: 'kvm' }),
      phase: (p: CellPhase) => void phases.push(p),
      log: () => {},
      exec: async (_h: Host, name: string, argv: readonly string[]) => {
        expect([name, ...argv]).toEqual(['meminfo', 'cat', '/proc/meminfo']);
        return { code: 0, stdout: meminfo(values[Math.min(r.reads++, values.length - 1)]!), stderr: '' };
      },
    };
    return { ctx, phases, r };
  }

  it('is not applied to cells without a heap; the first KFlex cell reads the baseline, the next one waits', async () => {
    const gate = new HeapFreeGate({ clock: fakeClock(), intervalMs: 2000 });
    const plain = ctxWith([BEFORE]);
    expect(gate.waits({})).toBe(false);
    expect(await gate.before({}, plain.ctx)).toBeUndefined();
    expect(plain.r.reads).toBe(0);
    expect(plain.phases).toEqual([]);

    const first = ctxWith([BEFORE]);
    expect(gate.waits({ heapGiB: 8 })).toBe(false);
    expect(await gate.before({ heapGiB: 8 }, first.ctx)).toBeUndefined();
    expect(first.r.reads).toBe(1);
    expect(first.phases).toEqual([]);

    const between = ctxWith([BEFORE - 8 * GiB_KB]);
    expect(gate.waits({})).toBe(false);
    await gate.before({}, between.ctx);
    expect(between.r.reads).toBe(0);

    const second = ctxWith([BEFORE - 8 * GiB_KB, BEFORE - 4 * GiB_KB, BEFORE]);
    expect(gate.waits({ heapGiB: 8 })).toBe(true);
    const w = await gate.before({ heapGiB: 8 }, second.ctx);
    expect(w).toMatchObject({ freed: true, polls: 3, waited_s: 4 });
    expect(second.phases).toEqual(['heap-free', 'server-start']);
    expect(JSON.parse(readFileSync(join(second.ctx.cellDir, 'heap-free.json'), 'utf8'))).toMatchObject({ freed: true, polls: 3 });
  });
});

describe('the runner waits between KFlex cells', () => {
  const exp = (ran: string[]): Experiment => ({
    id: 'memcache',
    title: 't',
    claims: [],
    headline: 'tps',
    chart: 'variants',
    grid: {},
    parsers: {},
    variants: [
      { id: 'kflex', description: '', requires: [], heapGiB: 8 },
      { id: 'userspace', description: '', requires: [] },
    ],
    estimateCellSeconds: () => 1,
    async runCell(ctx, v) {
      ran.push(`${v.id}/${ctx.rep}`);
      return { metrics: { tps: 1 } };
    },
  });

  /** kflex/1, userspace/1, kflex/2, userspace/2 against a server whose MemAvailable answers are these; real time, 1 ms polls. */
  async function run(values: number[], boundMs: number) {
    const ran: string[] = [];
    const profile = loadConfig({ profile: 'smoke', env: {}, set: ['experiments.memcache.variants=[kflex,userspace]'] }).profile;
    const [k1, k2, u1, u2] = planCells(profile, { only: ['memcache'] }, [exp(ran)]);
    const cells = [k1!, u1!, k2!, u2!];
    let reads = 0;
    const server: Host = {
      name: 'server',
      exec: async (argv) => {
        if (argv.join(' ') === 'cat /proc/meminfo') return { code: 0, stdout: meminfo(values[Math.min(reads++, values.length - 1)]!), stderr: '' };
        return { code: 0, stdout: argv.join(' ').includes('wc -l') ? '10\n' : '[  1.0] kernel line\n', stderr: '' };
      },
      copyIn: async () => {},
      copyOut: async () => {},
    };
    const runDir = tempDir();
    const env = {
      runDir,
      server,
      client: { ...server, name: 'client' },
      serverIp: '10.77.0.1',
      linkIf: 'eth1',
      caps: testCaps({ serverMemoryMb: 16384, la57: true }),
      bus: new EventBus(),
      heapGate: new HeapFreeGate({ intervalMs: 1, boundMs }),
    };
    const { records } = await runCells(cells, env);
    return { records, ran, reads: () => reads, dirs: cells.map((c) => join(runDir, c.path)) };
  }

  it('records the wait as the heap-free phase of the second KFlex cell only', async () => {
    const { records, ran, reads, dirs } = await run([BEFORE, BEFORE - 8 * GiB_KB, BEFORE - 4 * GiB_KB, BEFORE], 30_000);
    expect(records.map((r) => `${r.variant}/${r.rep}:${r.status}`)).toEqual(['kflex/1:ok', 'userspace/1:ok', 'kflex/2:ok', 'userspace/2:ok']);
    expect(ran).toEqual(['kflex/1', 'userspace/1', 'kflex/2', 'userspace/2']);
    expect(reads()).toBe(4);
    expect(Object.keys(records[2]!.phases ?? {})[0]).toBe('heap-free');
    for (const i of [0, 1, 3]) expect(records[i]!.phases).not.toHaveProperty('heap-free');
    expect(JSON.parse(readFileSync(join(dirs[2]!, 'heap-free.json'), 'utf8'))).toMatchObject({ freed: true, polls: 3 });
    for (const i of [0, 1, 3]) expect(existsSync(join(dirs[i]!, 'heap-free.json'))).toBe(false);
  });

  it('fails the next KFlex cell with the numbers when the memory never comes back, and does not start it', async () => {
    const { records, ran, dirs } = await run([BEFORE, BEFORE - 8 * GiB_KB], 200);
    expect(records.map((r) => `${r.variant}/${r.rep}:${r.status}`)).toEqual(['kflex/1:ok', 'userspace/1:ok', 'kflex/2:failed', 'userspace/2:ok']);
    expect(ran).toEqual(['kflex/1', 'userspace/1', 'userspace/2']);
    expect(records[2]!.reason).toMatch(
      /^the last KFlex heap was not freed within 0\.2 s: the server's MemAvailable was 12,288 MiB, wanted 19,968 MiB .* waited \d+(\.\d+)? s over \d+ reads/,
    );
    expect(records[2]!.phases).toHaveProperty('heap-free');
    expect(records[2]!.phases).not.toHaveProperty('server-start');
    expect(JSON.parse(readFileSync(join(dirs[2]!, 'heap-free.json'), 'utf8'))).toMatchObject({ freed: false, seen_kb: BEFORE - 8 * GiB_KB });
  });
});
