import { cString, compareCounts, dumpMap, entryTotal } from '../grading.js';
import { answersTest, correctAnswers, memcachedSetup, type McClientRun, type McPlan, planGets, runMemcacheClient, statDelta } from '../memcache.js';
import type { Exercise, GradeContext, LabTest } from '../types.js';

/** Pure: the GETs sent, memcached's answers and stats, and the program's key_count map, as tests. */
export function judgeKeyCount(plan: McPlan, run: McClientRun, counted: Map<string, number>): LabTest[] {
  const expected = new Map<string, number>();
  for (const k of plan.gets) expected.set(k, (expected.get(k) ?? 0) + 1);
  const answers = correctAnswers(plan, run.answers);
  const reached = statDelta(run, 'cmd_get');
  return [
    ...compareCounts('GETs counted for key', expected, counted, (k) => JSON.stringify(k)),
    answersTest('GETs memcached answered correctly (the program passes them)', answers),
    { name: "memcached's own cmd_get grew by every GET", pass: reached === plan.gets.length, expected: String(plan.gets.length), seen: String(reached) },
  ];
}

async function grade(ctx: GradeContext): Promise<LabTest[]> {
  const plan = planGets(ctx.random);
  const run = await runMemcacheClient(ctx, plan);
  const dump = await dumpMap(ctx, 'key_count');
  const counted = new Map(dump.entries.map((e) => [cString(e.key), Number(entryTotal(e))]));
  return judgeKeyCount(plan, run, counted);
}

export const exercise: Exercise = {
  n: 3,
  slug: 'memcache-keys',
  title: 'Parse memcache-over-UDP GETs and count keys (XDP, hash map)',
  file: 'prog.bpf.c',
  attach: 'xdp',
  serverSetup: (p, ip) => memcachedSetup(p, ip),
  grade,
};
