import { type Marker, judgeLoad, marker, markers, randInt } from '../grading.js';
import type { Exercise, GradeContext, LabTest } from '../types.js';

export const NBUCKETS = 64;
export const OP = { update: 1, lookup: 2, delete: 3 } as const;
const ENOENT = -2;

export interface HtabOp {
  op: number;
  key: number;
  value: number;
}

/** Pure (given the random source): 60-90 operations on keys 0-199 (so buckets collide), with the model's answers. */
export function planOps(rnd: () => number): { ops: HtabOp[]; expected: Array<{ ret: number; value?: number }>; final: Map<number, number> } {
  const model = new Map<number, number>();
  const ops: HtabOp[] = [];
  const expected: Array<{ ret: number; value?: number }> = [];
  const n = randInt(rnd, 60, 90);
  for (let i = 0; i < n; i++) {
    const known = [...model.keys()];
    const pickKnown = known.length > 0 && rnd() < 0.6;
    const key = pickKnown ? known[Math.floor(rnd() * known.length)]! : randInt(rnd, 0, 199);
    const r = rnd();
    if (r < 0.5 || i < 10) {
      const value = randInt(rnd, 1, 0xffffffff);
      ops.push({ op: OP.update, key, value });
      model.set(key, value);
      expected.push({ ret: 0 });
    } else if (r < 0.75) {
      ops.push({ op: OP.lookup, key, value: 0 });
      const v = model.get(key);
      expected.push(v === undefined ? { ret: ENOENT } : { ret: 0, value: v });
    } else {
      ops.push({ op: OP.delete, key, value: 0 });
      expected.push({ ret: model.delete(key) ? 0 : ENOENT });
    }
  }
  return { ops, expected, final: model };
}

export const opsFile = (ops: HtabOp[]) => `${ops.map((o) => `${o.op} ${o.key} ${o.value}`).join('\n')}\n`;

export interface HtabWalk {
  results: Array<{ op: number; key: number; ret: number; value: number }>;
  table?: { nbuckets: number; count: number; pool: number };
  entries: Array<{ bucket: number; key: number; value: number }>;
  free?: number;
  problems: string[];
}

/** Pure: labctl htab's output (its markers): one @@op per operation, then the table the grader walked in the arena. */
export function parseWalk(ms: Marker[]): HtabWalk {
  const t = marker(ms, 'table');
  const free = marker(ms, 'free');
  return {
    results: markers(ms, 'op').map((m) => JSON.parse(m.arg) as HtabWalk['results'][number]),
    ...(t ? { table: JSON.parse(t.arg) as NonNullable<HtabWalk['table']> } : {}),
    entries: t ? t.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as HtabWalk['entries'][number]) : [],
    ...(free ? { free: Number(free.arg) } : {}),
    problems: ms.filter((m) => ['bad-pointer', 'cycle', 'no-table'].includes(m.name)).map((m) => `${m.name} ${m.arg}`.trim()),
  };
}

/** Pure: the operations' answers and the structure read back from the arena, against the model. */
export function judgeHtab(plan: ReturnType<typeof planOps>, w: HtabWalk): LabTest[] {
  const wrongOps = plan.expected
    .map((e, i) => ({ e, r: w.results[i], o: plan.ops[i]! }))
    .filter(({ e, r }) => !r || r.ret !== e.ret || (e.value !== undefined && r.value !== e.value));
  const first = wrongOps[0];
  const name = (o: HtabOp) => `${Object.keys(OP).find((k) => OP[k as keyof typeof OP] === o.op)}(${o.key})`;
  const returned = (r: (typeof w.results)[number] | undefined) => (r ? `${r.ret}/${r.value}` : 'nothing');
  const answer = (e: (typeof plan.expected)[number]) => `${e.ret}${e.value !== undefined ? `/${e.value}` : ''}`;
  const seenMap = new Map<number, number>();
  const dups = new Set<number>();
  for (const e of w.entries) {
    if (seenMap.has(e.key)) dups.add(e.key);
    else seenMap.set(e.key, e.value);
  }
  const missing = [...plan.final].filter(([k, v]) => seenMap.get(k) !== v);
  const extra = [...seenMap.keys()].filter((k) => !plan.final.has(k));
  const misplaced = w.entries.filter((e) => e.bucket !== e.key % NBUCKETS);
  const free = w.free ?? 0;
  const t = w.table;
  return [
    {
      name: 'operation results (update, lookup, delete)',
      pass: wrongOps.length === 0 && w.results.length === plan.ops.length,
      expected: `${plan.ops.length} right`,
      seen: first
        ? `${plan.ops.length - wrongOps.length} right; first wrong: ${name(first.o)} returned ${returned(first.r)}, expected ${answer(first.e)}`
        : `${w.results.length} right`,
    },
    {
      name: 'the table is readable in the arena (htab_for_user, pointers inside the arena)',
      pass: !!t && w.problems.length === 0,
      expected: 'a table, no bad pointer',
      seen: t ? w.problems.join('; ') || 'ok' : 'no table',
    },
    {
      name: 'table contents after the sequence',
      pass: missing.length === 0 && extra.length === 0,
      expected: `${plan.final.size} keys`,
      seen: `${seenMap.size} keys${
        missing.length
          ? `; wrong or missing: ${missing
              .slice(0, 3)
              .map(([k]) => k)
              .join(', ')}`
          : ''
      }${extra.length ? `; not expected: ${extra.slice(0, 3).join(', ')}` : ''}`,
    },
    { name: 'no key twice', pass: dups.size === 0, expected: 'each key once', seen: dups.size ? `twice: ${[...dups].slice(0, 5).join(', ')}` : 'each once' },
    {
      name: `every node in bucket key % ${NBUCKETS}`,
      pass: misplaced.length === 0,
      expected: '0 misplaced',
      seen: misplaced.length ? `${misplaced.length}, e.g. key ${misplaced[0]!.key} in bucket ${misplaced[0]!.bucket}` : '0 misplaced',
    },
    { name: 'count field = keys in the table', pass: t?.count === plan.final.size, expected: String(plan.final.size), seen: String(t?.count) },
    {
      name: 'no leaked node: pool = nodes in the buckets + nodes on the free list',
      pass: !!t && t.pool === w.entries.length + free,
      expected: `pool ${t?.pool}`,
      seen: `${w.entries.length} in buckets + ${free} free = ${w.entries.length + free}`,
    },
  ];
}

async function grade(ctx: GradeContext): Promise<LabTest[]> {
  const plan = planOps(ctx.random);
  const what = 'loading htab_op and running the operations';
  const ms = judgeLoad(await ctx.server([ctx.paths.labctl, 'htab', ctx.paths.object, 'htab_op', '-'], { input: opsFile(plan.ops), timeoutS: 60, what }), what);
  return judgeHtab(plan, parseWalk(ms));
}

export const exercise: Exercise = {
  n: 6,
  slug: 'arena-htab',
  title: 'A hash table on a BPF arena (read back by the grader)',
  file: 'prog.bpf.c',
  needsKernel: { version: [6, 9], why: 'BPF arenas came in Linux 6.9' },
  grade,
};
