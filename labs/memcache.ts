/** What exercises 3 and 4 share: memcached on the server, GETs over UDP from the client, and their answers. */
import { jsonLines, randInt, randKey } from './grading.js';
import type { GradeContext, GuestPaths } from './types.js';

export const MC_PORT = 11211;

/** On the server once the program is attached: memcached on the link address (UDP and TCP), in the background. $1 labnet. */
export const memcachedSetup = (p: GuestPaths, ip: string) =>
  `nohup memcached -u memcache -t 1 -m 16 -U ${MC_PORT} -p ${MC_PORT} -l ${ip} </dev/null >/dev/null 2>&1 & echo $! > ${p.scratch}/memcached.pid`;

export interface McPlan {
  /** Keys memcached holds, with their values. */
  stored: Map<string, string>;
  /** Keys nobody holds. */
  missing: string[];
  /** The GETs, in the order sent. */
  gets: string[];
}

/** Pure (given the random source): 3-6 stored keys, 1-2 missing ones, each asked 1-4 times in a shuffled order. */
export function planGets(rnd: () => number, o: { stored?: [number, number] } = {}): McPlan {
  const [lo, hi] = o.stored ?? [3, 6];
  const stored = new Map<string, string>();
  while (stored.size < randInt(rnd, lo, hi))
    stored.set(
      randKey(rnd, 'k'),
      randKey(rnd, 'v')
        .repeat(randInt(rnd, 1, 3))
        .slice(0, 60),
    );
  const missing: string[] = [];
  for (let i = randInt(rnd, 1, 2); i > 0; i--) missing.push(randKey(rnd, 'miss'));
  const gets: string[] = [];
  for (const k of [...stored.keys(), ...missing]) for (let i = randInt(rnd, 1, 4); i > 0; i--) gets.push(k);
  for (let i = gets.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [gets[i], gets[j]] = [gets[j]!, gets[i]!];
  }
  return { stored, missing, gets };
}

/** Pure: memcached's answer to `get KEY` (after the 8-byte frame header). */
export const mcAnswer = (key: string, value: string | undefined) => (value === undefined ? 'END\r\n' : `VALUE ${key} 0 ${value.length}\r\n${value}\r\nEND\r\n`);

export interface McClientRun {
  answers: Array<{ id: number; key: string; answer?: string }>;
  stats: Record<string, string>[];
  stored?: number;
}

/** Pure: labnet's JSON lines from one client round trip (mc-set, stats, mc-get-udp, stats). */
export function parseMcClient(out: string): McClientRun {
  const lines = jsonLines<Record<string, unknown>>(out);
  return {
    answers: lines.filter((l) => 'id' in l) as McClientRun['answers'],
    stats: lines.filter((l) => 'cmd_get' in l) as Record<string, string>[],
    stored: lines.find((l) => 'stored' in l)?.stored as number | undefined,
  };
}

/** Pure: of the GETs whose key `only` accepts (all by default), how many were answered exactly as memcached would, and the first that was not. */
export function correctAnswers(
  plan: McPlan,
  answers: McClientRun['answers'],
  only: (key: string) => boolean = () => true,
): { ok: number; total: number; firstWrong?: string } {
  let ok = 0;
  let total = 0;
  let firstWrong: string | undefined;
  plan.gets.forEach((key, i) => {
    if (!only(key)) return;
    total++;
    const a = answers.find((x) => x.id === i + 1)?.answer;
    const want = mcAnswer(key, plan.stored.get(key));
    if (a === want) ok++;
    else firstWrong ??= `get ${key}: ${a === undefined ? 'no answer' : JSON.stringify(a)}, expected ${JSON.stringify(want)}`;
  });
  return { ok, total, ...(firstWrong ? { firstWrong } : {}) };
}

/** Pure: a LabTest from correctAnswers. */
export const answersTest = (name: string, c: ReturnType<typeof correctAnswers>) => ({
  name,
  pass: c.ok === c.total,
  expected: String(c.total),
  seen: `${c.ok}${c.firstWrong ? ` (first wrong: ${c.firstWrong})` : ''}`,
});

/** The client's side, one process: set the stored keys (over TCP, waiting for memcached to listen), stats, the GETs over UDP, stats. */
export async function runMemcacheClient(ctx: GradeContext, plan: McPlan): Promise<McClientRun> {
  const at = [ctx.serverIp, String(MC_PORT)];
  const r = await ctx.client(
    [
      ctx.paths.labnet,
      ...['mc-set', ...at, ...[...plan.stored].flat(), '+'],
      ...['mc-stats', ...at, '+'],
      ...['mc-get-udp', ...at, '2000', ...plan.gets, '+'],
      ...['mc-stats', ...at],
    ],
    { timeoutS: 90, what: 'the client talking to memcached' },
  );
  return parseMcClient(r.stdout);
}

/** Pure: a stats counter's growth between the two `stats` the client took. */
export function statDelta(run: McClientRun, name: string): number {
  const [a, b] = run.stats;
  return a && b ? Number(b[name]) - Number(a[name]) : Number.NaN;
}
