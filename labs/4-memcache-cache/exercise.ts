import { randInt } from '../grading.js';
import { answersTest, correctAnswers, memcachedSetup, type McClientRun, type McPlan, planGets, runMemcacheClient, statDelta } from '../memcache.js';
import { type Exercise, type GradeContext, type LabTest, SubmissionRejected } from '../types.js';

const KEY_LEN = 32;
const VAL_MAX = 64;

/** Pure: a `cache` entry as labctl update's hex: the key zero-padded, then struct lab_mc_value (u32 len, data). */
export function cacheEntryHex(key: string, value: string): [string, string] {
  const k = Buffer.alloc(KEY_LEN);
  k.write(key, 'latin1');
  const v = Buffer.alloc(4 + VAL_MAX);
  v.writeUInt32LE(value.length, 0);
  v.write(value, 4, 'latin1');
  return [k.toString('hex'), v.toString('hex')];
}

/** Pure: the answers for cached and other keys, and what memcached's own stats saw, as tests. */
export function judgeCache(plan: McPlan, cached: Set<string>, run: McClientRun): LabTest[] {
  const hits = correctAnswers(plan, run.answers, (k) => cached.has(k));
  const rest = correctAnswers(plan, run.answers, (k) => !cached.has(k));
  const toMemcached = rest.total;
  const storedNotCached = plan.gets.filter((k) => plan.stored.has(k) && !cached.has(k)).length;
  const cmdGet = statDelta(run, 'cmd_get');
  const getHits = statDelta(run, 'get_hits');
  return [
    answersTest('GETs of cached keys answered correctly (by XDP_TX)', hits),
    answersTest('other GETs answered correctly (by memcached)', rest),
    {
      name: "memcached's cmd_get grew only by the GETs the cache does not hold (hits bypassed it)",
      pass: cmdGet === toMemcached,
      expected: String(toMemcached),
      seen: String(cmdGet),
    },
    {
      name: "memcached's get_hits grew by the GETs of keys only memcached holds",
      pass: getHits === storedNotCached,
      expected: String(storedNotCached),
      seen: String(getHits),
    },
  ];
}

async function grade(ctx: GradeContext): Promise<LabTest[]> {
  const plan = planGets(ctx.random, { stored: [4, 7] });
  // Some stored keys go into the XDP cache (at least one, never all): the rest must still reach memcached.
  const keys = [...plan.stored.keys()];
  const cached = new Set(keys.slice(0, randInt(ctx.random, 1, keys.length - 1)));
  const entries = [...cached].flatMap((k) => cacheEntryHex(k, plan.stored.get(k)!));
  const r = await ctx.server([ctx.paths.labctl, 'update', `${ctx.paths.pin}/cache`, ...entries], { what: 'filling the map cache' });
  if (r.code !== 0)
    throw new SubmissionRejected(
      'program',
      `the grader could not fill your map 'cache' (keys struct lab_mc_key, values struct lab_mc_value): ${r.stdout.replace(/@@/g, '').trim()}`,
    );
  const run = await runMemcacheClient(ctx, plan);
  return judgeCache(plan, cached, run);
}

export const exercise: Exercise = {
  n: 4,
  slug: 'memcache-cache',
  title: 'Answer GETs for cached keys with XDP_TX (a small BMC)',
  file: 'prog.bpf.c',
  attach: 'xdp',
  serverSetup: (p, ip) => memcachedSetup(p, ip),
  grade,
};
