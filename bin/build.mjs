#!/usr/bin/env node
// npm run build (and prepare, so npm ci builds it): compile the lab to dist/ with tsconfig.build.json, then
// write the stamp bin/kflex-lab.mjs checks. The sources' mtimes are taken before tsc reads them, so a file
// edited during the build counts as newer than the build.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestSource, STAMP } from './freshness.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, STAMP);
const sources = newestSource(root);
// Until tsc has finished, dist/ may hold a mix of old and new files: the launcher must not use it.
rmSync(stamp, { force: true });

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // npm ci --omit=dev: no compiler, so no build; the launcher runs the sources through tsx and says so.
  console.error('kflex-lab build: typescript is not installed (dev dependencies omitted?): no dist/; bin/kflex-lab.mjs will run the sources through tsx');
  process.exit(0);
}
const t0 = Date.now();
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    `kflex-lab build: tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal}): no ` +
      `stamp written, so bin/kflex-lab.mjs keeps running the sources through tsx`,
  );
  process.exit(r.status || 1);
}
mkdirSync(dirname(stamp), { recursive: true });
writeFileSync(
  stamp,
  `${JSON.stringify(
    { newest_mtime_ms: sources.mtimeMs, newest: sources.file, sources: sources.count, built_at: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 },
    null,
    2,
  )}\n`,
);
console.error(`kflex-lab build: ${sources.count} sources compiled to dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
