import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { retry, RetryAborted, RetryTimeout, type RetryClock } from '../core/retry.js';
import type { CellContext, CellPhase } from './types.js';

/**
 * Where KFlex's libbpf can place a heap map. It maps the heap at roundup(1 << 48, size) and, while the
 * kernel refuses, steps down by `size`, at most 1024 times (the heap mmap path of KFlex's libbpf). With
 * 4-level paging user space ends below 1 << 47, so only heaps of 256 GiB and more are reached within
 * 1024 steps; 64 and 128 GiB heaps (and any scaled-down heap) need 5-level paging (LA57) in the guest.
 */
export const HEAP_MMAP_BASE = 2 ** 48;
export const HEAP_MMAP_STEPS = 1024;
const GiB = 2 ** 30;

/** The highest user address + 1 for a paging mode (x86-64 TASK_SIZE: one guard page below the limit). */
export function userSpaceEnd(la57: boolean): number {
  return (la57 ? 2 ** 56 : 2 ** 47) - 4096;
}

/** Whether a heap of sizeGiB can be placed by libbpf's loop, and where (the first address that fits). */
export function heapPlacement(sizeGiB: number, la57: boolean): { fits: boolean; address?: number; steps?: number } {
  const size = sizeGiB * GiB;
  let addr = Math.ceil(HEAP_MMAP_BASE / size) * size;
  const end = userSpaceEnd(la57);
  for (let step = 0; step < HEAP_MMAP_STEPS; step++) {
    if (addr + size <= end) return { fits: true, address: addr, steps: step };
    addr -= size;
    if (addr < 0) break;
  }
  return { fits: false };
}

/** ffkx_heap(N) takes N in GiB, a power of two (the heap map's size must be one). */
export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * The RAM (MiB) a VM needs to hold a heap: the heap is allocated whole at map creation (vmalloc); ffkx's
 * allocator pools are carved out of it, not added; plus the guest's own needs. The guest kernel keeps
 * 1/64 of its RAM for struct page and maps the heap with 8 bytes of page table per 4 KiB page, so the
 * configured RAM must cover those too.
 */
export function heapVmMemoryMb(heapGiB: number, guestMb = 2048): number {
  return Math.ceil((heapGiB * 1024 * (1 + 1 / 512) + guestMb) * (64 / 63));
}

/**
 * The smallest heap each program can run in: the servers pre-fill ~5.8 GiB of pools before their ready line
 * (10M objects x 6 size classes, CreateDefaultHeap) and the fill consumes about twice that, so 32 GiB; the
 * benchmarks fill ~0.9 GB (x2), so 8 GiB.
 */
export const MIN_HEAP_GIB = { kmemcache: 32, kmemcached: 32, kredis: 32, bench: 8 } as const;

/**
 * A KFlex heap is not gone when its server exits. In KFlex-linux (kernel/bpf/heap.c, kernel/bpf/syscall.c)
 * the last reference to the heap map is dropped through the programs that use it: bpf_prog_put_deferred ->
 * __bpf_prog_put_noref -> call_rcu(__bpf_prog_put_rcu) -> bpf_prog_free, whose deferred work puts the used
 * maps; bpf_map_put -> bpf_map_free_in_work (after call_rcu / call_rcu_tasks_trace when the map asks for a
 * grace period) -> queue_work(system_unbound_wq, bpf_map_free_deferred) -> heap_map_free ->
 * bpf_map_area_free -> kvfree. So the pages come back some time after the process is gone, and the next
 * KFlex cell, on a server sized for one heap plus the guest, can allocate while the last one is still
 * being freed. Before each KFlex cell after the first, the runner waits (bounded, the cell's `heap-free`
 * phase) until the server's MemAvailable is back to what it was before the first KFlex cell.
 */

const MiB_KB = 1024;

/**
 * How far below its level before the first KFlex cell the server's MemAvailable may stay and count as back:
 * 512 MiB. It is 1/16 of the smallest heap the lab lets a profile configure (8 GiB, MIN_HEAP_GIB.bench), so
 * a heap still held can never pass for freed; it is well above what a guest drifts between cells (kernel log,
 * slab, the servers' logs: MemAvailable counts page cache as available, so logs barely move it); and the
 * server VM keeps 2 GiB beyond the heap for the guest (heapVmMemoryMb), which covers it.
 */
export const HEAP_FREE_MARGIN_KB = 512 * MiB_KB;

/** How often the wait reads /proc/meminfo (ms): one SSH round trip (~0.15 s over the guest's ControlMaster). */
export const HEAP_FREE_POLL_MS = 2000;

/**
 * How long a heap may take to be freed (s): the time a cell's bound grants to allocate and fill one
 * (cellBoundSeconds: 600 s, 1800 s under TCG). Freeing does less than allocating: no zeroing, no pools.
 */
export function heapFreeBoundSeconds(accel: CellContext['caps']['accel']): number {
  return accel === 'tcg' ? 1800 : 600;
}

/** MemAvailable (kB) from /proc/meminfo, or undefined when the text has none. */
export function memAvailableKb(meminfo: string): number | undefined {
  const m = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(meminfo);
  return m ? Number(m[1]) : undefined;
}

/** Whether the memory a heap held is back: MemAvailable within `marginKb` of its level before the first KFlex cell. */
export function heapFreed(beforeKb: number, nowKb: number, marginKb = HEAP_FREE_MARGIN_KB): boolean {
  return nowKb >= beforeKb - marginKb;
}

/** What a wait saw: the numbers status.json's phase and heap-free.json keep. */
export interface HeapFreeWait {
  before_kb: number;
  margin_kb: number;
  wanted_kb: number;
  seen_kb: number;
  waited_s: number;
  polls: number;
  bound_s: number;
  freed: boolean;
}

/** The memory of the last KFlex heap never came back within the bound: the cell fails with the numbers. */
export class HeapNotFreed extends Error {
  constructor(readonly wait: HeapFreeWait) {
    const mib = (kb: number) => `${Math.round(kb / MiB_KB).toLocaleString('en-US')} MiB`;
    super(
      `the last KFlex heap was not freed within ${wait.bound_s} s: the server's MemAvailable was ${mib(wait.seen_kb)}, ` +
        `wanted ${mib(wait.wanted_kb)} (${mib(wait.before_kb)} before the first KFlex cell - ${mib(wait.margin_kb)}); ` +
        `waited ${wait.waited_s} s over ${wait.polls} reads of /proc/meminfo. The kernel frees a heap after an RCU grace ` +
        'period in a workqueue (heap_map_free); a heap still held means its server or a program using it is alive',
    );
    this.name = 'HeapNotFreed';
  }
}

export interface HeapFreeOptions {
  beforeKb: number;
  /** Reads the server's MemAvailable (kB). */
  read: () => Promise<number>;
  boundMs: number;
  marginKb?: number;
  intervalMs?: number;
  /** Ends the wait (the cell was cancelled). */
  signal?: AbortSignal;
  clock?: RetryClock;
}

/** A pause the signal ends early (the wait then stops at its next check). */
function pauseUnless(signal: AbortSignal | undefined): RetryClock {
  return {
    now: Date.now,
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done, { once: true });
      }),
  };
}

/** Wait until heapFreed holds for the server's MemAvailable; past the bound, throw HeapNotFreed with the numbers. */
export async function waitHeapFreed(o: HeapFreeOptions): Promise<HeapFreeWait> {
  const clock = o.clock ?? pauseUnless(o.signal);
  const marginKb = o.marginKb ?? HEAP_FREE_MARGIN_KB;
  const start = clock.now();
  let polls = 0;
  let seenKb = Number.NaN;
  const result = (freed: boolean): HeapFreeWait => ({
    before_kb: o.beforeKb,
    margin_kb: marginKb,
    wanted_kb: o.beforeKb - marginKb,
    seen_kb: seenKb,
    waited_s: Math.round(clock.now() - start) / 1000,
    polls,
    bound_s: o.boundMs / 1000,
    freed,
  });
  try {
    await retry(
      async () => {
        polls++;
        seenKb = await o.read();
        return heapFreed(o.beforeKb, seenKb, marginKb) ? { done: true, value: true } : { done: false, why: `MemAvailable ${seenKb} kB` };
      },
      {
        what: 'the last KFlex heap freed',
        timeoutMs: o.boundMs,
        intervalMs: o.intervalMs ?? HEAP_FREE_POLL_MS,
        clock,
        abort: () => (o.signal?.aborted ? 'the cell was cancelled' : undefined),
      },
    );
    return result(true);
  } catch (e) {
    if (e instanceof RetryTimeout) throw new HeapNotFreed(result(false));
    if (e instanceof RetryAborted) throw new Error(`waiting for the last KFlex heap to be freed: ${e.why} after ${result(false).waited_s} s`);
    throw e;
  }
}

/** What the gate needs of a cell's context: the server's meminfo through ctx.exec, its phase clock, its signal. */
type GateCtx = Pick<CellContext, 'exec' | 'server' | 'signal' | 'phase' | 'log' | 'cellDir' | 'caps'>;

/** The server's MemAvailable (kB), read over the guest exec path; the last read stays in the cell dir as meminfo.*. */
export async function readMemAvailableKb(ctx: Pick<GateCtx, 'exec' | 'server'>): Promise<number> {
  const r = await ctx.exec(ctx.server, 'meminfo', ['cat', '/proc/meminfo']);
  const kb = memAvailableKb(r.stdout);
  if (kb === undefined) throw new Error(`no MemAvailable in the server's /proc/meminfo: ${r.stdout.trim().split('\n')[0] ?? '(empty)'}`);
  return kb;
}

/**
 * Between KFlex cells, one per run: the first cell that allocates a heap reads the baseline; every later
 * one waits for the last heap's memory before it starts. Cells without a heap pass untouched.
 */
export class HeapFreeGate {
  private beforeKb: number | undefined;
  private heapRan = false;

  constructor(private readonly o: { intervalMs?: number; boundMs?: number; marginKb?: number; clock?: RetryClock } = {}) {}

  /** Whether this cell waits for a heap before it starts (its bound grows by heapFreeBoundSeconds). */
  waits(cell: { heapGiB?: number }): boolean {
    return !!cell.heapGiB && this.heapRan;
  }

  /** Run before the cell's own work: the baseline, or the wait (the `heap-free` phase), then `server-start`. */
  async before(cell: { heapGiB?: number }, ctx: GateCtx, next: CellPhase = 'server-start'): Promise<HeapFreeWait | undefined> {
    if (!cell.heapGiB) return undefined;
    const read = () => readMemAvailableKb(ctx);
    if (this.beforeKb === undefined) {
      this.beforeKb = await read();
      this.heapRan = true;
      return undefined;
    }
    ctx.phase('heap-free');
    const boundMs = this.o.boundMs ?? heapFreeBoundSeconds(ctx.caps.accel) * 1000;
    const opts = { beforeKb: this.beforeKb, read, boundMs, marginKb: this.o.marginKb, intervalMs: this.o.intervalMs, signal: ctx.signal, clock: this.o.clock };
    try {
      const wait = await waitHeapFreed(opts);
      await writeFile(join(ctx.cellDir, 'heap-free.json'), `${JSON.stringify(wait, null, 2)}\n`);
      if (wait.polls > 1) ctx.log(`heap-free: the last KFlex heap's memory came back after ${wait.waited_s} s`);
      ctx.phase(next);
      return wait;
    } catch (e) {
      if (e instanceof HeapNotFreed) await writeFile(join(ctx.cellDir, 'heap-free.json'), `${JSON.stringify(e.wait, null, 2)}\n`);
      throw e;
    }
  }
}
