import { judgeLoad, marker, markers, randInt } from '../grading.js';
import type { Exercise, GradeContext, LabTest } from '../types.js';

export const NIL = 0xffffffff;
export const LIST_NODES = 65536;

export interface ListPlan {
  /** Every node written to the map "nodes": index, value, next. */
  nodes: Array<[number, number, number]>;
  /** The lists to sum: head and what the walk must find. */
  lists: Array<{ head: number; length: number; sum: number }>;
}

/**
 * Pure (given the random source): lists over a random permutation of the map's slots: an empty one, a
 * single node, a short one and one longer than any bound a verifier could unroll (3000-8000 nodes).
 */
export function planLists(rnd: () => number): ListPlan {
  const lengths = [0, 1, randInt(rnd, 20, 200), randInt(rnd, 3000, 8000)];
  const need = lengths.reduce((a, b) => a + b, 0);
  const slots = new Set<number>();
  while (slots.size < need) slots.add(Math.floor(rnd() * LIST_NODES));
  const order = [...slots];
  const nodes: ListPlan['nodes'] = [];
  const lists: ListPlan['lists'] = [];
  let at = 0;
  for (const length of lengths) {
    const idx = order.slice(at, at + length);
    at += length;
    let sum = 0;
    idx.forEach((i, k) => {
      const value = randInt(rnd, 0, 0xffffffff);
      sum += value;
      nodes.push([i, value, idx[k + 1] ?? NIL]);
    });
    lists.push({ head: idx[0] ?? NIL, length, sum });
  }
  return { nodes, lists };
}

/** Pure: labctl's list file: the nodes, then one `head` line per list to run. */
export const listFile = (p: ListPlan) => [...p.nodes.map(([i, v, n]) => `node ${i} ${v} ${n}`), ...p.lists.map((l) => `head ${l.head}`), ''].join('\n');

export interface ListRun {
  scan?: { may_goto: number; bpf_loop: number; kfunc_calls: number };
  results: Array<{ head: number; sum: number; count: number }>;
}

/** Pure: how the program loops (from its instructions) and what it returned for each list, as tests. */
export function judgeLists(plan: ListPlan, run: ListRun): LabTest[] {
  const s = run.scan;
  const tests: LabTest[] = [
    {
      name: 'loops with may_goto (cond_break), not bpf_loop',
      pass: !!s && s.may_goto > 0 && s.bpf_loop === 0,
      expected: 'may_goto >= 1, bpf_loop calls 0',
      seen: s ? `may_goto ${s.may_goto}, bpf_loop calls ${s.bpf_loop}` : 'no program',
    },
  ];
  for (const l of plan.lists) {
    const r = run.results.find((x) => x.head === l.head);
    const what = l.length === 0 ? 'the empty list' : `the list of ${l.length} nodes from ${l.head}`;
    tests.push({ name: `sum of ${what}`, pass: r?.sum === l.sum, expected: String(l.sum), seen: r ? String(r.sum) : 'no result' });
    tests.push({ name: `nodes counted in ${what}`, pass: r?.count === l.length, expected: String(l.length), seen: r ? String(r.count) : 'no result' });
  }
  return tests;
}

async function grade(ctx: GradeContext): Promise<LabTest[]> {
  const plan = planLists(ctx.random);
  const what = 'loading sum_list and running it on each list';
  const ms = judgeLoad(await ctx.server([ctx.paths.labctl, 'list', ctx.paths.object, 'sum_list', '-'], { input: listFile(plan), timeoutS: 60, what }), what);
  const scan = marker(ms, 'scan');
  return judgeLists(plan, {
    ...(scan ? { scan: JSON.parse(scan.arg) as ListRun['scan'] } : {}),
    results: markers(ms, 'result').map((m) => JSON.parse(m.arg) as ListRun['results'][number]),
  });
}

export const exercise: Exercise = {
  n: 5,
  slug: 'cond-break',
  title: 'A loop the verifier accepts only through cond_break (may_goto)',
  file: 'prog.bpf.c',
  needsKernel: { version: [6, 9], why: 'may_goto, behind cond_break, came in Linux 6.9' },
  grade,
};
