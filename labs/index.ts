/** The student labs' exercises, in order. Each is a folder labs/<n>-<slug>/ with README.md, starter/ and exercise.ts. */
import { join } from 'node:path';
import { LAB_ROOT } from '../core/paths.js';
import type { Exercise } from './types.js';
import { exercise as protoCount } from './1-proto-count/exercise.js';
import { exercise as udpDrop } from './2-udp-drop/exercise.js';
import { exercise as memcacheKeys } from './3-memcache-keys/exercise.js';
import { exercise as memcacheCache } from './4-memcache-cache/exercise.js';
import { exercise as condBreak } from './5-cond-break/exercise.js';
import { exercise as arenaHtab } from './6-arena-htab/exercise.js';

export const EXERCISES: readonly Exercise[] = [protoCount, udpDrop, memcacheKeys, memcacheCache, condBreak, arenaHtab];

export const LABS_DIR = join(LAB_ROOT, 'labs');

/** labs/<n>-<slug>: the exercise's folder in the lab (README.md, starter/). */
export const exerciseDir = (e: Exercise) => join(LABS_DIR, `${e.n}-${e.slug}`);

/** The guest-side sources the graders run (compiled in the VMs) and the header submissions include. */
export const GUEST_SOURCES = {
  'labctl.c': join(LABS_DIR, 'guest', 'labctl.c'),
  'labnet.c': join(LABS_DIR, 'guest', 'labnet.c'),
  'kflex_lab.h': join(LABS_DIR, 'include', 'kflex_lab.h'),
} as const;
