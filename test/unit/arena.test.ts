import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ARENA_ARTIFACT,
  ARENA_RUNNER_PATH,
  arenaBenchArgv,
  arenaBenchmarkNames,
  arenaDeviations,
  arenaPairSummary,
  parseArenaChecks,
} from '../../experiments/arena-support.js';
import { gbenchMetrics, parseGbenchJson } from '../../experiments/parsers.js';
import { pairBenchmarks } from '../../report/claims.js';
import { arenaBuildCommand, arenaHooks, ARENA_FILES, KERNEL_TREE_PARTS } from '../../images/arena.js';

const FIX = join(__dirname, '..', 'fixtures', 'arena');
const read = (f: string) => readFileSync(join(FIX, f), 'utf8');

function nsValues(json: string): Map<string, number> {
  const { metrics } = gbenchMetrics(parseGbenchJson(json));
  const values = new Map<string, number>();
  for (const [k, v] of Object.entries(metrics)) if (k.endsWith('.ns_per_op')) values.set(k.slice(0, -'.ns_per_op'.length), v);
  return values;
}

describe('arena runner argv', () => {
  it('passes the size, repetitions and output, and nothing the caller did not ask for', () => {
    expect(arenaBenchArgv({ out: '/tmp/a.json', items: 100000, repetitions: 3 })).toEqual([
      ARENA_RUNNER_PATH,
      '--out',
      '/tmp/a.json',
      '--items',
      '100000',
      '--repetitions',
      '3',
    ]);
  });

  it('scales the lists, filters to one distribution, pins a CPU and breaks a structure when asked', () => {
    const argv = arenaBenchArgv({
      out: 'o.json',
      items: 2000,
      listItems: 300,
      repetitions: 1,
      batch: 256,
      seed: 7,
      dists: ['Zipfian'],
      cpu: 0,
      breakStructure: 'bpf_rbtree',
    });
    expect(argv.slice(1)).toEqual([
      '--out',
      'o.json',
      '--items',
      '2000',
      '--repetitions',
      '1',
      '--list-items',
      '300',
      '--batch',
      '256',
      '--seed',
      '7',
      '--filter',
      '^(Zipfian)/',
      '--cpu',
      '0',
      '--break',
      'bpf_rbtree',
    ]);
    // Both distributions need no filter; an explicit filter wins over dists.
    expect(arenaBenchArgv({ out: 'o', items: 1, repetitions: 1, dists: ['Uniform', 'Zipfian'] })).not.toContain('--filter');
    expect(arenaBenchArgv({ out: 'o', items: 1, repetitions: 1, dists: ['Uniform'], filter: 'rbtree' })).toContain('rbtree');
  });

  it('refuses sizes the runner would refuse', () => {
    expect(() => arenaBenchArgv({ out: 'o', items: 0, repetitions: 1 })).toThrow(/items must be an integer >= 1/);
    expect(() => arenaBenchArgv({ out: 'o', items: 10, repetitions: 1.5 })).toThrow(/repetitions/);
  });

  it("names the runner's benchmarks exactly (its --list-tests)", () => {
    expect(arenaBenchmarkNames()).toEqual(read('list-tests.txt').trim().split('\n'));
    expect(arenaBenchmarkNames(['Zipfian'])).toHaveLength(22);
  });
});

describe('arena JSON through the Google Benchmark parser and the ffkx_/bpf_ pairing', () => {
  it('reads every repetition with its time and pairs arena_X with bpf_X', () => {
    const json = read('zipfian.json');
    const results = parseGbenchJson(json);
    // 22 benchmarks x 3 repetitions; the aggregates are not iterations.
    expect(results).toHaveLength(66);
    expect(results.every((r) => r.ns_per_op! > 0 && r.iterations > 0 && !r.error)).toBe(true);
    const rb = results.filter((r) => r.family === 'Zipfian/arena_rbtree_update');
    expect(rb.map((r) => r.args)).toEqual(Array(3).fill('key:32/val:64/items:1000/iterations:1000/manual_time'));
    const { pairs, unpaired } = pairBenchmarks(nsValues(json), 'arena_', 'bpf_');
    expect(pairs.map((p) => p.benchmark).sort()).toEqual(
      ['hashmap', 'rbtree', 'linked_list'].flatMap((s) => ['update', 'lookup', 'delete'].map((op) => `Zipfian/${s}_${op}`)).sort(),
    );
    // The skip list has no upstream counterpart: listed, not guessed; the floor is neither side.
    expect(unpaired.sort()).toEqual(['Zipfian/arena_skiplist_delete', 'Zipfian/arena_skiplist_lookup', 'Zipfian/arena_skiplist_update']);
    // The lists run at their own size, on both sides of the pair.
    expect(results.find((r) => r.family === 'Zipfian/bpf_linked_list_lookup')!.iterations).toBe(300);
  });

  it('summarises each pair over the repetitions, beside the floor', () => {
    const results = parseGbenchJson(read('zipfian.json'));
    const s = arenaPairSummary(results);
    expect(s).toHaveLength(9);
    const rb = s.find((x) => x.benchmark === 'rbtree_lookup')!;
    expect(rb.arena).toHaveLength(3);
    expect(rb.ratio!.n).toBe(3);
    const ratios = rb.arena.map((a, i) => a / rb.bpf[i]!);
    expect(rb.ratio!.min).toBeCloseTo(Math.min(...ratios), 12);
    expect(rb.ratio!.max).toBeCloseTo(Math.max(...ratios), 12);
    expect(rb.ratio!.median).toBeCloseTo([...ratios].sort((a, b) => a - b)[1]!, 12);
    const floors = results.filter((r) => r.family === 'Zipfian/empty_floor').map((r) => r.ns_per_op!);
    expect(rb.floor).toBeCloseTo([...floors].sort((a, b) => a - b)[1]!, 12);
  });

  it('gives a broken structure no time: its runs are errors, its pair is not judged', () => {
    const json = read('break-arena-rbtree.json');
    const results = parseGbenchJson(json);
    const broken = results.filter((r) => r.family.startsWith('Zipfian/arena_rbtree_'));
    expect(broken).toHaveLength(6);
    expect(broken.every((r) => r.ns_per_op === undefined && /holds 865 elements|reported 865 hits/.test(r.error!))).toBe(true);
    const { metrics, errors } = gbenchMetrics(results);
    expect(errors).toHaveLength(6);
    expect(metrics['Zipfian/arena_rbtree_update.ns_per_op']).toBeUndefined();
    expect(metrics['Zipfian/bpf_rbtree_update.ns_per_op']).toBeGreaterThan(0);
    expect(pairBenchmarks(nsValues(json), 'arena_', 'bpf_').pairs).toEqual([]);
    expect(arenaPairSummary(results).every((p) => p.ratio === undefined && p.arena.length === 0)).toBe(true);
  });
});

describe('arena correctness verdicts', () => {
  it("reads the runner's CHECK FAILED lines and its closing count", () => {
    const c = parseArenaChecks(read('break-arena-rbtree.stderr.txt'));
    expect(c.failedRuns).toBe(6);
    expect(c.failures).toHaveLength(6);
    expect(c.failures[0]).toEqual({
      benchmark: 'Zipfian/arena_rbtree_update/key:32/val:64/items:1000/iterations:1000/manual_time',
      repetition: 1,
      reason: 'holds 865 elements, expected 1000; missing keys [3,3,3,3,3,... (135)], unexpected keys []',
    });
    expect(c.failures.map((f) => f.repetition)).toEqual([1, 2, 1, 2, 1, 2]);
  });

  it('finds nothing in a clean run, and a verifier rejection is a failure too', () => {
    expect(parseArenaChecks('')).toEqual({ failures: [] });
    const c = parseArenaChecks(
      'libbpf: prog x: failed to load\nCHECK FAILED: Uniform/arena_skiplist_update/key:32/val:64/items:10/iterations:10/manual_time ' +
        '(repetition 1): load failed (Argument list too long): the verifier or libbpf refused it, see the log above\n' +
        '1 benchmark run(s) failed their check or did not run; no time is reported for them\n',
    );
    expect(c.failedRuns).toBe(1);
    expect(c.failures[0]!.reason).toMatch(/^load failed/);
  });
});

describe('arena deviations and stage', () => {
  it('records a scale-down against the artifact and nothing at full size', () => {
    expect(arenaDeviations({ items: ARENA_ARTIFACT.items })).toEqual([]);
    const d = arenaDeviations({ items: 2000, listItems: 200, why: 'TCG' });
    expect(d.map((x) => x.topic)).toEqual(['arena benchmark scaled down', 'arena benchmark lists scaled down']);
    expect(d[0]!.artifact).toContain('100000 items');
    expect(d[0]!.why).toBe('TCG');
  });

  it('builds with the Makefile against the copied tree and checks every payload file', () => {
    const cmd = arenaBuildCommand({ dir: '/b/arena', ksrc: '/b/linux', btf: '/b/vmlinux.btf', out: '/b/out' });
    expect(cmd).toMatch(/^make -C \/b\/arena KSRC=\/b\/linux VMLINUX=\/b\/vmlinux.btf OUT=\/b\/out CLANG=clang-19 /);
    expect(cmd).toContain(`for f in ${ARENA_FILES.join(' ')}; do test -s /b/out/$f ||`);
    const hooks = arenaHooks({ srcDir: '/lab/bpf/arena', treeTar: '/o/linux-parts.tar', btf: '/o/vmlinux.btf', outDir: '/o' });
    expect(hooks).toContain('tar-in /o/linux-parts.tar /build/linux');
    expect(hooks.at(-1)).toBe('copy-out /payload /o');
    expect(KERNEL_TREE_PARTS).toContain('tools');
  });
});
