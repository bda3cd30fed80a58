import type { Experiment } from './types.js';
import { memcache } from './memcache.js';
import { redisGetSet, redisZadd } from './redis.js';
import { datastructures, guards } from './kflex-bench.js';

/** The artifact's five experiments, in the order they run (5 reads 4's kernel log). */
export const EXPERIMENTS: Experiment[] = [memcache, redisGetSet, redisZadd, datastructures, guards];

export function experimentById(id: string): Experiment | undefined {
  return EXPERIMENTS.find((e) => e.id === id);
}
