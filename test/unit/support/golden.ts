import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Where output that is a contract is kept (test/golden/). */
export const GOLDEN = join(import.meta.dirname, '..', '..', 'golden');

/**
 * Compare `text` with a golden file, as libbpf's CI keeps its expected outputs: a change shows up as a diff in
 * review. Regenerate on purpose with KFLEX_UPDATE_GOLDEN=1 and read the diff; CI never writes one.
 */
export function golden(name: string, text: string): void {
  const file = join(GOLDEN, name);
  if (process.env.KFLEX_UPDATE_GOLDEN === '1' || (!existsSync(file) && process.env.CI !== 'true')) writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}
