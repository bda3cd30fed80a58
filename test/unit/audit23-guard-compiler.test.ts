import { describe, it, expect } from 'vitest';
import { summarize } from '../../experiments/summary.js';
import type { CellRecord } from '../../experiments/cells.js';
import type { Metrics } from '../../experiments/parsers.js';
import { compilerCaveat, judgeClaims, LAB_GUARD_COMPILER, loadClaims, SEED_GUARD_COMPILER } from '../../report/claims.js';
import { kflexBuildCommand } from '../../images/kflex.js';

// Issue 23 item 9: guard counts follow the bytecode (KFlex-linux a6d0177 verifier.c adjust_ptr_min_max_vals counts
// heap-pointer arithmetic per verifier visit and reads no map size), so the exact-table verdict names the compiler.

/** A guards cell's metrics as the guards experiment records them (experiments/kflex-bench.ts runCell). */
const guardsCell = (m: Partial<Metrics>): CellRecord => ({
  experiment: 'guards',
  variant: 'kflex',
  params: {},
  rep: 1,
  status: 'ok',
  metrics: { exact: 1, blocks: 31, blocks_agreeing: 31, loads_found: 31, measured_total: 99, measured_elided: 78, ...m } as Metrics,
  started: '',
  seconds: 1,
});
const verdict = (r: CellRecord, o?: Parameters<typeof judgeClaims>[3]) =>
  judgeClaims(loadClaims(), summarize([r]), [r], o).find((v) => v.claim.id === 'guard-elision')!;

describe('the guard table verdict and the compiler', () => {
  it("the lab's skeleton is compiled by the clang the verdict names, and the seed's compiler is not recorded", () => {
    expect(kflexBuildCommand('/src')).toContain(`CLANG=${LAB_GUARD_COMPILER} `);
    expect(SEED_GUARD_COMPILER).toBeUndefined();
  });

  it('an agreeing table from a compiler that is not the seed\'s reproduces, and says the counts depend on the bytecode, never "exactly"', () => {
    const v = verdict(guardsCell({}));
    expect(v.verdict).toBe('reproduced');
    expect(v.reason).not.toMatch(/exactly/);
    expect(v.reason).toBe(
      "31 of 31 skeleton loads match the seed's table; guard counts depend on the bytecode, so on the clang version: this run's skeleton was " +
        "compiled by clang-19, the seed's by the authors' LLVM (> 18, built from llvm-project, version not recorded), so this compares the " +
        "verifier's counts on this run's bytecode, not an exact reproduction of the seed's (the heap's size cannot change them: the verifier's " +
        'range analysis reads no map size)',
    );
  });

  it('a differing table says the same, after the rows that differ', () => {
    const v = verdict(guardsCell({ exact: 0, blocks_agreeing: 30, 'differs.RBTree Delete (bench_ffkx_rbtr)': 1 }));
    expect(v.verdict).toBe('deviates');
    expect(v.reason).toBe(
      `30 of 31 skeleton loads match the seed's table; differs: RBTree Delete (bench_ffkx_rbtr) in 1 block; ${compilerCaveat({ run: 'clang-19' })}`,
    );
  });

  it("only when the run used the seed's own compiler is the comparison exact", () => {
    expect(verdict(guardsCell({}), { guardCompiler: 'clang-20', seedCompiler: 'clang-20' }).reason).toBe(
      "31 of 31 skeleton loads match the seed's table exactly",
    );
    const other = verdict(guardsCell({}), { guardCompiler: 'clang-19', seedCompiler: 'clang-20' }).reason!;
    expect(other).toContain("compiled by clang-19, the seed's by clang-20");
    expect(other).not.toMatch(/exactly/);
  });
});
