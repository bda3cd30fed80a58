import type { Capabilities } from '../../../experiments/types.js';
import { BMC, FFKX, KFLEX_KERNEL, MEMCACHED, MEMCASLAP, MEMTIER, REDIS_BENCHMARK, REDIS_SERVER, programKey } from '../../../experiments/requirements.js';
import { BENCH_KFUNCS } from '../../../experiments/kflex-bench.js';

/** The probe's answers in the words tests think in: a KFlex kernel, ffkx, memtier, BMC; the distribution baselines are there unless said. */
export interface CapsFlags {
  kflexKernel?: boolean;
  /** ffkx-bench's bpf_bench_* kfuncs in the BTF: a KFlex kernel at the pinned commit has them built in, so they follow kflexKernel unless said. */
  benchKfuncs?: boolean;
  ffkx?: boolean;
  memtier?: boolean;
  bmc?: boolean;
  baselines?: boolean;
}

/** Capabilities as a probe of guests with these answers would return them. */
export function testCaps(over: Partial<Capabilities> & CapsFlags = {}, base: Partial<Capabilities> & CapsFlags = {}): Capabilities {
  const f = { ...base, ...over };
  const { kflexKernel = false, benchKfuncs = kflexKernel, ffkx = false, memtier = false, bmc = false, baselines = true, ...rest } = f;
  const baselinePrograms = [MEMCACHED, MEMCASLAP, REDIS_SERVER, REDIS_BENCHMARK].map((n) => [programKey(n), baselines]);
  return {
    kernelRelease: '6.1.192',
    btf: { [KFLEX_KERNEL.name]: kflexKernel, ...Object.fromEntries(BENCH_KFUNCS.map((n) => [n, benchKfuncs])) },
    programs: Object.fromEntries([[programKey(FFKX), ffkx], [programKey(MEMTIER), memtier], [programKey(BMC), bmc], ...baselinePrograms]),
    nativeXdp: true,
    serverMemoryMb: 1024,
    serverCpus: 1,
    la57: true,
    accel: 'tcg',
    linkIfindex: 3,
    ...rest,
  };
}
