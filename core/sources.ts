import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, readdir, writeFile, rm } from 'node:fs/promises';
import { join, basename } from 'node:path';
import type { Source } from './config.js';
import { run, probe } from './exec.js';
import { LabError, ExitCode } from './errors.js';
import { hostAptSources, type AptSource } from './apt.js';

/** A source made available on disk, and what it was exactly (commit or sha256 or package version). */
export interface MaterializedSource {
  dir: string;
  kind: Source['kind'];
  origin: string;
  commit?: string;
  sha256?: string;
  version?: string;
  /** True when dir belongs to the user and must not be written to. */
  readOnly: boolean;
}

/**
 * Cheap identity of a source for fingerprints: the pinned commit/sha256, or for a local path its
 * git HEAD and dirtiness (a tree is not hashed file by file on every run).
 */
export async function sourceIdentity(src: Source): Promise<Record<string, unknown>> {
  switch (src.kind) {
    case 'git':
      return { kind: 'git', url: src.url, commit: src.commit, ref: src.ref };
    case 'tarball':
      return { kind: 'tarball', sha256: src.sha256 };
    case 'debian-package':
      return { kind: 'debian-package', package: src.package, version: src.version, suite: src.suite ?? 'host' };
    case 'path': {
      const head = await probe(['git', '-C', src.path, 'rev-parse', 'HEAD']);
      const dirty = head ? await probe(['git', '-C', src.path, 'status', '--porcelain', '--untracked-files=no']) : undefined;
      let mtime = 0;
      try {
        mtime = statSync(src.path).mtimeMs;
      } catch {
        /* reported when materialized */
      }
      return {
        kind: 'path',
        path: src.path,
        head: head?.trim(),
        dirty: dirty ? createHash('sha256').update(dirty).digest('hex') : '',
        mtime: head ? undefined : mtime,
      };
    }
  }
}

export interface MaterializeOptions {
  name: string;
  /** Scratch space owned by the calling stage. */
  workDir: string;
  log: (line: string) => void;
  exec: { logPath: string; onLine: (line: string) => void };
  /** A file that must exist at the top of the tree, to catch a wrong path early (e.g. Kbuild). */
  expect?: string;
  timeoutMs?: number;
}

export async function materialize(src: Source, opts: MaterializeOptions): Promise<MaterializedSource> {
  const runOpts = { ...opts.exec, timeoutMs: opts.timeoutMs ?? 60 * 60_000 };
  let result: MaterializedSource;
  switch (src.kind) {
    case 'path': {
      if (!existsSync(src.path))
        throw new LabError(`source ${opts.name}: path ${src.path} does not exist; fix --source ${opts.name}=PATH or sources.${opts.name}.path`, ExitCode.usage);
      const head = (await probe(['git', '-C', src.path, 'rev-parse', 'HEAD']))?.trim();
      result = { dir: src.path, kind: 'path', origin: src.path, commit: head, readOnly: true };
      break;
    }
    case 'git': {
      const dir = join(opts.workDir, `${opts.name}-src`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const want = src.commit ?? `refs/tags/${src.ref}`;
      opts.log(`fetching ${src.url} ${want} (depth 1)`);
      await run(['git', 'init', '-q', dir], runOpts);
      await run(['git', '-C', dir, 'fetch', '--depth', '1', '--no-tags', src.url, want], runOpts).catch((e: Error) => {
        throw new LabError(
          `source ${opts.name}: cannot fetch ${want} from ${src.url}: ${e.message.split('\n')[0]}\n  ` +
            `fix: check the commit/ref, or use a local checkout with --source ` +
            `${opts.name}=/path/to/checkout`,
          ExitCode.infra,
        );
      });
      await run(['git', '-C', dir, '-c', 'advice.detachedHead=false', 'checkout', '-q', 'FETCH_HEAD'], runOpts);
      const head = (await run(['git', '-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
      if (src.commit && head !== src.commit)
        throw new LabError(`source ${opts.name}: HEAD is ${head} after fetching ${src.commit} from ${src.url}`, ExitCode.infra);
      result = { dir, kind: 'git', origin: src.url, commit: head, readOnly: false };
      break;
    }
    case 'tarball': {
      const file = await obtainFile(src.url, opts.workDir, opts.log);
      const sum = await sha256File(file);
      if (sum !== src.sha256)
        throw new LabError(
          `source ${opts.name}: ${src.url} has sha256 ${sum}, lab.yaml pins ${src.sha256}; fix sources.${opts.name}.sha256 or the file`,
          ExitCode.usage,
        );
      const dir = join(opts.workDir, `${opts.name}-src`);
      await extractSingleRoot(file, dir);
      result = { dir, kind: 'tarball', origin: src.url, sha256: sum, readOnly: false };
      break;
    }
    case 'debian-package':
      result = await fromDebianPackage(src, opts);
      break;
  }
  if (opts.expect && !existsSync(join(result.dir, opts.expect))) {
    throw new LabError(`source ${opts.name}: ${result.origin} is not the expected tree (no ${opts.expect} at its top)`, ExitCode.usage);
  }
  return result;
}

async function obtainFile(url: string, workDir: string, log: (l: string) => void): Promise<string> {
  if (!/^https?:\/\//.test(url)) {
    if (!existsSync(url)) throw new LabError(`tarball ${url} does not exist`, ExitCode.usage);
    return url;
  }
  log(`downloading ${url}`);
  const res = await fetch(url, { signal: AbortSignal.timeout(30 * 60_000) });
  if (!res.ok) throw new LabError(`download ${url}: HTTP ${res.status}`, ExitCode.infra);
  const file = join(workDir, basename(new URL(url).pathname) || 'download');
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  return file;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Extract a tarball whose members share one top directory into `dir` (that top directory stripped). */
export async function extractSingleRoot(file: string, dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const tar = await import('tar');
  await tar.x({ file, cwd: dir, strip: 1 });
}

/** The private sources.list lines: the host's own suites, or a named suite of the host's Debian mirror(s). */
export function privateAptLines(sources: AptSource[], suite: string | undefined): string[] {
  const opt = (s: AptSource) => (s.signedBy ? `[signed-by=${s.signedBy}] ` : '');
  if (!suite) return sources.flatMap((s) => s.suites.map((x) => `deb ${opt(s)}${s.uri} ${x} ${s.components.join(' ') || 'main'}`));
  // Only Debian archives carry Debian's suites: another repository (a vendor's) would fail apt-get update.
  const archives = sources.filter((s) => !/security/.test(s.uri) && !s.suites.some((x) => /security/.test(x)));
  const debian = archives.filter((s) => /\/debian\/?$/.test(s.uri));
  // The host's keyring for that archive comes along (a keyring named by Signed-By is not in apt's default set).
  const chosen = (debian.length ? debian : archives).filter((s, i, all) => all.findIndex((x) => x.uri === s.uri) === i);
  return chosen.map((s) => `deb ${opt(s)}${s.uri} ${suite} main`);
}

/** One line of `apt-cache madison`: ` linux-source-7.3 | 7.3.4-1~bpo13+1 | URI trixie-backports/main amd64 Packages`. */
export function parseMadison(text: string): Array<{ package: string; version: string }> {
  const out: Array<{ package: string; version: string }> = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^\s*(\S+)\s*\|\s*(\S+)\s*\|\s*\S+\s+\S+\s+\S+\s+Packages\s*$/);
    if (m && !out.some((o) => o.package === m[1] && o.version === m[2])) out.push({ package: m[1]!, version: m[2]! });
  }
  return out;
}

/**
 * The error for a pinned Debian package version the archive no longer serves (it keeps only the newest):
 * what is there now (madison order: newest first; `others` are same-stem packages such as a newer
 * linux-source-X.Y), and the two ways out: pin what is there, or bring a tree.
 */
export function missingVersionError(o: {
  name: string;
  package: string;
  version: string;
  suite: string | undefined;
  available: Array<{ package: string; version: string }>;
  others?: Array<{ package: string; version: string }>;
}): LabError {
  const where = o.suite ?? "the host's suites";
  const same = o.available.filter((a) => a.package === o.package);
  const newest = same[0] ?? o.others?.[0];
  const now = newest ? `newest there: ${newest.package} ${newest.version}` : `no version of ${o.package} is there any more`;
  // One version per other package: the newest (madison lists newest first).
  const otherNewest = (o.others ?? []).filter((x, i, all) => all.findIndex((y) => y.package === x.package) === i && x !== newest);
  const others = otherNewest.length ? ` (also there: ${otherNewest.map((x) => `${x.package} ${x.version}`).join(', ')})` : '';
  const pin = newest
    ? `${newest.package === o.package ? '' : `--set sources.${o.name}.package=${newest.package} `}--set sources.${o.name}.version=${newest.version}`
    : undefined;
  const tree = `build from a tree you have: --source ${o.name}=/path/to/linux (an unpacked ${o.package} tarball or a kernel checkout)`;
  return new LabError(
    `source ${o.name}: Debian package ${o.package} ${o.version} is not in ${where} any more (suites drop old versions); ${now}${others}`,
    ExitCode.usage,
    pin ? `pin what is there (a different kernel, recorded as such): ${pin}\n  or: ${tree}` : tree,
  );
}

/**
 * Download a Debian source package (e.g. linux-source-7.3) with a private apt state directory, so the
 * host's apt configuration and lists are never changed; a named suite uses the host's mirror. A pinned
 * version is downloaded exactly (`apt-get download pkg=version`); when it has left the archive the error
 * names what is there.
 */
async function fromDebianPackage(src: Extract<Source, { kind: 'debian-package' }>, opts: MaterializeOptions): Promise<MaterializedSource> {
  const state = join(opts.workDir, 'apt-state');
  await mkdir(join(state, 'lists', 'partial'), { recursive: true });
  await mkdir(join(state, 'archives', 'partial'), { recursive: true });
  const listFile = join(state, 'sources.list');
  const sources = hostAptSources();
  if (!sources.length) throw new LabError(`source ${opts.name}: this host has no apt sources`, ExitCode.infra, `--source ${opts.name}=/path/to/tree`);
  await writeFile(listFile, `${privateAptLines(sources, src.suite).join('\n')}\n`);
  const aptOpts = [
    '-o',
    `Dir::Etc::SourceList=${listFile}`,
    '-o',
    'Dir::Etc::SourceParts=/nonexistent',
    '-o',
    `Dir::State::Lists=${join(state, 'lists')}`,
    '-o',
    `Dir::Cache=${state}`,
    '-o',
    `Dir::Cache::archives=${join(state, 'archives')}`,
    '-o',
    'Debug::NoLocking=1',
    '-o',
    'APT::Sandbox::User=root',
  ];
  const runOpts = { ...opts.exec, timeoutMs: 20 * 60_000 };
  const where = src.suite ?? "the host's suites";
  opts.log(`apt: resolving ${src.package}${src.version ? ` ${src.version}` : ''} from ${where} (private state in ${state})`);
  await run(['apt-get', ...aptOpts, 'update'], runOpts);
  if (src.version) await requirePinnedVersion(src as typeof src & { version: string }, opts.name, aptOpts);
  const debDir = join(opts.workDir, 'deb');
  await mkdir(debDir, { recursive: true });
  const want = src.version ? `${src.package}=${src.version}` : src.package;
  await run(['apt-get', ...aptOpts, 'download', want], { ...runOpts, cwd: debDir }).catch((e: Error) => {
    throw new LabError(
      `source ${opts.name}: Debian package ${want} cannot be downloaded from ${where}: ${e.message.split('\n').slice(-3).join(' ')}`,
      ExitCode.usage,
    );
  });
  const deb = (await readdir(debDir)).find((f) => f.endsWith('.deb'));
  if (!deb) throw new LabError(`source ${opts.name}: apt-get download produced no .deb`, ExitCode.infra);
  const debPath = join(debDir, deb);
  const version = (await run(['dpkg-deb', '-f', debPath, 'Version'])).stdout.trim();
  if (src.version && version !== src.version) throw new LabError(`source ${opts.name}: apt-get download ${want} gave version ${version}`, ExitCode.infra);
  const sha256 = await sha256File(debPath);
  const unpacked = join(opts.workDir, 'deb-root');
  await run(['dpkg-deb', '-x', debPath, unpacked], runOpts);
  // linux-source-X ships /usr/src/linux-source-X.tar.xz; other packages are used as unpacked.
  const usrSrc = join(unpacked, 'usr', 'src');
  const tarball = existsSync(usrSrc) ? (await readdir(usrSrc)).find((f) => /\.tar\.(xz|gz|bz2)$/.test(f)) : undefined;
  let dir = unpacked;
  if (tarball) {
    dir = join(opts.workDir, `${opts.name}-src`);
    opts.log(`unpacking ${tarball}`);
    await mkdir(dir, { recursive: true });
    // tar (npm) has no xz support; the system tar does, and it is the one Debian's package expects.
    await run(['tar', '-xf', join(usrSrc, tarball), '-C', dir, '--strip-components=1'], runOpts);
    await rm(unpacked, { recursive: true, force: true });
  }
  await rm(debDir, { recursive: true, force: true });
  return {
    dir,
    kind: 'debian-package',
    origin: `${src.package} ${version} (${where === "the host's suites" ? 'host suites' : where})`,
    version,
    sha256,
    readOnly: false,
  };
}

/** Fail before downloading when the pinned version is not in the archive, naming what is (the same package, or a newer linux-source-X.Y). */
async function requirePinnedVersion(src: Extract<Source, { kind: 'debian-package' }> & { version: string }, name: string, aptOpts: string[]): Promise<void> {
  const available = parseMadison((await probe(['apt-cache', ...aptOpts, 'madison', src.package])) ?? '');
  if (available.some((a) => a.version === src.version)) return;
  // linux-source-7.3 -> the other linux-source-<digits> packages there
  const stem = src.package.replace(/[\d.]+$/, '');
  const names =
    stem !== src.package ? ((await probe(['apt-cache', ...aptOpts, '--names-only', 'search', `^${stem.replace(/[.+]/g, '\\$&')}[0-9]`])) ?? '') : '';
  const otherNames = names
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n && n !== src.package);
  const others = otherNames.length ? parseMadison((await probe(['apt-cache', ...aptOpts, 'madison', ...otherNames])) ?? '') : [];
  throw missingVersionError({ name, package: src.package, version: src.version, suite: src.suite, available, others: sortByNameVersion(others) });
}

/** Newest first by the version in the package name (linux-source-7.10 before linux-source-7.4). */
export function sortByNameVersion<T extends { package: string }>(list: T[]): T[] {
  const key = (p: string) => (p.match(/(\d+(?:\.\d+)*)$/)?.[1] ?? '0').split('.').map(Number);
  return [...list].sort((a, b) => {
    const [x, y] = [key(a.package), key(b.package)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (y[i] ?? 0) - (x[i] ?? 0);
    return 0;
  });
}
