import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { join, relative, basename, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import * as tar from 'tar';
import { sha256File } from './sources.js';
import { LabError, ExitCode } from './errors.js';

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** `<run>.tar.gz` holding the run directory with a SHA256SUMS (sha256sum format) at its top. */
export async function writeBundle(runDir: string): Promise<string> {
  const files = (await listFiles(runDir)).filter((f) => basename(f) !== 'SHA256SUMS');
  const lines: string[] = [];
  for (const f of files) lines.push(`${await sha256File(f)}  ${relative(runDir, f)}`);
  await writeFile(join(runDir, 'SHA256SUMS'), lines.join('\n') + '\n');
  const out = `${runDir}.tar.gz`;
  await tar.c({ gzip: true, file: out, cwd: dirname(runDir), portable: true }, [basename(runDir)]);
  return out;
}

export interface VerifyResult {
  files: number;
  bad: string[];
  missing: string[];
}

/** Unpack a bundle to a scratch dir and check every SHA256SUMS line. */
export async function verifyBundle(bundle: string): Promise<VerifyResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'kflex-verify-'));
  try {
    await tar.x({ file: bundle, cwd: scratch });
    const [top] = await readdir(scratch);
    if (!top) throw new LabError(`${bundle}: empty archive`, ExitCode.checkFailed);
    const root = join(scratch, top);
    let sums: string;
    try {
      sums = await readFile(join(root, 'SHA256SUMS'), 'utf8');
    } catch {
      throw new LabError(`${bundle}: no SHA256SUMS inside; was it written by 'kflex-lab bundle'?`, ExitCode.checkFailed);
    }
    const listed = new Set<string>();
    const bad: string[] = [];
    const missing: string[] = [];
    for (const line of sums.split('\n').filter(Boolean)) {
      const [sum, ...rest] = line.split('  ');
      const rel = rest.join('  ');
      listed.add(rel);
      try {
        const h = createHash('sha256').update(await readFile(join(root, rel))).digest('hex');
        if (h !== sum) bad.push(rel);
      } catch {
        missing.push(rel);
      }
    }
    const unlisted = (await listFiles(root)).map((f) => relative(root, f)).filter((f) => f !== 'SHA256SUMS' && !listed.has(f));
    bad.push(...unlisted.map((f) => `${f} (not in SHA256SUMS)`));
    return { files: listed.size, bad, missing };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
