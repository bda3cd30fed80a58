import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newestSource, staleness, SOURCE_ROOTS, STAMP } from '../../bin/freshness.mjs';
import { findLabRoot, LAB_ROOT } from '../../core/paths.js';
import { ROOT, tempDir } from '../helpers.js';

/** A package tree shaped like the lab's: the roots, one source in each of two, a stamp written as the build does. */
function fakePackage(): string {
  const root = tempDir('kflex-launcher-');
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'kflex-lab', type: 'module' }));
  for (const r of SOURCE_ROOTS) if (!r.endsWith('.ts')) mkdirSync(join(root, r), { recursive: true });
  writeFileSync(join(root, 'lab.ts'), "console.log('ran the sources');\n");
  writeFileSync(join(root, 'core', 'a.ts'), 'export {};\n');
  const old = new Date(Date.now() - 60_000);
  for (const f of ['lab.ts', 'core/a.ts']) utimesSync(join(root, f), old, old);
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, 'dist', 'lab.js'), "console.log('ran dist');\n");
  const n = newestSource(root);
  writeFileSync(join(root, STAMP), JSON.stringify({ newest_mtime_ms: n.mtimeMs, sources: n.count }));
  return root;
}

describe('bin/kflex-lab.mjs: the compiled CLI while it is current, the sources otherwise', () => {
  it('compiles exactly the folders whose freshness it checks', () => {
    // tsconfig.build.json allows comments (tsc reads it as JSONC): drop the comment lines.
    const text = readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '');
    expect((JSON.parse(text) as { include: string[] }).include).toEqual(SOURCE_ROOTS);
  });

  it('says why dist/ is stale: no build, a source edited after it, a source added or removed', () => {
    const root = fakePackage();
    expect(staleness(root)).toBeUndefined();
    writeFileSync(join(root, 'core', 'a.ts'), 'export const edited = 1;\n');
    expect(staleness(root)).toBe(`${join('core', 'a.ts')} changed after the last build`);
    const root2 = fakePackage();
    const old = new Date(Date.now() - 3_600_000);
    writeFileSync(join(root2, 'core', 'b.ts'), 'export {};\n');
    utimesSync(join(root2, 'core', 'b.ts'), old, old);
    expect(staleness(root2)).toBe('3 TypeScript sources now, 2 when dist/ was built');
    expect(staleness(tempDir())).toBe('no finished build in dist/');
  });

  it('runs dist/lab.js when current, and the sources through tsx (saying why) once one is edited', () => {
    const root = fakePackage();
    mkdirSync(join(root, 'bin'));
    for (const f of ['kflex-lab.mjs', 'freshness.mjs']) copyFileSync(join(ROOT, 'bin', f), join(root, 'bin', f));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const run = () => spawnSync(process.execPath, [join(root, 'bin', 'kflex-lab.mjs')], { encoding: 'utf8' });
    const fresh = run();
    expect(fresh.stdout).toBe('ran dist\n');
    expect(fresh.stderr).toBe('');
    writeFileSync(join(root, 'lab.ts'), "console.log('ran the edited sources');\n");
    const stale = run();
    expect(stale.stdout).toBe('ran the edited sources\n');
    expect(stale.stderr).toBe(
      'kflex-lab: lab.ts changed after the last build: running the TypeScript sources through tsx (npm run build for the fast start)\n',
    );
  });

  it('finds the package root from the sources and from dist/ alike', () => {
    expect(LAB_ROOT).toBe(ROOT);
    expect(findLabRoot(join(ROOT, 'dist', 'core', 'paths.js'))).toBe(ROOT);
    expect(findLabRoot(join(ROOT, 'core', 'paths.ts'))).toBe(ROOT);
    expect(() => findLabRoot(join(tempDir(), 'x', 'y.js'))).toThrow(/no kflex-lab package.json above/);
  });
});
