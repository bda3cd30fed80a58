import { testCaps } from './support/caps.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { describe, it, expect } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { planCells } from '../../experiments/cells.js';
import { forecast, parseAssumeHost, sizeServer, heapDeviations, type HostShape } from '../../lab/sizing.js';
import { heapVmMemoryMb } from '../../experiments/heaps.js';

const base: HostShape = { ramMb: 24 * 1024, cpus: 2, la57: false, kvm: false, source: 'this host' };
const verdicts = (profile: string, spec: string) => {
  const c = loadConfig({ profile, env: {} });
  const f = forecast(c, planCells(c.profile, {}, EXPERIMENTS), parseAssumeHost(spec, base));
  return { ...f, byId: Object.fromEntries(f.rows.map((r) => [`${r.experiment}/${r.variant}`, r])) };
};

describe('will my host run it? (plan --assume-host)', () => {
  it('parses a described host', () => {
    expect(parseAssumeHost('ram=256G,cpus=64,la57,kvm', base)).toEqual({ ramMb: 262144, cpus: 64, la57: true, kvm: true, source: 'assumed' });
    expect(parseAssumeHost('ram=65536M,nokvm', base)).toMatchObject({ ramMb: 65536, kvm: false, la57: false });
    expect(() => parseAssumeHost('ram=lots', base)).toThrow(/give a size such as 256G/);
    expect(() => parseAssumeHost('gpus=8', base)).toThrow(/unknown/);
  });

  it('paper on a 256 GiB KVM host with LA57: memcache, data structures and guards run; the 256 GiB heaps are skipped with the numbers', () => {
    const f = verdicts('paper', 'ram=256G,cpus=64,la57,kvm');
    expect(f.server.memoryMb).toBe(heapVmMemoryMb(128));
    expect(Math.round(f.server.memoryMb / 1024)).toBe(132);
    for (const id of ['memcache/kflex', 'datastructures/kflex', 'guards/kflex', 'memcache/userspace']) expect(f.byId[id]!.verdict, id).toBe('run');
    for (const id of ['redis-getset/kflex', 'redis-zadd/kflex']) {
      expect(f.byId[id]!.verdict).toBe('skip');
      expect(f.byId[id]!.reason).toMatch(/needs a 256 GiB KFlex heap .* \(~263 GiB\); the server has 132\.\d GiB/);
    }
  });

  it('paper-scaled on a 64 GiB host runs every KFlex cell on scaled heaps (32 GiB servers, 8 GiB bench), marked scaled and recorded', () => {
    const f = verdicts('paper-scaled', 'ram=64G,cpus=16,la57,kvm');
    for (const r of f.rows.filter((x) => x.variant === 'kflex')) {
      expect(r.verdict, `${r.experiment}: ${r.reason}`).toBe('run');
      expect(r.scaled).toBe(true);
      expect(r.heapGiB).toBe(r.experiment === 'datastructures' || r.experiment === 'guards' ? 8 : 32);
    }
    const devs = heapDeviations(loadConfig({ profile: 'paper-scaled', env: {} }).profile);
    expect(devs.map((d) => d.affects)).toEqual(['memcache', 'redis-getset', 'redis-zadd', 'datastructures, guards']);
    expect(devs[0]!.artifact).toMatch(/ffkx_heap\(128\)/);
  });

  it('without LA57 under KVM the scaled heaps cannot be placed, and the cells say why', () => {
    const f = verdicts('paper-scaled', 'ram=64G,cpus=16,nola57,kvm');
    for (const r of f.rows.filter((x) => x.variant === 'kflex')) expect(r.reason, r.experiment).toMatch(/cannot be placed without 5-level paging/);
  });

  it('auto never gives the server more than the host has after the client and the reserve', () => {
    const c = loadConfig({ profile: 'paper', env: {} });
    const s = sizeServer(c.profile, { ...base, ramMb: 16 * 1024 }, planCells(c.profile, {}, EXPERIMENTS));
    expect(s.memoryMb).toBe(4096);
    expect(s.why).toMatch(/no KFlex heap fits/);
  });
});

describe('heap sizes in lab.yaml', () => {
  it('a heap that is not a power of two, or too small for the pools ffkx fills, is refused with the field', () => {
    expect(() => loadConfig({ profile: 'paper', set: ['kflex.heap_gib.kredis=48'], env: {} })).toThrow(/kflex\.heap_gib\.kredis: a power of two/);
    expect(() => loadConfig({ profile: 'paper', set: ['kflex.heap_gib.kredis=16'], env: {} })).toThrow(/kflex\.heap_gib\.kredis: at least 32 GiB/);
    expect(() => loadConfig({ profile: 'paper', set: ['kflex.heap_gib.bench=4'], env: {} })).toThrow(/kflex\.heap_gib\.bench: at least 8 GiB/);
  });
});

describe('scaled heaps in the cells', () => {
  it("every KFlex cell of a scaled profile records its heap against the artifact's", async () => {
    const { runCells } = await import('../../experiments/runner.js');
    const { EventBus } = await import('../../core/events.js');
    const { tempDir } = await import('../helpers.js');
    const c = loadConfig({ profile: 'paper-scaled', env: {} });
    const cells = planCells(c.profile, { only: ['memcache'], quick: true }, EXPERIMENTS).filter((x) => x.variant.id === 'kflex');
    const host = { name: 'h', exec: async () => ({ code: 0, stdout: '', stderr: '' }), copyIn: async () => {}, copyOut: async () => {} };
    const caps = testCaps({ kernelRelease: 'x', serverMemoryMb: 1, accel: 'kvm', linkIfindex: 2 });
    const { records } = await runCells(cells, {
      runDir: tempDir(),
      server: host,
      client: host,
      serverIp: '10.0.0.1',
      linkIf: 'eth1',
      caps,
      bus: new EventBus(),
    });
    expect(records[0]).toMatchObject({ status: 'skipped', heap: { gib: 32, artifact_gib: 128, scaled: true } });
  });
});
