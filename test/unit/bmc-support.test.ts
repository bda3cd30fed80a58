import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BMC_READY_TEXT,
  BMC_STATS_FILE,
  BMC_TX_PIN,
  bmcArgv,
  bmcAttachTcScript,
  bmcCollectScript,
  bmcDetachScript,
  bmcHitProblem,
  bmcLoadFailure,
  bmcMemcachedArgv,
  bmcMemcaslapArgv,
  parseBmcLoadFailure,
  parseBmcStats,
  remainingAttachments,
  type BmcStats,
} from '../../experiments/bmc-support.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'bmc');
const fixture = (name: string) => readFileSync(join(FIX, name), 'utf8');
const zero: BmcStats = {
  get_recv_count: 0,
  set_recv_count: 0,
  get_resp_count: 0,
  hit_misprediction: 0,
  hit_count: 0,
  miss_count: 0,
  update_count: 0,
  invalidation_count: 0,
};

describe('BMC in the server guest: argv and scripts', () => {
  it('memcached on TCP and UDP 11211 (BMC matches that port only), a thread per server CPU', () => {
    expect(bmcMemcachedArgv(2)).toEqual(['memcached', '-u', 'root', '-l', '0.0.0.0', '-p', '11211', '-U', '11211', '-t', '2', '-m', '256']);
    expect(bmcMemcachedArgv(0)).toContain('1');
  });

  it('bmc gets the NIC index from sysfs, runs line-buffered by its full path (it loads <argv0>_kern.o), old counters removed', () => {
    const a = bmcArgv('eth1');
    expect(a.slice(0, 2)).toEqual(['sh', '-c']);
    expect(a[2]).toBe('rm -f /tmp/bmc_stats.txt && idx=$(cat /sys/class/net/"$1"/ifindex) && exec stdbuf -oL -eL /opt/bmc/bmc "$idx"');
    expect(a.slice(3)).toEqual(['bmc', 'eth1']);
    // the interface name is an argument, never pasted into the script
    expect(bmcArgv('eth1; reboot')[2]).not.toContain('reboot');
  });

  it("attaches the pinned egress program on clsact as the fork's README does, and fails without the pin", () => {
    const a = bmcAttachTcScript('eth1');
    expect(a[2]).toContain('tc qdisc replace dev "$1" clsact');
    expect(a[2]).toContain('tc filter replace dev "$1" egress bpf object-pinned "$2"');
    expect(a.slice(-2)).toEqual(['eth1', BMC_TX_PIN]);
    // `test -e "$2"` under set -e: a missing pin stops before tc runs
    expect(() => execFileSync('sh', ['-c', a[2]!.replace(/tc /g, 'echo tc '), 'x', 'eth1', '/nonexistent/pin'], { stdio: 'pipe' })).toThrow();
  });

  it('collects with SIGUSR1 (bmc keeps running) and waits for the whole file', () => {
    const a = bmcCollectScript(4242);
    expect(a[2]).toContain('kill -USR1 "$1" || exit 3');
    expect(a[2]).toContain('grep -q "^STAT invalidation_count " "$2"');
    expect(a.slice(-2)).toEqual(['4242', BMC_STATS_FILE]);
    // no such process: exit 3, not a wait
    let code = 0;
    try {
      execFileSync('sh', ['-c', a[2]!, 'x', '999999999', '/tmp/bmc-stats-test-none'], { stdio: 'pipe' });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(3);
  });

  it('detaches tc, clsact, XDP and the pin whatever is left, and reports what remains', () => {
    const a = bmcDetachScript('eth1');
    for (const step of ['tc filter del dev "$1" egress', 'tc qdisc del dev "$1" clsact', 'ip link set dev "$1" xdp off', 'rm -f "$2"'])
      expect(a[2]).toContain(step);
    expect(a[2]!.trim().endsWith('true')).toBe(true);
    expect(remainingAttachments('')).toEqual([]);
    expect(remainingAttachments('xdp xdp\negress filter protocol all pref 49152 bpf chain 0 \n')).toEqual([
      'xdp xdp',
      'egress filter protocol all pref 49152 bpf chain 0',
    ]);
  });

  it("memcaslap -U against BMC's port, the userspace cell's other flags", () => {
    expect(bmcMemcaslapArgv('10.0.0.1', { threads: 1, concurrency: 8, seconds: 10 })).toEqual([
      'memcaslap',
      '-s',
      '10.0.0.1:11211',
      '-F',
      '/tmp/memcaslap.cfg',
      '-T',
      '1',
      '-c',
      '8',
      '-U',
      '-S',
      '1s',
      '-t',
      '10s',
    ]);
  });
});

describe("BMC's counters", () => {
  it('parses every counter, get_key_count as hit_misprediction, and refuses a partial file', () => {
    const text = [
      'STAT get_recv_count 10',
      'STAT set_recv_count 0',
      'STAT get_resp_count 4',
      'STAT get_key_count 1',
      'STAT hit_count 5',
      'STAT miss_count 4',
      'STAT update_count 4',
      'STAT invalidation_count 0',
      '',
    ].join('\n');
    expect(parseBmcStats(text)).toEqual({ ...zero, get_recv_count: 10, get_resp_count: 4, hit_misprediction: 1, hit_count: 5, miss_count: 4, update_count: 4 });
    expect(() => parseBmcStats(text.replace('STAT hit_count 5\n', ''))).toThrow(/no hit_count/);
    expect(() => parseBmcStats(`${text}STAT hit_count 6\n`)).toThrow(/hit_count appears twice/);
  });

  it('no hit is a failed cell, with the counter that says where it stopped', () => {
    expect(bmcHitProblem({ ...zero, hit_count: 1 })).toBeUndefined();
    expect(bmcHitProblem(zero)).toMatch(/saw no GET request/);
    expect(bmcHitProblem({ ...zero, get_recv_count: 9, get_resp_count: 0 })).toMatch(/never filled its cache .*tc egress/);
    expect(bmcHitProblem({ ...zero, get_recv_count: 9, update_count: 3, miss_count: 9 })).toMatch(/3 cache updates but no hit/);
  });

  it('a log without a load failure has none; the ready line is what bmc prints once attached', () => {
    expect(bmcLoadFailure(`===========\nLOADED BPF PROGRAM\n===========\n${BMC_READY_TEXT} 3\n...`)).toBeUndefined();
  });
});

describe('captured from a real run (test/fixtures/bmc/README)', () => {
  it("the fork as published, on Linux 7.3: the verifier's refusal, its program and message", () => {
    const log = fixture('load-failure-unpatched-7.3.txt');
    const f = parseBmcLoadFailure(log);
    expect(f).toMatchObject({ program: 'bmc_write_reply_main', message: 'function calls are not allowed while holding a lock' });
    expect(f!.tail).toMatch(/processed 85 insns[\s\S]*-- END PROG LOAD LOG --$/);
    // what the failed cell prints: the program and the message first, then the log's last lines
    expect(bmcLoadFailure(log)).toMatch(/^bmc_write_reply_main: function calls are not allowed while holding a lock\n[\s\S]*-- END PROG LOAD LOG --$/);
  });

  it("7.3's message sits above its 30 last lines (the start error's quote): the cell must read the whole log (experiments/bmc.ts startBmc)", () => {
    const log = fixture('load-failure-unpatched-7.3.txt');
    const last30 = log.trimEnd().split('\n').slice(-30).join('\n');
    expect(last30).not.toContain('function calls are not allowed while holding a lock');
    expect(parseBmcLoadFailure(last30)?.message).toBeUndefined();
    expect(parseBmcLoadFailure(log)?.message).toBe('function calls are not allowed while holding a lock');
  });

  it('the counters bmc wrote after a memcaslap -U run on Linux 7.3 have hits', () => {
    const s = parseBmcStats(fixture('stats-7.3-smoke.txt'));
    expect(s.hit_count).toBeGreaterThan(0);
    expect(s.get_recv_count).toBeGreaterThanOrEqual(s.hit_count);
    expect(bmcHitProblem(s)).toBeUndefined();
  });
});
