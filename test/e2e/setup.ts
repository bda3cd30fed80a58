// The e2e project's global setup: the tests run bin/kflex-lab.mjs, which runs dist/ only while it is
// current; build it first when a source changed since `npm ci` (or the last build), so the e2e tests
// exercise the compiled CLI a user runs, not the tsx fallback.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { staleness } from '../../bin/freshness.mjs';
import { ROOT } from '../helpers.js';

export default function setup(): void {
  const why = staleness(ROOT);
  if (!why) return;
  console.warn(`e2e: ${why}: npm run build`);
  spawnSync(process.execPath, [join(ROOT, 'bin', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const still = staleness(ROOT);
  if (!still) return;
  const msg = `e2e: the compiled CLI cannot be used (${still}): the tests would run the sources through tsx`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${msg}`);
  console.warn(`WARNING: ${msg}`);
}
