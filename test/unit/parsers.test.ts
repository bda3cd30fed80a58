import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMemcaslap, parseRedisBenchmarkCsv, parseGbenchJson, parseGuardLines, compareGuards, SEED_GUARDS, parseMemtier } from '../../experiments/parsers.js';
import { LabError } from '../../core/errors.js';
import { FIXTURES } from '../helpers.js';

// Captures of real runs: memcaslap, redis-benchmark and memtier_benchmark against memcached/redis on loopback (Debian 12),
// a real Google Benchmark binary's JSON, and the seed README's dmesg lines.
const fx = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

describe('client parsers', () => {
  it('memcaslap over UDP', () => {
    expect(parseMemcaslap(fx('clients/memcaslap-udp.txt'))).toEqual({
      run_time_s: 3, ops: 106301, tps: 35425, net_rate_mb_s: 4.5, cmd_get: 95666, cmd_set: 10635, get_misses: 0,
      packet_disorder: 0, packet_drop: 0, udp_timeout: 0, lat_min_us: 61, lat_max_us: 6725, lat_avg_us: 225,
    });
  });

  it('memcaslap over TCP (no UDP counters)', () => {
    const m = parseMemcaslap(fx('clients/memcaslap-tcp.txt'));
    expect(m).toMatchObject({ tps: 54371, ops: 163146, cmd_get: 146828, cmd_set: 16318, get_misses: 0 });
    expect(m.packet_drop).toBeUndefined();
  });

  it('memcaslap output cut short is an error, not a zero', () => {
    const cut = fx('clients/memcaslap-udp.txt').split('Run time:')[0]!;
    expect(() => parseMemcaslap(cut)).toThrow(LabError);
    expect(() => parseMemcaslap(cut)).toThrow(/no final "Run time/);
  });

  it('redis-benchmark --csv, GET/SET and ZADD', () => {
    const gs = parseRedisBenchmarkCsv(fx('clients/redis-benchmark-getset.csv'));
    expect(gs).toMatchObject({ set_rps: 79365.08, get_rps: 84745.77, get_p99_latency_ms: 0.127 });
    expect(gs.rps).toBeCloseTo((79365.08 + 84745.77) / 2, 2);
    const z = parseRedisBenchmarkCsv(fx('clients/redis-benchmark-zadd.csv'));
    expect(z).toMatchObject({ zadd_rps: 50000, rps: 50000, zadd_avg_latency_ms: 0.136 });
    expect(() => parseRedisBenchmarkCsv(fx('clients/redis-benchmark-zadd.txt'))).toThrow(/no CSV header/);
  });

  it('Google Benchmark JSON, including the bare Infinity it writes for manual-time runs', () => {
    const r = parseGbenchJson(fx('gbench/gbench.json'));
    expect(r.map((b) => b.family)).toEqual(['Uniform_std_map_update', 'Zipfian_std_map_lookup']);
    expect(r[0]!.ns_per_op).toBeCloseTo(86.17126, 4);
    expect(r[0]!.items_per_second).toBeCloseTo(28327817.4, 0);
    expect(r[1]!.items_per_second).toBeUndefined();
    expect(() => parseGbenchJson('{"context":{}}')).toThrow(/no "benchmarks" array/);
  });

  it('memtier_benchmark --protocol=redis (ALL STATS table; --- cells skipped)', () => {
    // Captured from memtier_benchmark built from its upstream source, against redis-server on loopback.
    const m = parseMemtier(fx('clients/memtier-redis.txt'));
    expect(m).toMatchObject({ ops_sec: 91417.06, totals_ops_sec: 91417.06, sets_ops_sec: 9142.51, gets_ops_sec: 82274.55, gets_misses_sec: 82253.22, totals_avg_latency: 0.08774, totals_p99_latency: 0.199 });
    expect(m.sets_hits_sec).toBeUndefined();
  });

  it('memtier: refuses output without its ALL STATS table', () => {
    expect(() => parseMemtier('Writing results to stdout\n')).toThrow(/no "ALL STATS" table/);
  });
});

describe('guard elision', () => {
  it("reproduces the seed's 15 rows: 78 of 99 guards elided", () => {
    const lines = parseGuardLines(fx('guards/seed-dmesg.txt'));
    expect(lines).toHaveLength(15);
    const c = compareGuards(lines);
    expect(c.exact).toBe(true);
    expect([c.measured_total, c.measured_elided, c.expected_total, c.expected_elided]).toEqual([99, 78, 99, 78]);
    expect(c.rows.map((r) => r.label)).toEqual(SEED_GUARDS.map((g) => g.label));
  });

  it('reads messages printed without a newline, run together on one line', () => {
    // The verifier prints no newline: the same messages can arrive glued together (derived from the seed's lines).
    const glued = fx('guards/seed-dmesg.txt').split('\n').map((l) => l.replace(/^\[[^\]]+\] /, '')).join('');
    const c = compareGuards(parseGuardLines(`[709104.842956] ${glued}\n`));
    expect(c.exact).toBe(true);
  });

  it('notices a changed count and a missing program, by position', () => {
    const text = fx('guards/seed-dmesg.txt').replace('range_analysis_call=29 elided=25', 'range_analysis_call=29 elided=24');
    const c = compareGuards(parseGuardLines(text));
    expect(c.exact).toBe(false);
    expect(c.rows.filter((r) => !r.match).map((r) => r.label)).toEqual(['RBTree Delete']);
    const short = compareGuards(parseGuardLines(fx('guards/seed-dmesg.txt').split('\n').slice(0, 14).join('\n')));
    expect(short.exact).toBe(false);
    expect(short.rows.at(-1)!.measured).toBeUndefined();
  });
});
