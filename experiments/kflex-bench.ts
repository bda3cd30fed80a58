import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Experiment } from './types.js';
import { parseGbenchJson, parseGuardLines, compareGuards, SEED_GUARDS } from './parsers.js';
import { KFLEX_GUEST_DIR } from '../core/guest.js';
import { LabError, ExitCode } from '../core/errors.js';

/** Experiment 4: ffkx-bench (Google Benchmark), pinned to CPU 0 as the authors' script does. */
export const datastructures: Experiment = {
  id: 'datastructures',
  title: 'Data structures: bpf_* vs ffkx_* (ffkx-bench)',
  claims: ['datastructures-ops'],
  headline: 'ns_per_op',
  variants: [{ id: 'kflex', description: 'taskset -c 0 ffkx-bench --benchmark_filter=<filter>', requires: ['kflex-kernel', 'ffkx'], heapGiB: 64 }],
  // Each benchmark reloads its skeleton with a 64 GiB heap: minutes, not seconds.
  estimateCellSeconds: (_s, accel) => (accel === 'tcg' ? 3600 : 900),
  async runCell(ctx) {
    const filter = String(ctx.params.filter ?? 'Zipfian');
    await ctx.exec(ctx.server, 'bench', ['taskset', '-c', '0', `${KFLEX_GUEST_DIR}/ffkx-bench`, `--benchmark_filter=${filter}`, '--benchmark_out=/tmp/ffkx-bench.json', '--benchmark_out_format=json'], { timeoutMs: 4 * 3600_000 });
    const json = (await ctx.exec(ctx.server, 'json', ['cat', '/tmp/ffkx-bench.json'])).stdout;
    const metrics: Record<string, number> = {};
    for (const b of parseGbenchJson(json)) {
      metrics[`${b.family}.ns_per_op`] = b.ns_per_op;
      if (b.items_per_second !== undefined) metrics[`${b.family}.items_per_second`] = b.items_per_second;
    }
    return { metrics, files: { 'gbench.json': json } };
  },
};

/**
 * Experiment 5: the verifier's guard-elision lines from the kernel log captured around experiment 4's
 * cells in the same run, compared exactly (in order) with the seed's table.
 */
export const guards: Experiment = {
  id: 'guards',
  title: 'Guard elision (verifier range analysis)',
  claims: ['guard-elision'],
  headline: 'measured_elided',
  variants: [{ id: 'kflex', description: "the KFlex verifier's prog=... range_analysis_call=N elided=M lines", requires: ['kflex-kernel', 'ffkx'] }],
  estimateCellSeconds: () => 1,
  async runCell(ctx) {
    const logs = await kernelLogsOf(join(ctx.runDir, 'runs', 'datastructures'));
    if (!logs.length) throw new LabError('no kernel log from experiment 4 (datastructures) in this run: run it first (--only datastructures guards)', ExitCode.checkFailed);
    const c = compareGuards(parseGuardLines(logs.join('\n')), SEED_GUARDS);
    return {
      metrics: { exact: c.exact ? 1 : 0, measured_total: c.measured_total, measured_elided: c.measured_elided, expected_total: c.expected_total, expected_elided: c.expected_elided },
      files: { 'comparison.json': JSON.stringify(c, null, 2) },
    };
  },
};

async function kernelLogsOf(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === 'kernel.log') out.push(await readFile(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name), 'utf8'));
  }
  return out;
}
