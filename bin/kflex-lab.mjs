#!/usr/bin/env node
// The CLI. It runs the compiled build (dist/lab.js, from npm run build, which npm ci runs through prepare)
// when dist/ is at least as new as every TypeScript source it was built from; otherwise it runs lab.ts
// through tsx and says why on stderr, so a student who edits the lab never runs stale code and never
// needs a build step to try a change.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleness } from './freshness.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const why = staleness(root);
if (!why) {
  await import('../dist/lab.js');
} else {
  process.stderr.write(`kflex-lab: ${why}: running the TypeScript sources through tsx (npm run build for the fast start)\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import('../lab.ts');
}
