// Whether dist/ (the compiled CLI) is at least as new as every TypeScript source it is built from.
// Plain JavaScript: the launcher reads it before anything is compiled. Kept cheap (one directory walk and
// one stat per .ts file, ~2 ms), since it runs at every start.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** What tsconfig.build.json compiles (a unit test keeps the two lists equal). */
export const SOURCE_ROOTS = ['lab.ts', 'cli', 'core', 'lab', 'llvm', 'kernel', 'images', 'vm', 'hosts', 'experiments', 'report', 'bpf', 'labs'];
/** Written by bin/build.mjs after a successful tsc, relative to the package root. */
export const STAMP = join('dist', '.build-stamp.json');

/** The newest .ts source under the roots: its mtime, its path (relative to root) and how many there are. */
export function newestSource(root, roots = SOURCE_ROOTS) {
  let newest = { mtimeMs: 0, file: '', count: 0 };
  const see = (path) => {
    const m = statSync(path).mtimeMs;
    newest.count++;
    if (m > newest.mtimeMs) newest = { ...newest, mtimeMs: m, file: relative(root, path) };
  };
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) see(join(dir, e.name));
    }
  };
  for (const r of roots) {
    const p = join(root, r);
    if (r.endsWith('.ts')) see(p);
    else walk(p);
  }
  return newest;
}

/**
 * Why dist/ must not run (undefined when it may): no build, a build that did not finish, a source newer than
 * the build (edited since), or a different number of sources (one added or removed with an old mtime).
 */
export function staleness(root, roots = SOURCE_ROOTS) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP), 'utf8'));
  } catch {
    return 'no finished build in dist/';
  }
  const now = newestSource(root, roots);
  if (now.mtimeMs > stamp.newest_mtime_ms) return `${now.file} changed after the last build`;
  if (now.count !== stamp.sources) return `${now.count} TypeScript sources now, ${stamp.sources} when dist/ was built`;
  return undefined;
}
