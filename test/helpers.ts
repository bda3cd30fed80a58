import { mkdtempSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
export const LAB = join(ROOT, 'bin', 'kflex-lab.mjs');

export function tempDir(prefix = 'kflex-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * One regex from the sources of several, for a pattern too long for one line: it matches exactly what the
 * parts written as one literal would. Each part must be a whole regex on its own; the parts' flags are ignored.
 */
export function regexOf(flags: string, ...parts: RegExp[]): RegExp {
  return new RegExp(parts.map((p) => p.source).join(''), flags);
}

/** A lab.yaml written to a temp dir, for error-message tests. */
export function writeConfig(text: string): string {
  const f = join(tempDir(), 'lab.yaml');
  writeFileSync(f, text);
  return f;
}

/** Under CI=true a missing prerequisite fails the test instead of skipping it. */
export function requireOrSkip(ok: boolean, what: string): boolean {
  if (ok) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true: prerequisite missing: ${what}`);
  console.warn(`SKIPPED: ${what}`);
  return false;
}
