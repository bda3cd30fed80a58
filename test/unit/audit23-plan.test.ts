import { describe, it, expect } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { planCells } from '../../experiments/cells.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { BENCH_KFUNCS } from '../../experiments/kflex-bench.js';
import { forecast, parseAssumeHost } from '../../lab/sizing.js';
import { kflexPlan, type planRun } from '../../lab/plan.js';
import { kflexDeviations, runDeviations } from '../../lab/deviations.js';
import { kflexText, planJson } from '../../cli/plan.js';

// Issue 23, "Done when": the paper profile's plan and deviations show the new limits.
const assumed = (spec: string) => parseAssumeHost(spec, { ramMb: 0, cpus: 0, la57: false, kvm: false, source: 'this host' });

/** What `plan --profile P --assume-host SPEC` computes, without the stage graph. */
function planned(profile: string, spec: string) {
  const c = loadConfig({ profile, env: {} });
  const host = assumed(spec);
  const cells = planCells(c.profile, {}, EXPERIMENTS);
  const f = forecast(c, cells, host);
  return { config: c, cells, f, host, kflex: kflexPlan(c, cells, f.rows, f.caps) };
}

describe("plan's KFlex section", () => {
  const paper = planned('paper', 'ram=256G,cpus=64,la57,kvm');

  it("paper: each KFlex server's open-file limit from the argv its cell builds", () => {
    expect(paper.kflex!.servers.map((s) => [s.cell, s.params, s.connections, s.nofile, s.runs])).toEqual([
      ['memcache/kflex', 'set_get=10-90,threads=128,concurrency=128,value_size=32', 0, 1024, true],
      ['memcache/kflex', 'set_get=50-50,threads=128,concurrency=128,value_size=32', 0, 1024, true],
      ['redis-getset/kflex', 'ratio=10-90,data_size=64,threads=64,requests=10000', 3200, 5120, false],
      ['redis-zadd/kflex', 'requests=2000000,threads=64', 50, 2048, false],
    ]);
    expect(paper.kflex!.servers[2]!.client.slice(0, 3)).toEqual(['memtier_benchmark', '-s', '<server>']);
  });

  it('paper: the heap-free wait and its bound, the 12 bench kfuncs, the link NIC queue pairs', () => {
    const k = paper.kflex!;
    // memcache/kflex 2 points x 3 repetitions, datastructures/kflex 3, guards/kflex 1 (the redis heaps do not fit 256 GiB).
    expect(k.heapFree).toEqual({ heapCells: 10, waits: 9, boundS: 600, boundTcgS: 1800, marginMiB: 512, pollS: 2 });
    expect(k.benchKfuncs).toEqual([{ cell: 'datastructures/kflex', kfuncs: [...BENCH_KFUNCS], planned: true, readBy: ['guards/kflex'] }]);
    expect(k.benchKfuncs[0]!.kfuncs).toHaveLength(12);
    expect(k.link).toEqual({ backend: 'auto', vcpus: 8, tapQueuePairs: 16, socketQueuePairs: 1, bareMetal: false });
  });

  it('paper: the text names every limit', () => {
    const t = kflexText(paper.kflex!);
    expect(t.split('\n')[0]).toBe('KFlex cells:');
    expect(t).toMatch(
      new RegExp(
        'redis-getset/kflex +ratio=10-90,data_size=64,threads=64,requests=10000 +' +
          'memtier_benchmark -t 64 x -c 50 \\(default\\): 3200 connections -> nofile 5120 \\(the cell is skipped on this host\\)',
      ),
    );
    expect(t).toMatch(/memcache\/kflex +set_get=10-90\S+ +memcaslap -U \(UDP, no connections\): 0 connections -> nofile 1024$/m);
    expect(t).toContain('heap-free wait: before each KFlex cell after the first (9 of the 10 cells with a KFlex heap that run)');
    expect(t).toContain('at most 600 s each (1800 s under TCG), read every 2 s');
    expect(t).toContain("datastructures/kflex needs the 12 bpf_bench_* kfuncs in the server kernel's BTF");
    expect(t).toContain('tap link 16 queue pairs (2 x 8 vCPUs');
  });

  it('paper: --json carries the same under "kflex"', () => {
    const p = { stages: [], totalMinutes: 0, cpus: 2, host: paper.host, server: paper.f.server, cells: paper.f.rows, kflex: paper.kflex } as Awaited<
      ReturnType<typeof planRun>
    >;
    const j = JSON.parse(planJson(paper.config, p));
    expect(j.kflex.servers.map((s: { nofile: number }) => s.nofile)).toEqual([1024, 1024, 5120, 2048]);
    expect(j.kflex.heapFree.boundS).toBe(600);
    expect(j.kflex.benchKfuncs[0].kfuncs).toHaveLength(12);
    expect(j.kflex.link.tapQueuePairs).toBe(16);
  });

  it('smoke: no KFlex section, in text or JSON', () => {
    const smoke = planned('smoke', 'ram=16G,cpus=4,nokvm');
    expect(smoke.kflex).toBeUndefined();
    const p = { stages: [], totalMinutes: 0, cpus: 2, host: smoke.host, server: smoke.f.server, cells: smoke.f.rows } as Awaited<ReturnType<typeof planRun>>;
    expect(JSON.parse(planJson(smoke.config, p))).not.toHaveProperty('kflex');
  });
});

describe("the paper profile's deviations: server open files and the heap-free wait", () => {
  it('paper: both listed, on the KFlex cells they affect', () => {
    const c = loadConfig({ profile: 'paper', env: {} });
    const devs = runDeviations(c, { accel: 'kvm', cells: planCells(c.profile, {}, EXPERIMENTS) });
    const nofile = devs.find((d) => d.topic === 'server open files')!;
    expect(nofile.artifact).toContain('the default soft limit of 1024 open files');
    expect(nofile.lab).toContain(
      '(memcache/kflex 1024 for 0; redis-getset/kflex 5120 for 3200; redis-zadd/kflex 2048 for 50); ' + 'recorded per cell as server_nofile',
    );
    expect(nofile.why).toContain('src/Main.cpp:222-228 --kredis exits, :376-391 and :550-591 --kmemcached/--kmemcache lose one of 16 accept threads');
    expect(nofile.affects).toBe('memcache (kflex), redis-getset (kflex), redis-zadd (kflex)');
    const wait = devs.find((d) => d.topic === 'heap-free wait')!;
    expect(wait.artifact).toBe('the KFlex experiments run back to back, each ffkx or ffkx-bench started as the last one exits');
    expect(wait.lab).toContain('within 512 MiB of its level before the first, at most 600 s');
    expect(wait.lab).toContain(
      'inside datastructures/kflex, which frees and reallocates its heap per benchmark, the server VM is sized for two of its heaps where the host holds them',
    );
    expect(wait.affects).toBe('memcache (kflex), redis-getset (kflex), redis-zadd (kflex), datastructures (kflex)');
    // The bound follows the accelerator (the report lists both rows in its deviations table, not beside the claims).
    expect(runDeviations(c, { accel: 'tcg', cells: planCells(c.profile, {}, EXPERIMENTS) }).find((d) => d.topic === 'heap-free wait')!.lab).toContain(
      'at most 1800 s',
    );
  });

  it('paper --only memcache: the heap-free wait names no datastructures cell that is not in the run', () => {
    const c = loadConfig({ profile: 'paper', env: {} });
    const wait = kflexDeviations(c, planCells(c.profile, { only: ['memcache'] }, EXPERIMENTS)).find((d) => d.topic === 'heap-free wait')!;
    expect(wait.lab).not.toMatch(/datastructures|two of its heaps/);
    expect(wait.affects).toBe('memcache (kflex)');
  });

  it('smoke (no KFlex built): neither', () => {
    const c = loadConfig({ profile: 'smoke', env: {} });
    const cells = planCells(c.profile, {}, EXPERIMENTS);
    expect(cells.some((x) => x.variant.id === 'kflex')).toBe(true);
    const topics = runDeviations(c, { accel: 'tcg', cells }).map((d) => d.topic);
    expect(topics).not.toContain('server open files');
    expect(topics).not.toContain('heap-free wait');
    expect(kflexDeviations(c, cells)).toEqual([]);
  });
});
