import { describe, it, expect } from 'vitest';
import { benchmarkSelection, datastructures } from '../../experiments/kflex-bench.js';
import { loadConfig } from '../../core/config.js';

// Issue 23 item 8: the datastructures cell runs the authors' bench.sh selection (--benchmark_filter=Zipfian, KFlex
// 567387b bench.sh), not the README's whole ./ffkx-bench: a recorded deviation, its text from the profile's filter.
describe('benchmarkSelection: which ffkx-bench benchmarks the datastructures cell runs', () => {
  it("bench.sh's Zipfian filter: the README's Uniform half is not measured, and the guard log holds 31 loads", () => {
    const d = benchmarkSelection(['Zipfian']);
    expect(d).toEqual({
      topic: 'benchmark selection',
      artifact: "README: ./ffkx-bench (all 62 benchmarks); the authors' bench.sh: taskset -c 0 ./ffkx-bench --benchmark_filter=Zipfian --benchmark_format=csv",
      lab: 'taskset -c 0 ffkx-bench --benchmark_filter=Zipfian (JSON output)',
      why: "bench.sh's selection (31 Zipfian benchmarks): the README's Uniform half is not measured, and the guard log holds 31 skeleton loads",
      affects: 'datastructures, guards',
    });
  });

  it("another filter is named as the profile's, neither the README's nor bench.sh's", () => {
    const d = benchmarkSelection(['Uniform', 'Zipfian/.*rbtree.*']);
    expect(d.lab).toBe('taskset -c 0 ffkx-bench --benchmark_filter=Uniform or --benchmark_filter=Zipfian/.*rbtree.* (JSON output)');
    expect(d.why).toBe("the profile's filter: neither the README's whole run nor bench.sh's Zipfian selection");
    expect(benchmarkSelection(['Zipfian/x']).why).toMatch(/^the profile's filter/);
  });

  it("is declared by the datastructures experiment from the profile's grid (the paper profile: Zipfian)", () => {
    const paper = loadConfig({ profile: 'paper', env: {} }).profile;
    const declared = datastructures.deviations!(paper).filter((d) => d.topic === 'benchmark selection');
    expect(declared).toEqual([benchmarkSelection(['Zipfian'])]);
  });
});
