import { describe, it, expect } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { planCells, gridPoints, paramsSlug, effectiveSettings, type CellRecord } from '../../experiments/cells.js';
import { unmetRequirement } from '../../experiments/requirements.js';
import { summarize, summaryCsv, median, coefficientOfVariation } from '../../experiments/summary.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { memcaslapConfig, memcaslapArgv, memcachedArgv } from '../../experiments/memcache.js';
import { redisBenchmarkZaddArgv, memtierArgv, MEMTIER_ZADD_DEVIATION } from '../../experiments/redis.js';
import { judgeClaims, loadClaims } from '../../report/claims.js';
import { affectsExperiment, affectsVariants } from '../../report/model.js';
import { testCaps } from './support/caps.js';
import { BMC, FFKX } from '../../experiments/requirements.js';
import { regexOf, FIXTURES } from '../helpers.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const caps = (over: Parameters<typeof testCaps>[0] = {}) => testCaps(over);

describe('experiment grid', () => {
  it('crosses experiments, variants, grid points and repetitions; --only and --quick select', () => {
    const smoke = loadConfig({ profile: 'smoke', env: {} }).profile;
    const all = planCells(smoke, {}, EXPERIMENTS);
    expect(new Set(all.map((c) => c.experiment.id))).toEqual(new Set(['mechanisms', 'memcache', 'redis-getset', 'redis-zadd', 'datastructures', 'guards']));
    expect(all.filter((c) => c.experiment.id === 'memcache')).toHaveLength(6); // 3 variants (kflex, userspace, bmc) x 1 point x 2 reps
    const quick = planCells(smoke, { quick: true, only: ['redis-zadd'] }, EXPERIMENTS);
    expect(quick.map((c) => [c.variant.id, c.params.requests, c.rep])).toEqual([
      ['kflex', 5000, 1],
      ['userspace', 5000, 1],
    ]);
    expect(quick[1]!.path).toBe('runs/redis-zadd/userspace/requests=5000,threads=1,clients=8/rep-1');
    const paper = loadConfig({ env: {} }).profile;
    expect(planCells(paper, { only: ['memcache'] }, EXPERIMENTS)).toHaveLength(3 * 2 * 3);
  });

  it('grid points and slugs', () => {
    expect(gridPoints({ a: [1, 2], b: ['x'] })).toEqual([
      { a: 1, b: 'x' },
      { a: 2, b: 'x' },
    ]);
    expect(gridPoints({})).toEqual([{}]);
    expect(paramsSlug({ set_get: '10:90', n: 8 })).toBe('set_get=10-90,n=8');
    expect(paramsSlug({})).toBe('default');
  });

  it('quick settings replace repetitions, duration and the grid keys they name', () => {
    const s = loadConfig({ profile: 'smoke', env: {} }).profile.experiments.memcache!;
    const q = effectiveSettings(s, true);
    expect([q.repetitions, q.duration_s, q.warmup_s]).toEqual([1, 5, 0]);
    expect(effectiveSettings(s, false)).toBe(s);
  });
});

describe('requirements', () => {
  const byId = (e: string, v: string) => EXPERIMENTS.find((x) => x.id === e)!.variants.find((x) => x.id === v)!;
  it('skips KFlex variants with the probe reason, never the baselines', () => {
    expect(unmetRequirement(byId('memcache', 'kflex'), caps())).toBe(
      'guest kernel 6.1.192 is not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF (use the paper profile)',
    );
    expect(unmetRequirement(byId('memcache', 'userspace'), caps())).toBeUndefined();
    expect(unmetRequirement(byId('memcache', 'kflex'), caps({ kflexKernel: true }))).toBe(FFKX.missing);
    expect(unmetRequirement(byId('memcache', 'bmc'), caps({ kflexKernel: true }))).toBe(BMC.missing);
    expect(unmetRequirement(byId('memcache', 'userspace'), caps({ baselines: false }))).toMatch(/memcached is not installed on the server \(apt: memcached\)/);
  });
  it('refuses a heap that does not fit, with the numbers', () => {
    const why = unmetRequirement(byId('redis-zadd', 'kflex'), caps({ kflexKernel: true, ffkx: true, memtier: true, serverMemoryMb: 32768 }));
    expect(why).toMatch(
      regexOf(
        '',
        /needs a 256 GiB KFlex heap \(allocated whole at map creation\) \+ the guest, its struct pages and page tables \(~263 GiB\); /,
        /the server has 32\.0 GiB: raise vms\.server\.memory_mb/,
      ),
    );
    expect(unmetRequirement(byId('memcache', 'kflex'), caps({ kflexKernel: true, ffkx: true, serverMemoryMb: 140 * 1024 }))).toBeUndefined();
  });
  it('without LA57 a 128 GiB heap cannot be placed, a 256 GiB one can', () => {
    const noLa57 = caps({ kflexKernel: true, ffkx: true, memtier: true, serverMemoryMb: 300 * 1024, la57: false });
    expect(unmetRequirement(byId('memcache', 'kflex'), noLa57)).toMatch(/a 128 GiB heap cannot be placed without 5-level paging/);
    expect(unmetRequirement(byId('redis-zadd', 'kflex'), noLa57)).toBeUndefined();
  });
});

describe('client command lines', () => {
  it('memcaslap -F config and UDP flags', () => {
    expect(memcaslapConfig('10:90', 32)).toBe('key\n32 32 1\nvalue\n32 32 1\ncmd\n0 0.1000\n1 0.9000\n');
    expect(memcaslapArgv('10.77.0.1', { threads: 2, concurrency: 8, seconds: 5, udp: true })).toEqual([
      'memcaslap',
      '-s',
      '10.77.0.1:6969',
      '-F',
      '/tmp/memcaslap.cfg',
      '-T',
      '2',
      '-c',
      '8',
      '-U',
      '-S',
      '1s',
      '-t',
      '5s',
    ]);
  });
  it("the seed's ZADD line and memtier's redis protocol", () => {
    expect(redisBenchmarkZaddArgv('s', { threads: 64, clients: 64, requests: 2000000 }).slice(-4)).toEqual([
      'zadd',
      'f__rand_int__f',
      '__rand_int__',
      'ele:rand__rand_int__:__rand_int__',
    ]);
    expect(memtierArgv('s', { ratio: '10:90', dataSize: 64, clients: 8, threads: 1, seconds: 5 })).toContain('--protocol=redis');
    expect(memtierArgv('s', { ratio: '10:90', dataSize: 64, clients: 8, threads: 1, seconds: 5 })).toContain('--test-time=5');
    // The artifact's line: a request count per client, 64 threads, memtier's default clients.
    const artifact = memtierArgv('s', { ratio: '10:90', dataSize: 64, threads: 64, requests: 10000, seconds: 30 });
    expect(artifact.join(' ')).toBe('memtier_benchmark -s s -p 6969 --protocol=redis --ratio=10:90 -d 64 -t 64 -n 10000 --hide-histogram');
    expect(redisBenchmarkZaddArgv('s', { threads: 64, requests: 2000000 })).not.toContain('-c');
  });
});

const rec = (experiment: string, variant: string, status: CellRecord['status'], metrics?: Record<string, number>, reason?: string): CellRecord => ({
  experiment,
  variant,
  params: { n: 1 },
  rep: 1,
  status,
  metrics,
  reason,
  started: '',
  seconds: 1,
});

describe('summary', () => {
  it('median, min, max, CV over good repetitions; counts of each status', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(coefficientOfVariation([10])).toBe(0);
    expect(coefficientOfVariation([9, 11])).toBeCloseTo(Math.SQRT2 / 10, 6);
    const rows = summarize([
      rec('memcache', 'userspace', 'ok', { tps: 100 }),
      rec('memcache', 'userspace', 'ok', { tps: 300 }),
      rec('memcache', 'userspace', 'failed', undefined, 'boom'),
      rec('memcache', 'kflex', 'skipped', undefined, 'not KFlex'),
    ]);
    expect(rows.find((r) => r.variant === 'userspace')).toMatchObject({ metric: 'tps', median: 200, min: 100, max: 300, n_ok: 2, n_failed: 1, n_skipped: 0 });
    expect(rows.find((r) => r.variant === 'kflex')).toMatchObject({ metric: '-', n_skipped: 1, reason: 'not KFlex' });
    expect(summaryCsv(rows).split('\n')[0]).toBe('experiment,variant,params,metric,n_ok,n_failed,n_skipped,median,min,max,cv,reason');
  });
});

describe('claims', () => {
  const claims = loadClaims();
  const judge = (records: CellRecord[]) => judgeClaims(claims, summarize(records), records);
  const twice = (r: CellRecord): CellRecord[] => [r, { ...r, rep: 2 }];
  it('never invents a paper value: null with "not recorded" unless a source is named', () => {
    for (const c of claims) if (c.paper_value === null) expect(c.paper_source).toMatch(/^not recorded/);
    expect(claims.find((c) => c.id === 'guard-elision')).toMatchObject({ paper_value: 78 });
  });
  it('a claim whose KFlex side did not run is "not run" with the reason, and still shows the baseline', () => {
    const v = judge([rec('memcache', 'userspace', 'ok', { tps: 3174 }), rec('memcache', 'kflex', 'skipped', undefined, 'not a KFlex kernel')]).find(
      (x) => x.claim.id === 'memcache-throughput',
    )!;
    expect(v.verdict).toBe('not run');
    expect(v.reason).toBe('kflex: not a KFlex kernel');
    expect(v.sides.find((s) => s.variant === 'userspace')).toMatchObject({ median: 3174, n: 1 });
  });
  it('ratio claims are judged by direction (the paper value is not recorded), over an interval of the repetitions', () => {
    const v = judge([...twice(rec('redis-zadd', 'userspace', 'ok', { rps: 100 })), ...twice(rec('redis-zadd', 'kflex', 'ok', { rps: 250 }))]).find(
      (x) => x.claim.id === 'redis-zadd-throughput',
    )!;
    expect([v.verdict, v.measured]).toEqual(['reproduced', 2.5]);
    const worse = judge([...twice(rec('redis-zadd', 'userspace', 'ok', { rps: 100 })), ...twice(rec('redis-zadd', 'kflex', 'ok', { rps: 50 }))]);
    expect(worse.find((x) => x.claim.id === 'redis-zadd-throughput')!.verdict).toBe('deviates');
    const once = judge([rec('redis-zadd', 'userspace', 'ok', { rps: 100 }), rec('redis-zadd', 'kflex', 'ok', { rps: 250 })]);
    expect(once.find((x) => x.claim.id === 'redis-zadd-throughput')!.verdict).toBe('inconclusive');
  });
  it('guard elision is reproduced only by an exact table', () => {
    const ok = judge([rec('guards', 'kflex', 'ok', { exact: 1, measured_elided: 78 })]);
    expect(ok.find((x) => x.claim.id === 'guard-elision')).toMatchObject({ verdict: 'reproduced', measured: 78 });
    const off = judge([rec('guards', 'kflex', 'ok', { exact: 0, measured_elided: 77 })]);
    expect(off.find((x) => x.claim.id === 'guard-elision')!.verdict).toBe('deviates');
  });
});

describe('deviations from the artifact', () => {
  it("the paper profile's client loads are the artifact's; smoke's smaller loads are recorded, with the artifact's line", async () => {
    const { loadDeviations, runDeviations } = await import('../../lab/deviations.js');
    const paper = loadConfig({ profile: 'paper', env: {} });
    const paperCells = planCells(paper.profile, { only: ['memcache', 'redis-getset', 'redis-zadd'] }, EXPERIMENTS).filter((c) => c.variant.id === 'kflex');
    expect(loadDeviations(paperCells).map((d) => `${d.affects}: ${d.lab}`)).toEqual([]);
    const smoke = loadConfig({ profile: 'smoke', env: {} });
    const smokeCells = planCells(smoke.profile, { only: ['memcache', 'redis-getset', 'redis-zadd'] }, EXPERIMENTS);
    const loads = loadDeviations(smokeCells);
    expect(loads.map((d) => d.affects.split(' ')[0])).toEqual(['memcache', 'redis-getset', 'redis-zadd']);
    expect(loads[0]!.artifact).toMatch(/-T 128 -c 128/);
    expect(loads[0]!.lab).toMatch(/threads 1 \(artifact 128\)/);
    const all = runDeviations(smoke, { accel: 'tcg', cells: smokeCells, records: [] });
    expect(all[0]!.topic).toBe('accelerator');
    for (const t of ['toolchain', 'kernel', 'server/client pairing', 'host tuning', 'client load'])
      expect(
        all.map((d) => d.topic),
        t,
      ).toContain(t);
    for (const d of all) for (const f of ['artifact', 'lab', 'why', 'affects'] as const) expect(d[f].length, `${d.topic}.${f}`).toBeGreaterThan(2);
  });
});

describe('the XDP TX queue deviation (issue 23 item 5)', () => {
  it('recorded on the XDP variants only when the kernel said XDP_TX runs locked; the tap link gives 2 x vCPU queue pairs', async () => {
    const { xdpQueueDeviations } = await import('../../lab/deviations.js');
    const { xdpQueuePairs } = await import('../../vm/link/tap.js');
    expect([1, 8].map(xdpQueuePairs)).toEqual([2, 16]);
    const smoke = loadConfig({ profile: 'smoke', env: {} });
    const cells = planCells(smoke.profile, { only: ['memcache', 'redis-getset'] }, EXPERIMENTS);
    const locked = ['fewer than 2 x vCPU queues: XDP_TX runs in the slower locked mode'];
    const d = xdpQueueDeviations(cells, locked);
    expect(d).toHaveLength(1);
    expect(d[0]!.affects).toBe('memcache (kflex), memcache (bmc)');
    // The report flags the memcache claims whose sides include kflex or bmc ('XDP_TX locked', report/model.ts claimFlags).
    expect(affectsExperiment(d[0]!, 'memcache')).toBe(true);
    expect(affectsVariants(d[0]!, 'memcache', ['bmc', 'userspace'])).toBe(true);
    expect(affectsVariants(d[0]!, 'memcache', ['userspace'])).toBe(false);
    expect(xdpQueueDeviations(cells, [])).toEqual([]);
    expect(xdpQueueDeviations(cells, undefined)).toEqual([]);
    expect(
      xdpQueueDeviations(
        cells.filter((c) => c.experiment.id !== 'memcache'),
        locked,
      ),
    ).toEqual([]);
  });
});

describe('clients ffkx can answer', () => {
  it('without memtier the KFlex Redis cells are skipped with why (redis-benchmark waits forever on CONFIG GET)', () => {
    const c = caps({ kflexKernel: true, ffkx: true, serverMemoryMb: 300 * 1024 });
    const zadd = EXPERIMENTS.find((e) => e.id === 'redis-zadd')!.variants.find((v) => v.id === 'kflex')!;
    expect(unmetRequirement(zadd, c)).toMatch(/blocks forever on its startup CONFIG GET/);
  });
  it("the ZADD load through memtier: the seed's 50 connections, whole-argument placeholders, an empty key prefix, requests per connection", async () => {
    const { memtierZaddArgv } = await import('../../experiments/redis.js');
    const a = memtierZaddArgv('10.77.0.1', { threads: 64, requests: 2000000 });
    // redis-benchmark --threads 64 with its default -c 50: 50 connections in all, 40,000 requests each.
    expect(a).toEqual(expect.arrayContaining(['-t', '50', '-c', '1', '-n', '40000', '--command=ZADD __key__ __key__ __data__', '--key-prefix=']));
    expect(a).toContain('--distinct-client-seed');
    const conns = (x: string[]) => Number(x[x.indexOf('-t') + 1]) * Number(x[x.indexOf('-c') + 1]);
    const eight = memtierZaddArgv('h', { threads: 8, requests: 1000 });
    expect([eight[eight.indexOf('-t') + 1], conns(eight)]).toEqual(['5', 50]);
    const smoke = memtierZaddArgv('h', { threads: 1, clients: 8, requests: 20000 });
    expect([smoke[smoke.indexOf('-t') + 1], conns(smoke), smoke[smoke.indexOf('-n') + 1]]).toEqual(['1', 8, '2500']);
  });

  // Captured (clients/README): the stand-in's arguments at -t 2 -c 2 -n 3, without --distinct-client-seed, seen by redis-cli MONITOR.
  it('what the ZADD stand-in sends: key and score drawn apart, a constant 16-byte member, one sequence for every connection unless seeded apart', () => {
    const seen = readFileSync(join(FIXTURES, 'clients/memtier-zadd-standin.monitor.txt'), 'utf8')
      .split('\n')
      .map((l) => l.match(/\[0 ([\d.:]+)\] "ZADD" "(\d+)" "(\d+)" "(.*)"$/))
      .filter((m) => m !== null);
    expect(seen).toHaveLength(12);
    expect(seen.some((m) => m[2] !== m[3])).toBe(true);
    expect(new Set(seen.map((m) => m[4]))).toEqual(new Set(['x'.repeat(16)]));
    const perConn = new Map<string, string[]>();
    for (const m of seen) perConn.set(m[1]!, [...(perConn.get(m[1]!) ?? []), `${m[2]} ${m[3]}`]);
    expect(perConn.size).toBe(4);
    expect(new Set([...perConn.values()].map((v) => v.join(',')))).toHaveProperty('size', 1);
    // The same run with --distinct-client-seed, as memtierZaddArgv passes it: four connections, four sequences.
    const distinct = new Map<string, string[]>();
    for (const l of readFileSync(join(FIXTURES, 'clients/memtier-zadd-standin-distinct.monitor.txt'), 'utf8').split('\n')) {
      const m = l.match(/\[0 ([\d.:]+)\] "ZADD" "(\d+)" "(\d+)"/);
      if (m) distinct.set(m[1]!, [...(distinct.get(m[1]!) ?? []), `${m[2]} ${m[3]}`]);
    }
    expect(distinct.size).toBe(4);
    expect(new Set([...distinct.values()].map((v) => v.join(',')))).toHaveProperty('size', 4);
    expect(MEMTIER_ZADD_DEVIATION).toMatch(/key and score independent uniform draws in 1\.\.999999.*constant 16-byte member/);
  });
});

describe('the memcached baseline (one argv for the cell and the bench)', () => {
  it('listens on the service port over TCP and UDP, a thread per server CPU (at least one)', () => {
    expect(memcachedArgv(4).join(' ')).toBe('memcached -u root -l 0.0.0.0 -p 6969 -U 6969 -t 4 -m 256');
    expect(memcachedArgv(0)).toContain('1');
  });
});
