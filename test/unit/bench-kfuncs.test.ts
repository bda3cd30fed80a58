import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../core/config.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { BENCH_KFUNCS, datastructures, guards } from '../../experiments/kflex-bench.js';
import {
  KFLEX_KERNEL,
  FFKX,
  SERVER_PROBE_SCRIPT,
  declaredNeeds,
  parseProbeLines,
  plannedCapabilities,
  unmetRequirement,
} from '../../experiments/requirements.js';
import { testCaps } from './support/caps.js';
import { tempDir } from '../helpers.js';

const variant = (e: string, v: string) => EXPERIMENTS.find((x) => x.id === e)!.variants.find((x) => x.id === v)!;
const btfNames = (e: string, v: string) => variant(e, v).requires.flatMap((r) => (r.kind === 'btf' ? [r.name] : []));
// A paper server that holds the 64 GiB heap, with ffkx in the image: only the kernel's BTF decides.
const caps = (over: Parameters<typeof testCaps>[0]) =>
  testCaps(over, { kernelRelease: '6.9.0-kflex', kflexKernel: true, ffkx: true, serverMemoryMb: 128 * 1024, serverCpus: 8, accel: 'kvm' });

describe("ffkx-bench's bpf_bench_* kfuncs (KFlex-linux kernel/bpf/helpers.c, built in with CONFIG_BPF_SYSCALL)", () => {
  it('are the 12 names bench_data_structures.bpf.c declares __ksym, required by the KFlex data-structure run and its guard log', () => {
    expect(BENCH_KFUNCS).toHaveLength(12);
    for (const ds of ['linked_list', 'graph_linked_list', 'rbtree', 'skiplist'])
      for (const op of ['update', 'lookup', 'delete']) expect(BENCH_KFUNCS).toContain(`bpf_bench_${ds}_${op}`);
    // The KFlex kernel first, so a kernel without KFlex reads as that, not as a missing kfunc.
    expect(btfNames('datastructures', 'kflex')).toEqual([KFLEX_KERNEL.name, ...BENCH_KFUNCS]);
    expect(btfNames('guards', 'kflex')).toEqual(btfNames('datastructures', 'kflex'));
    // Only ffkx-bench calls them: the servers and the arena run do not ask for them.
    for (const [e, v] of [
      ['memcache', 'kflex'],
      ['redis-getset', 'kflex'],
      ['redis-zadd', 'kflex'],
      ['datastructures', 'arena'],
    ] as const)
      expect(btfNames(e, v).filter((n) => n.startsWith('bpf_bench_'))).toEqual([]);
  });

  it('a kernel without one of them skips the whole ffkx-bench run (one skeleton) with the reason; with all of them it runs', () => {
    const ds = datastructures.variants.find((v) => v.id === 'kflex')!;
    expect(unmetRequirement(ds, caps({}))).toBeUndefined();
    expect(unmetRequirement(ds, caps({ kflexKernel: false }))).toBe(KFLEX_KERNEL.missing.replace('{release}', '6.9.0-kflex'));
    const noBench = caps({ benchKfuncs: false });
    expect(unmetRequirement(ds, noBench)).toBe(
      "guest kernel 6.9.0-kflex has no kfunc bpf_bench_linked_list_update in its BTF: ffkx-bench's bpf_* baselines call it, and " +
        'without it its one skeleton (bench_data_structures.bpf.o, every benchmark ffkx_* included) cannot load. KFlex-linux builds ' +
        'it into vmlinux (kernel/bpf/helpers.c, CONFIG_BPF_SYSCALL; in the BTF with CONFIG_DEBUG_INFO_BTF): use the pinned KFlex-linux',
    );
    const onlyRbtreeMissing = caps({});
    onlyRbtreeMissing.btf!.bpf_bench_rbtree_update = false;
    expect(unmetRequirement(ds, onlyRbtreeMissing)).toMatch(/^guest kernel 6\.9\.0-kflex has no kfunc bpf_bench_rbtree_update in its BTF/);
    // guards reads that run's log: skipped with the same reason.
    expect(unmetRequirement(guards.variants[0]!, onlyRbtreeMissing)).toBe(unmetRequirement(ds, onlyRbtreeMissing));
    // The kfuncs come before ffkx: a kernel without them says so even where ffkx is missing too.
    expect(unmetRequirement(ds, caps({ benchKfuncs: false, ffkx: false }))).toMatch(/no kfunc bpf_bench_/);
    expect(unmetRequirement(ds, caps({ ffkx: false }))).toBe(FFKX.missing);
  });

  it('plan: the paper profiles (KFlex-linux, bpf-xdp: BPF_SYSCALL, DEBUG_INFO_BTF) will have them, the Debian kernels will not', () => {
    const facts = { serverMemoryMb: 128 * 1024, serverCpus: 8, la57: true, accel: 'kvm' as const };
    for (const name of ['paper', 'paper-scaled']) {
      const p = loadConfig({ profile: name, env: {} }).profile;
      expect(p.kernel.fragments).toContain('bpf-xdp');
      const planned = plannedCapabilities(p, EXPERIMENTS, facts);
      for (const k of BENCH_KFUNCS) expect(planned.btf?.[k]).toBe(true);
    }
    for (const name of ['smoke', 'upstream']) {
      const p = loadConfig({ profile: name, env: {} }).profile;
      const planned = plannedCapabilities(p, EXPERIMENTS, facts);
      for (const k of BENCH_KFUNCS) expect(planned.btf?.[k]).toBe(false);
      // The reason plan gives stays the KFlex one.
      expect(unmetRequirement(variant('datastructures', 'kflex'), planned)).toMatch(/is not a KFlex kernel: BPF_MAP_TYPE_HEAP/);
    }
  });

  it("are asked in the server's one probe round trip and found by name in the BTF string table", () => {
    const asked = declaredNeeds(EXPERIMENTS).btf.map((n) => n.name);
    for (const k of BENCH_KFUNCS) expect(asked).toContain(k);
    const d = tempDir();
    // A BTF string table is NUL-separated names; assembled for the test: a KFlex kernel with all 12, one without the rbtree ones.
    writeFileSync(join(d, 'kflex'), Buffer.from(`\0BPF_MAP_TYPE_HEAP\0${BENCH_KFUNCS.join('\0')}\0rb_root_cached\0`));
    writeFileSync(
      join(d, 'partial'),
      Buffer.from(`\0BPF_MAP_TYPE_HEAP\0${BENCH_KFUNCS.filter((k) => !k.includes('rbtree')).join('\0')}\0bpf_bench_rbtree_update_x\0`),
    );
    const probe = (btf: string) =>
      parseProbeLines(
        spawnSync('sh', ['-c', SERVER_PROBE_SCRIPT, 'probe', 'lo', join(d, btf), ...BENCH_KFUNCS.map((k) => `btf:${k}`)], { encoding: 'utf8' }).stdout,
      );
    const all = probe('kflex');
    for (const k of BENCH_KFUNCS) expect(all[`btf:${k}`]).toBe('yes');
    const partial = probe('partial');
    for (const k of BENCH_KFUNCS) expect(partial[`btf:${k}`]).toBe(k.includes('rbtree') ? 'no' : 'yes');
  });
});
