import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lab, explain } from './cli.js';

// Opt-in: KFlex's sources cannot be fetched here. Point KFLEX_LAB_TEST_KFLEX_SRC at a local checkout of
// github.com/rs3lab/KFlex (e.g. 567387bc) to build ffkx and ffkx-bench for the guest for real.
const src = process.env.KFLEX_LAB_TEST_KFLEX_SRC;
if (!src) console.warn('SKIPPED 4-kflex-userspace: set KFLEX_LAB_TEST_KFLEX_SRC=/path/to/KFlex to build KFlex user space (opt-in; needs the KFlex sources)');

describe.skipIf(!src)('KFlex user space from a local checkout (opt-in)', () => {
  it('build kflex --profile paper --source kflex=PATH compiles ffkx, ffkx-bench and ffkx-test for the guest suite', async () => {
    const r = await lab(['build', 'kflex', '--profile', 'paper', '--source', `kflex=${src}`]);
    expect(r.code, explain(r)).toBe(0);
    const dir = r.stdout
      .trim()
      .split('\n')
      .find((l) => l.startsWith('kflex'))!
      .split(/\s+/)[1]!;
    for (const b of ['ffkx', 'ffkx-bench', 'ffkx-test']) expect(existsSync(join(dir, 'kflex', b)), b).toBe(true);
    const m = JSON.parse(readFileSync(join(dir, 'kflex.json'), 'utf8'));
    expect(m.suite).toBe('trixie');
    expect(m.files).toEqual(expect.arrayContaining(['ffkx', 'ffkx-bench', 'ffkx-test']));
  });

  it('a tree that is not KFlex is refused by name', async () => {
    const r = await lab(['build', 'kflex', '--profile', 'paper', '--source', 'kflex=/usr/share']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/source kflex: .* is not the (expected tree|KFlex tree)/);
  });
});
