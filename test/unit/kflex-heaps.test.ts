import { describe, it, expect } from 'vitest';
import { heapPlacement, isPowerOfTwo, heapVmMemoryMb } from '../../experiments/heaps.js';

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
