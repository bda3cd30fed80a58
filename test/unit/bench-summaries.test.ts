import { describe, it, expect } from 'vitest';
import type { CellRecord } from '../../experiments/cells.js';
import { arenaLines, arenaSummary, bmcLines, bmcMissing, bmcSummary } from '../bench/summaries.js';

// The cells.json records below are ASSEMBLED by hand (not captured from a run): the shape writeSummary writes
// (experiments/summary.ts), with the metric names the cells record: memcache's tps (parseMemcaslap) and
// bmc_hits/bmc_hit_ratio (bmcMetrics, experiments/bmc.ts); the arena's `Dist/name.ns_per_op` (gbenchMetrics).

const cell = (
  experiment: string,
  variant: string,
  rep: number,
  status: CellRecord['status'],
  metrics?: Record<string, number>,
  reason?: string,
): CellRecord => ({
  experiment,
  variant,
  params: {},
  rep,
  status,
  started: '2026-12-02T16:00:00.000Z',
  seconds: 30,
  ...(metrics ? { metrics } : {}),
  ...(reason ? { reason } : {}),
});

const SKIP_KFLEX = 'guest kernel 7.3.4 is not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF (use the paper profile)';
const NO_BMC =
  '/opt/bmc/bmc is not in the image: image.bmc is false in this profile, or the bmc stage could not fetch rs3lab/bmc-cache ' +
  '(its manifest says why; pass --source bmc=/path/to/bmc-cache)';

describe('bench summaries: bmc (assembled cells.json)', () => {
  const run: CellRecord[] = [
    cell('memcache', 'kflex', 1, 'skipped', undefined, SKIP_KFLEX),
    cell('memcache', 'userspace', 1, 'ok', { tps: 2000, ops: 20000 }),
    cell('memcache', 'userspace', 2, 'ok', { tps: 1000, ops: 10000 }),
    cell('memcache', 'userspace', 3, 'ok', { tps: 3000, ops: 30000 }),
    cell('memcache', 'bmc', 1, 'ok', { tps: 3000, bmc_hits: 2935, bmc_hit_ratio: 0.9 }),
    cell('memcache', 'bmc', 2, 'failed', undefined, 'no BMC cache hit: BMC saw no GET request\nmore'),
    cell('memcache', 'bmc', 3, 'ok', { tps: 4500, bmc_hits: 2670, bmc_hit_ratio: 0.5 }),
    cell('mechanisms', 'probe', 1, 'ok', {}),
  ];

  it('takes the median and min..max over the ok repetitions of each variant', () => {
    const s = bmcSummary(run);
    expect(s.userspace.tps).toEqual({ median: 2000, min: 1000, max: 3000, n: 3 });
    expect(s.bmc.tps).toEqual({ median: 3750, min: 3000, max: 4500, n: 2 });
    expect(s.bmc.cells).toBe(3);
    expect(s.bmc.ok.map((r) => [r.rep, r.hits])).toEqual([
      [1, 2935],
      [3, 2670],
    ]);
    expect(s.bmc.notOk).toEqual([{ rep: 2, status: 'failed', reason: 'no BMC cache hit: BMC saw no GET request' }]);
  });

  it('sets the ratio of medians beside the spread of rep-by-rep ratios (only repetitions ok on both sides)', () => {
    const s = bmcSummary(run);
    // 3750 / 2000; rep 1: 3000 / 2000, rep 3: 4500 / 3000 (rep 2 of bmc failed).
    expect(s.ratio).toEqual({ ofMedians: 1.875, min: 1.5, max: 1.5, n: 2 });
    const lines = Object.fromEntries(bmcLines(s, true));
    expect(lines['  memcache/userspace tps']).toBe('median 2000 tps (1000..3000, n=3) of 3 cells; per rep 2000 1000 3000');
    expect(lines['  memcache/bmc tps']).toBe(
      'median 3750 tps (3000..4500, n=2) of 3 cells; per rep 3000 4500; not ok: rep 2 failed: no BMC cache hit: BMC saw no GET request',
    );
    expect(lines['  BMC hits per repetition (bmc_hits)']).toBe('rep 1 2935 (90% of GETs), rep 3 2670 (50% of GETs)');
    expect(lines['  bmc / userspace tps']).toBe('1.88 (ratio of medians); rep by rep 1.50..1.50 (n=2 pairs)');
  });

  it('says plainly that the bmc cells were skipped and names KFLEX_BMC_SRC when it was not set', () => {
    const skipped = [...run.filter((r) => r.variant === 'userspace'), ...[1, 2, 3].map((rep) => cell('memcache', 'bmc', rep, 'skipped', undefined, NO_BMC))];
    const s = bmcSummary(skipped);
    expect(s.ratio).toBeUndefined();
    expect(bmcMissing(s, false)).toMatch(/^all 3 skipped, BMC is not built \(KFLEX_BMC_SRC is not set; .*\): skipped: \/opt\/bmc\/bmc is not in the image/);
    // With a source given, a skip is not blamed on the variable.
    expect(bmcMissing(s, true)).toMatch(/^none ok of 3: skipped: /);
    const lines = Object.fromEntries(bmcLines(s, false));
    expect(lines['  memcache/bmc tps']).toMatch(/^not measured: all 3 skipped, BMC is not built \(KFLEX_BMC_SRC is not set/);
    expect(lines['  bmc / userspace tps']).toBe('no ratio: needs an ok repetition of both variants');
    expect(lines['  BMC hits per repetition (bmc_hits)']).toBeUndefined();
  });

  it('reads an ok cell without tps as not ok, and a run without memcache cells as such', () => {
    const s = bmcSummary([cell('memcache', 'userspace', 1, 'ok', { ops: 1 })]);
    expect(s.userspace.notOk).toEqual([{ rep: 1, status: 'ok', reason: 'no tps metric' }]);
    expect(bmcMissing(bmcSummary([]), false)).toBe('no memcache/bmc cell in this run');
  });
});

describe('bench summaries: arena (assembled cells.json)', () => {
  const rep = (n: number, ns: Record<string, number>) =>
    cell(
      'datastructures',
      'arena',
      n,
      'ok',
      Object.fromEntries(
        Object.entries(ns).flatMap(([k, v]) => [
          [`Zipfian/${k}.ns_per_op`, v],
          [`Zipfian/${k}.items_per_second`, 1e9 / v],
        ]),
      ),
    );
  const run: CellRecord[] = [
    rep(1, {
      empty_floor: 80,
      bpf_hashmap_update: 1000,
      arena_hashmap_update: 1100,
      bpf_rbtree_update: 2000,
      arena_rbtree_update: 1000,
      arena_skiplist_update: 3000,
    }),
    rep(2, {
      empty_floor: 360,
      bpf_hashmap_update: 1000,
      arena_hashmap_update: 900,
      bpf_rbtree_update: 2500,
      arena_rbtree_update: 2500,
      arena_skiplist_update: 5000,
    }),
    rep(3, { empty_floor: 100, bpf_hashmap_update: 1200, arena_hashmap_update: 1200, bpf_rbtree_update: 2000, arena_rbtree_update: 1500 }),
    cell('datastructures', 'arena', 4, 'failed', undefined, 'kflex-arena-bench: 1 structure check(s) failed: Zipfian/arena_rbtree_update: 3 keys missing'),
  ];

  it('pairs arena_X with bpf_X within each repetition and takes the median ratio with its range', () => {
    const s = arenaSummary(run);
    expect(s).toMatchObject({ cells: 4, ok: 3 });
    expect(s.notOk).toEqual([
      { rep: 4, status: 'failed', reason: 'kflex-arena-bench: 1 structure check(s) failed: Zipfian/arena_rbtree_update: 3 keys missing' },
    ]);
    expect(s.pairs.map((p) => `${p.dist}/${p.benchmark}`)).toEqual(['Zipfian/hashmap_update', 'Zipfian/rbtree_update']);
    const [hash, rb] = s.pairs;
    // Ratios 1.1, 0.9, 1.0; 0.5, 1.0, 0.75.
    expect(hash!.ratio).toMatchObject({ min: 0.9, max: 1.1, n: 3 });
    expect(hash!.ratio!.median).toBeCloseTo(1.0);
    expect(rb!.ratio).toEqual({ median: 0.75, min: 0.5, max: 1.0, n: 3 });
    expect(rb!.arena).toEqual({ median: 1500, min: 1000, max: 2500, n: 3 });
    expect(s.floor.Zipfian).toEqual({ median: 100, min: 80, max: 360, n: 3 });
    expect(s.unpaired).toEqual([{ dist: 'Zipfian', benchmark: 'skiplist_update', ns: { median: 4000, min: 3000, max: 5000, n: 2 } }]);
  });

  it('prints each pair beside the floor', () => {
    const lines = Object.fromEntries(arenaLines(arenaSummary(run)));
    expect(lines['  datastructures/arena cells']).toMatch(/^3 ok of 4; not ok: rep 4 failed: kflex-arena-bench: 1 structure check/);
    expect(lines['  Zipfian/empty_floor (the floor)']).toBe('median 100 ns/op (80..360, n=3)');
    expect(lines['  Zipfian/hashmap_update arena/bpf']).toBe('median 1.00 (0.90..1.10, n=3); arena 1100 / bpf 1000 ns/op; floor 100 ns/op');
    expect(lines['  Zipfian/rbtree_update arena/bpf']).toBe('median 0.75 (0.50..1.00, n=3); arena 1500 / bpf 2000 ns/op; floor 100 ns/op');
    expect(lines['  Zipfian/arena_skiplist_update (no bpf_ pair)']).toBe('median 4000 ns/op (3000..5000, n=2)');
  });

  it('does not pair sides from different repetitions, and says so when no repetition has both', () => {
    const s = arenaSummary([rep(1, { arena_hashmap_delete: 500 }), rep(2, { bpf_hashmap_delete: 400, arena_hashmap_delete: 600 })]);
    expect(s.pairs[0]!.ratio).toEqual({ median: 1.5, min: 1.5, max: 1.5, n: 1 });
    const lone = arenaSummary([rep(1, { arena_list_lookup: 500 }), rep(2, { bpf_list_lookup: 400 })]);
    expect(lone.pairs[0]!.ratio).toBeUndefined();
    expect(arenaLines(lone).find(([k]) => k.includes('list_lookup'))![1]).toMatch(
      /^no ratio \(a side has no ok repetition\); arena 500 \/ bpf 400 ns\/op; floor - ns\/op$/,
    );
  });

  it('prints only the cell count when no cell was ok (a skipped variant gives its reason)', () => {
    const lines = arenaLines(arenaSummary([cell('datastructures', 'arena', 1, 'skipped', undefined, 'guest kernel has no BPF arenas')]));
    expect(lines).toEqual([['  datastructures/arena cells', '0 ok of 1; not ok: rep 1 skipped: guest kernel has no BPF arenas']]);
  });
});
