import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile, mkdtemp, rm, realpath } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative, basename, dirname, resolve, isAbsolute, sep } from 'node:path';
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
  await writeFile(join(runDir, 'SHA256SUMS'), `${lines.join('\n')}\n`);
  const out = `${runDir}.tar.gz`;
  await tar.c({ gzip: true, file: out, cwd: dirname(runDir), portable: true }, [basename(runDir)]);
  return out;
}

export interface VerifyResult {
  /** The tarball's own sha256: the line an evaluator pastes into a review. */
  sha256: string;
  /** `sha256 <hex>  <tarball's file name>`. */
  sha256Line: string;
  files: number;
  bad: string[];
  missing: string[];
  /** SHA256SUMS lines naming a path outside the bundle (absolute, `..`, or through a symlink): refused, never read. */
  outside: string[];
}

/** Whether `p` is `dir` or below it (both absolute and normalized). */
function within(dir: string, p: string): boolean {
  return p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/**
 * Where a SHA256SUMS path lives inside the unpacked bundle, or undefined when it points outside it:
 * absolute, climbing out with `..`, or (for a file that exists) reaching out through a symlink.
 */
export async function insideBundle(root: string, rel: string): Promise<string | undefined> {
  if (!rel || isAbsolute(rel)) return undefined;
  const p = resolve(root, rel);
  if (!within(root, p) || p === root) return undefined;
  if (!existsSync(p)) return p;
  return within(await realpath(root), await realpath(p)) ? p : undefined;
}

/** Unpack a bundle to a scratch dir and check every SHA256SUMS line. */
export async function verifyBundle(bundle: string): Promise<VerifyResult> {
  if (!existsSync(bundle)) throw new LabError(`${bundle}: no such file; give the <run>.tar.gz that 'kflex-lab bundle' wrote`, ExitCode.usage);
  const sha256 = await sha256File(bundle);
  const scratch = await mkdtemp(join(tmpdir(), 'kflex-verify-'));
  try {
    await tar.x({ file: bundle, cwd: scratch });
    const entries = (await readdir(scratch)).sort();
    // The run directory is the entry holding SHA256SUMS; anything beside it is reported, never trusted.
    const top = entries.find((e) => existsSync(join(scratch, e, 'SHA256SUMS'))) ?? entries[0];
    if (!top) throw new LabError(`${bundle}: empty archive`, ExitCode.checkFailed);
    const others = entries.filter((e) => e !== top);
    const root = join(scratch, top);
    let sums: string;
    try {
      sums = await readFile(join(root, 'SHA256SUMS'), 'utf8');
    } catch {
      throw new LabError(`${bundle}: no SHA256SUMS inside; was it written by 'kflex-lab bundle'?`, ExitCode.checkFailed);
    }
    const listed = new Set<string>();
    const bad: string[] = others.map((o) => `${o} (beside the run directory ${top}, not in it)`);
    const missing: string[] = [];
    const outside: string[] = [];
    for (const line of sums.split('\n').filter(Boolean)) {
      const [sum, ...rest] = line.split('  ');
      const rel = rest.join('  ');
      const file = await insideBundle(root, rel);
      if (!file) {
        outside.push(rel);
        continue;
      }
      listed.add(relative(root, file));
      try {
        const h = createHash('sha256')
          .update(await readFile(file))
          .digest('hex');
        if (h !== sum) bad.push(rel);
      } catch {
        missing.push(rel);
      }
    }
    const unlisted = (await listFiles(root)).map((f) => relative(root, f)).filter((f) => f !== 'SHA256SUMS' && !listed.has(f));
    bad.push(...unlisted.map((f) => `${f} (not in SHA256SUMS)`));
    return { sha256, sha256Line: `sha256 ${sha256}  ${basename(bundle)}`, files: listed.size + outside.length, bad, missing, outside };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
