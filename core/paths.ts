import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root: the nearest directory above this module whose package.json is kflex-lab's. The same
 * answer whether this file runs as core/paths.ts (tsx) or dist/core/paths.js (the compiled CLI), so assets
 * (lab.yaml, claims.yaml, kernel fragments, bpf/, images/*.sh) are always read from the sources' tree.
 */
export function findLabRoot(from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && readPackageName(pkg) === 'kflex-lab') return dir;
    if (dirname(dir) === dir) throw new Error(`no kflex-lab package.json above ${from}: the lab's files must stay inside its package`);
  }
}

function readPackageName(file: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name;
  } catch {
    return undefined;
  }
}

export const LAB_ROOT = findLabRoot(fileURLToPath(import.meta.url));

/** Whether this process runs the compiled build (dist/*.js) rather than the TypeScript sources through tsx. */
export const COMPILED = !import.meta.url.endsWith('.ts');

/** A module of the lab to run as its own process: dist/<rel>.js when compiled, else <rel>.ts (run through tsx). */
export function labModule(rel: string): { path: string; nodeArgs: string[] } {
  return COMPILED ? { path: join(LAB_ROOT, 'dist', `${rel}.js`), nodeArgs: [] } : { path: join(LAB_ROOT, `${rel}.ts`), nodeArgs: ['--import', 'tsx'] };
}
