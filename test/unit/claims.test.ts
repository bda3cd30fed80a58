import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summarize } from '../../experiments/summary.js';
import type { CellRecord } from '../../experiments/cells.js';
import type { Params } from '../../experiments/types.js';
import { judgeClaims, loadClaims, type Claim } from '../../report/claims.js';
import { bootstrapRatio, judgeInterval, parseExpect, seededRandom, MIN_REPETITIONS } from '../../report/interval.js';
import { regexOf, tempDir } from '../helpers.js';

// Constructed repetitions: one cell per value, so each verdict's input is known exactly.
const cells = (experiment: string, variant: string, metric: string, values: number[], params: Params = {}): CellRecord[] =>
  values.map((v, i) => ({ experiment, variant, params, rep: i + 1, status: 'ok', metrics: { [metric]: v }, started: '', seconds: 1 }));
const claims = loadClaims();
const judge = (records: CellRecord[], id: string) => judgeClaims(claims, summarize(records), records).find((v) => v.claim.id === id)!;
const zadd = (kflex: number[], userspace: number[]) =>
  judge([...cells('redis-zadd', 'kflex', 'rps', kflex), ...cells('redis-zadd', 'userspace', 'rps', userspace)], 'redis-zadd-throughput');

describe('ratio verdicts with a 95% bootstrap interval over repetitions', () => {
  it('reproduced: the whole interval clears the paper direction (>1)', () => {
    const v = zadd([150, 152, 149], [100, 101, 99]);
    expect(v.verdict).toBe('reproduced');
    expect(v.measured).toBeCloseTo(1.5, 9);
    expect(v.interval!.lo).toBeGreaterThan(1);
    expect(v.interval!.lo).toBeLessThanOrEqual(1.5);
    expect(v.interval!.hi).toBeGreaterThanOrEqual(1.5);
    expect(v.reason).toMatch(/^1\.5 \[1\.\d+, 1\.\d+\] \(95% bootstrap interval over 3 kflex \/ 3 userspace repetitions\) clears >1$/);
  });

  it('deviates: the whole interval lies on the other side', () => {
    const v = zadd([80, 81, 79], [100, 101, 99]);
    expect(v.verdict).toBe('deviates');
    expect(v.interval!.hi).toBeLessThan(1);
    expect(v.reason).toMatch(/lies entirely outside >1$/);
  });

  it('inconclusive: 0.999 and 1.001 within the noise read the same, with the interval shown', () => {
    const below = zadd([99.9, 104, 96], [100, 103, 97]);
    const above = zadd([100.1, 104, 96], [100, 103, 97]);
    expect([below.measured, above.measured].map((x) => Number(x!.toFixed(3)))).toEqual([0.999, 1.001]);
    expect([below.verdict, above.verdict]).toEqual(['inconclusive', 'inconclusive']);
    expect(below.interval!.lo).toBeLessThan(1);
    expect(below.interval!.hi).toBeGreaterThan(1);
    expect(below.reason).toMatch(/^0\.999 \[0\.\d+, 1\.\d+\] .* straddles 1$/);
  });

  it('inconclusive: one repetition on a side gives no interval, whatever the ratio', () => {
    const v = zadd([250], [100, 101, 99]);
    expect([v.verdict, v.measured, v.interval]).toEqual(['inconclusive', 2.5, undefined]);
    expect(v.reason).toBe(`2.5 with no interval (1 kflex / 3 userspace repetitions): an interval needs at least ${MIN_REPETITIONS} repetitions on each side`);
  });

  it('not run keeps its reason; a baseline that ran alone still shows its numbers', () => {
    const records = [...cells('redis-zadd', 'userspace', 'rps', [100, 101])];
    records.push({ ...records[0]!, variant: 'kflex', status: 'skipped', metrics: undefined, reason: 'not a KFlex kernel' });
    const v = judge(records, 'redis-zadd-throughput');
    expect([v.verdict, v.reason]).toEqual(['not run', 'kflex: not a KFlex kernel']);
    expect(v.sides[1]).toMatchObject({ variant: 'userspace', median: 100.5, n: 2, values: [100, 101] });
  });

  it('the same repetitions always give the same interval (seeded), in any cell order', () => {
    const a = zadd([150, 140, 160, 155], [100, 110, 95, 105]);
    const b = judge(
      [...cells('redis-zadd', 'userspace', 'rps', [100, 110, 95, 105]), ...cells('redis-zadd', 'kflex', 'rps', [150, 140, 160, 155])].reverse(),
      'redis-zadd-throughput',
    );
    expect(b.interval).toEqual(a.interval);
    expect(bootstrapRatio([1, 2, 3], [1, 2, 3], 'x')).toEqual(bootstrapRatio([1, 2, 3], [1, 2, 3], 'x'));
    expect(seededRandom('k')()).toBe(seededRandom('k')());
    expect(seededRandom('redis-zadd-throughput|')()).not.toBe(seededRandom('memcache-throughput|')());
  });

  it('every parameter point is judged; one inconclusive point makes the claim inconclusive and is named worst', () => {
    const p1 = { set_get: '10:90' };
    const p2 = { set_get: '50:50' };
    const records = [
      ...cells('memcache', 'kflex', 'tps', [300, 310, 305], p1),
      ...cells('memcache', 'userspace', 'tps', [100, 102, 98], p1),
      ...cells('memcache', 'kflex', 'tps', [100, 110, 90], p2),
      ...cells('memcache', 'userspace', 'tps', [100, 105, 95], p2),
    ];
    const v = judge(records, 'memcache-throughput');
    expect(v.points!.map((p) => [p.params, p.verdict])).toEqual([
      ['set_get=10-90', 'reproduced'],
      ['set_get=50-50', 'inconclusive'],
    ]);
    expect([v.verdict, v.worst, v.measured]).toEqual(['inconclusive', 'set_get=50-50', 1]);
    expect(v.reason).toMatch(/^per point against >1: set_get=10-90 3\.05 \[.*\] reproduced; set_get=50-50 1 \[.*\] inconclusive; worst: set_get=50-50$/);
    // A deviating point outweighs a reproduced one.
    const worse = judge([...records.slice(0, 6), ...cells('memcache', 'kflex', 'tps', [50, 51, 49], p2), ...records.slice(9)], 'memcache-throughput');
    expect([worse.verdict, worse.worst]).toEqual(['deviates', 'set_get=50-50']);
  });
});

describe('family-ratio verdicts: every ffkx_/bpf_ pair with its interval, the worst pair named', () => {
  const ds = (perCell: Array<Record<string, number>>) =>
    perCell.map(
      (m, i): CellRecord => ({
        experiment: 'datastructures',
        variant: 'kflex',
        params: { filter: 'Zipfian' },
        rep: i + 1,
        status: 'ok',
        metrics: Object.fromEntries(Object.entries(m).map(([k, x]) => [`Zipfian/${k}.ns_per_op`, x])),
        started: '',
        seconds: 1,
      }),
    );
  const threeCells = (ffkxSkiplist: number[]) =>
    ds(
      [0, 1, 2].map((i) => ({
        ffkx_rbtree_update: [80, 82, 78][i]!,
        bpf_rbtree_update: [100, 101, 99][i]!,
        ffkx_hashmap_update: [60, 61, 59][i]!,
        bpf_hashmap_update: [100, 102, 98][i]!,
        ffkx_skiplist_update: ffkxSkiplist[i]!,
        bpf_skiplist_update: [100, 100, 100][i]!,
      })),
    );

  it('one structure 3x slower deviates, although the geometric mean of the pairs is below the bound', () => {
    const v = judge(threeCells([300, 310, 290]), 'datastructures-ops');
    const geo = Math.cbrt(0.8 * 0.6 * 3);
    expect(geo).toBeLessThan(1.25);
    expect(v.verdict).toBe('deviates');
    expect([v.worst, v.measured]).toEqual(['Zipfian/skiplist_update', 3]);
    expect(v.pairs!.map((p) => [p.benchmark, p.verdict, p.n])).toEqual([
      ['Zipfian/rbtree_update', 'reproduced', [3, 3]],
      ['Zipfian/hashmap_update', 'reproduced', [3, 3]],
      ['Zipfian/skiplist_update', 'deviates', [3, 3]],
    ]);
    for (const p of v.pairs!) expect(p.interval!.lo).toBeLessThanOrEqual(p.interval!.hi);
    expect(v.reason).toMatch(
      regexOf(
        '',
        /^worst pair Zipfian\/skiplist_update 3 \[2\.\d+, 3\.\d+\] lies entirely outside <=1\.25; /,
        /3 ffkx_\/bpf_ ns_per_op pairs against <=1\.25: 2 reproduced, 0 inconclusive, 1 deviate; geometric mean 1\.13$/,
      ),
    );
  });

  it('every pair clear of the bound reproduces; a pair straddling it is inconclusive and named', () => {
    expect(judge(threeCells([90, 95, 85]), 'datastructures-ops')).toMatchObject({ verdict: 'reproduced', worst: 'Zipfian/skiplist_update' });
    const v = judge(threeCells([125, 140, 110]), 'datastructures-ops');
    expect([v.verdict, v.worst, v.measured]).toEqual(['inconclusive', 'Zipfian/skiplist_update', 1.25]);
  });

  it('a single datastructures cell gives every pair a ratio but no interval: inconclusive', () => {
    const v = judge(threeCells([90, 95, 85]).slice(0, 1), 'datastructures-ops');
    expect(v.verdict).toBe('inconclusive');
    expect(v.pairs!.every((p) => p.interval === undefined && p.verdict === 'inconclusive')).toBe(true);
    expect(v.reason).toMatch(/^worst pair Zipfian\/skiplist_update 0\.9 \(no interval: n=1\/1\): an interval needs at least 2 repetitions on each side; /);
  });
});

describe('claims.yaml', () => {
  it('has no tolerance: expect is the one rule, validated when the file is read', () => {
    for (const c of claims) expect(c).not.toHaveProperty('tolerance');
    expect((claims.find((c) => c.id === 'datastructures-ops')!.comparison as { expect: string }).expect).toBe('<=1.25');
    const bad = join(tempDir(), 'claims.yaml');
    writeFileSync(
      bad,
      'claims:\n  - {id: x, wording: w, experiment: e, metric: m, ' +
        'comparison: {kind: ratio, numerator: a, denominator: b, expect: "about 1"}, paper_value: null, paper_source: s}\n',
    );
    expect(() => loadClaims(bad)).toThrow(/expect is one of >N, >=N, <N, <=N/);
  });

  it('judgeInterval on each side of each kind of bound', () => {
    const iv = (lo: number, hi: number) => ({ lo, hi, level: 0.95, resamples: 1 });
    const gt = parseExpect('>1');
    const le = parseExpect('<=1.25');
    expect([judgeInterval(iv(1.1, 1.3), gt), judgeInterval(iv(0.7, 0.9), gt), judgeInterval(iv(0.9, 1.1), gt), judgeInterval(undefined, gt)]).toEqual([
      'reproduced',
      'deviates',
      'inconclusive',
      'inconclusive',
    ]);
    expect([judgeInterval(iv(1, 1.25), le), judgeInterval(iv(1.26, 2), le), judgeInterval(iv(1.2, 1.3), le)]).toEqual([
      'reproduced',
      'deviates',
      'inconclusive',
    ]);
    expect(() => parseExpect('~1')).toThrow(/not one of/);
  });
});

// The claims file's own type, so a claim added there is judged by one of the three kinds.
const _kinds: Array<Claim['comparison']['kind']> = ['ratio', 'family-ratio', 'exact-table'];
void _kinds;
