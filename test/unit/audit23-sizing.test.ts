import { describe, it, expect } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { planCells } from '../../experiments/cells.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { heapVmMemoryMb } from '../../experiments/heaps.js';
import { datastructures } from '../../experiments/kflex-bench.js';
import { forecast, parseAssumeHost, sizeServer } from '../../lab/sizing.js';

// Issue 23 item 3 within one cell: ffkx-bench frees and reallocates its 64 GiB heap per benchmark (31 under bench.sh's
// Zipfian filter), and a heap is freed asynchronously (RCU, then a workqueue), so the server VM holds two of them.
const host = (spec: string) => parseAssumeHost(spec, { ramMb: 0, cpus: 0, la57: false, kvm: false, source: 'this host' });
const paper = loadConfig({ profile: 'paper', env: {} });

describe('server VM sizing: room for two overlapping ffkx-bench heaps', () => {
  it('datastructures/kflex declares that it holds two of its heaps at once', () => {
    expect(datastructures.variants.find((v) => v.id === 'kflex')).toMatchObject({ heapGiB: 64, heapCopies: 2 });
  });

  it('the paper run on 256 GiB: the 128 GiB memcache heap already covers two 64 GiB bench heaps (same 132.3 GiB), and says so', () => {
    const s = sizeServer(paper.profile, host('ram=256G,cpus=64,la57,kvm'), planCells(paper.profile, {}, EXPERIMENTS));
    expect(s.memoryMb).toBe(heapVmMemoryMb(128));
    expect(heapVmMemoryMb(2 * 64)).toBe(heapVmMemoryMb(128));
    expect(s.why).toMatch(/^auto: the 128 GiB heap \+ the guest/);
    expect(s.why).toContain(
      "datastructures/kflex's 64 GiB heap counted twice (it frees and reallocates its heap per benchmark, and a heap is freed asynchronously)",
    );
  });

  it('a datastructures-only run is sized for two 64 GiB heaps, not one', () => {
    const cells = planCells(paper.profile, { only: ['datastructures'] }, EXPERIMENTS);
    const s = sizeServer(paper.profile, host('ram=256G,cpus=64,la57,kvm'), cells);
    expect(s.memoryMb).toBe(heapVmMemoryMb(128));
    expect(s.memoryMb).toBeGreaterThan(heapVmMemoryMb(64));
    expect(s.why).toMatch(/^auto: 2 heaps of 64 GiB \+ the guest, its struct pages and page tables; /);
  });

  it('a host that holds one 64 GiB heap but not two: sized for one, the cell still runs, and the sizing says what two would need', () => {
    const cells = planCells(paper.profile, { only: ['datastructures'] }, EXPERIMENTS);
    const h = host('ram=112G,cpus=64,la57,kvm'); // 112 - 8 (client) - 4 (reserve) = 100 GiB available
    const f = forecast(paper, cells, h);
    expect(f.server.memoryMb).toBe(heapVmMemoryMb(64));
    expect(f.server.why).toContain("datastructures/kflex's 2 heaps of 64 GiB at once would need 132 GiB: sized for one");
    expect(f.rows.find((r) => r.experiment === 'datastructures' && r.variant === 'kflex')?.verdict).toBe('run');
  });

  it('a host that holds not even one 64 GiB heap: the cell is skipped, and the sizing never says "sized for one"', () => {
    const cells = planCells(paper.profile, { only: ['datastructures'] }, EXPERIMENTS);
    const s = sizeServer(paper.profile, host('ram=64G,cpus=64,la57,kvm'), cells); // 64 - 8 - 4 = 52 GiB available
    expect(s.why).toMatch(/^auto: no KFlex heap fits; .*; 64 GiB heap\(s\) would need 67 GiB$/);
    expect(s.why).not.toContain('sized for one');
  });

  it('paper-scaled: two 8 GiB bench heaps fit inside the sizing for the 32 GiB servers, unchanged', () => {
    const scaled = loadConfig({ profile: 'paper-scaled', env: {} });
    const s = sizeServer(scaled.profile, host('ram=64G,cpus=16,la57,kvm'), planCells(scaled.profile, {}, EXPERIMENTS));
    expect(s.memoryMb).toBe(heapVmMemoryMb(32));
    expect(s.why).toContain("datastructures/kflex's 8 GiB heap counted twice");
  });
});
