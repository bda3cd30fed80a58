import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

// The formatter (biome.jsonc, lineWidth 160) cannot break string literals: this catches the lines it leaves.
describe('source style', () => {
  it('no line of a tracked .ts/.mjs file is wider than the formatter width (160)', () => {
    const width = JSON.parse(readFileSync(join(ROOT, 'biome.jsonc'), 'utf8').replace(/^\s*\/\/.*$/gm, '')).formatter.lineWidth as number;
    expect(width).toBe(160);
    const files = execFileSync('git', ['ls-files', '*.ts', '*.mjs'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(files.length).toBeGreaterThan(50);
    const long = files.flatMap((f) =>
      readFileSync(join(ROOT, f), 'utf8')
        .split('\n')
        .map((l, i) => ({ where: `${f}:${i + 1}`, n: [...l].length }))
        .filter((x) => x.n > width),
    );
    expect(long.map((x) => `${x.where} (${x.n})`)).toEqual([]);
  });
});
