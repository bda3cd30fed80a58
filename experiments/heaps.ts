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
