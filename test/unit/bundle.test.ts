import { describe, it, expect } from 'vitest';
import { mkdirSync, writeFileSync, readFileSync, symlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as tar from 'tar';
import { writeBundle, verifyBundle, insideBundle } from '../../core/bundle.js';
import { tempDir } from '../helpers.js';

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** A run directory with two files (one nested), as `kflex-lab bundle` would find it. */
function runDir(name = 'run-1'): string {
  const dir = join(tempDir(), name);
  mkdirSync(join(dir, 'runs', 'memcache'), { recursive: true });
  writeFileSync(join(dir, 'summary.json'), '{"cells":1}\n');
  writeFileSync(join(dir, 'runs', 'memcache', 'metrics.json'), '{"tps":1}\n');
  return dir;
}

/** A tarball of `dirs` (under `parent`) whose SHA256SUMS the test wrote itself, as a tampered bundle would be. */
async function tarball(parent: string, dirs: string[]): Promise<string> {
  const file = join(tempDir(), 'bundle.tar.gz');
  await tar.c({ gzip: true, file, cwd: parent, portable: true }, dirs);
  return file;
}

describe('bundles', () => {
  it('verifies a bundle it wrote and reports the tarball sha256 as a pasteable line', async () => {
    const dir = runDir();
    const file = await writeBundle(dir);
    const r = await verifyBundle(file);
    expect(r).toMatchObject({ files: 2, bad: [], missing: [], outside: [] });
    expect(r.sha256).toBe(sha(readFileSync(file)));
    expect(r.sha256Line).toBe(`sha256 ${r.sha256}  run-1.tar.gz`);
  });

  it('finds changed, missing and unlisted files', async () => {
    const dir = runDir();
    await writeBundle(dir);
    writeFileSync(join(dir, 'summary.json'), 'changed\n');
    writeFileSync(join(dir, 'extra.txt'), 'x\n');
    writeFileSync(join(dir, 'SHA256SUMS'), `${readFileSync(join(dir, 'SHA256SUMS'), 'utf8')}${sha('gone')}  gone.txt\n`);
    const r = await verifyBundle(await tarball(join(dir, '..'), ['run-1']));
    expect(r.bad.sort()).toEqual(['extra.txt (not in SHA256SUMS)', 'summary.json']);
    expect(r.missing).toEqual(['gone.txt']);
    expect(r.outside).toEqual([]);
  });

  it('refuses SHA256SUMS lines that point outside the bundle, without reading them', async () => {
    const dir = runDir();
    const parent = join(dir, '..');
    // Files the escaping lines would reach, with the hashes their lines claim: a verifier that read them would pass them.
    writeFileSync(join(parent, 'x'), 'secret\n');
    const lines = [
      `${sha('{"cells":1}\n')}  summary.json`,
      `${sha('{"tps":1}\n')}  runs/memcache/metrics.json`,
      `${sha('secret\n')}  ../x`,
      `${sha(readFileSync('/etc/passwd'))}  /etc/passwd`,
      `${sha('secret\n')}  runs/../../x`,
      `${sha('secret\n')}  runs/memcache/../../../x`,
    ];
    writeFileSync(join(dir, 'SHA256SUMS'), `${lines.join('\n')}\n`);
    const r = await verifyBundle(await tarball(parent, ['run-1']));
    expect(r.outside).toEqual(['../x', '/etc/passwd', 'runs/../../x', 'runs/memcache/../../../x']);
    expect(r.bad).toEqual([]);
    expect(r.missing).toEqual([]);
    expect(r.files).toBe(6);
  });

  it('refuses a line that leaves the bundle through a symlink, and reports what sits beside the run directory', async () => {
    const parent = tempDir();
    const dir = join(parent, 'a-run');
    mkdirSync(dir);
    writeFileSync(join(dir, 'summary.json'), 'ok\n');
    mkdirSync(join(parent, 'z-other'));
    writeFileSync(join(parent, 'z-other', 'f'), 'planted\n');
    // tar keeps a relative link that stays inside the extraction dir; it points out of the run directory.
    symlinkSync('..', join(dir, 'link'));
    writeFileSync(join(dir, 'SHA256SUMS'), `${sha('ok\n')}  summary.json\n${sha('planted\n')}  link/z-other/f\n`);
    const r = await verifyBundle(await tarball(parent, ['a-run', 'z-other']));
    expect(r.outside).toEqual(['link/z-other/f']);
    expect(r.bad).toEqual(['z-other (beside the run directory a-run, not in it)']);
  });

  it('insideBundle: lexical and symlink escapes are undefined, inside paths resolve', async () => {
    const root = runDir();
    symlinkSync('/etc', join(root, 'etc-link'));
    symlinkSync('runs', join(root, 'runs-link'));
    expect(await insideBundle(root, 'summary.json')).toBe(join(root, 'summary.json'));
    expect(await insideBundle(root, 'runs/../summary.json')).toBe(join(root, 'summary.json'));
    expect(await insideBundle(root, 'not-there')).toBe(join(root, 'not-there'));
    expect(await insideBundle(root, 'runs-link/memcache/metrics.json')).toBe(join(root, 'runs-link/memcache/metrics.json'));
    for (const rel of ['', '.', '../x', '/etc/passwd', 'runs/../../x', 'etc-link/passwd']) expect(await insideBundle(root, rel)).toBeUndefined();
  });

  it('names a bundle that does not exist', async () => {
    await expect(verifyBundle('/nonexistent/run.tar.gz')).rejects.toThrow(/\/nonexistent\/run\.tar\.gz: no such file/);
  });
});
