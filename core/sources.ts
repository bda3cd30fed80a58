import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, readdir, writeFile, rm } from 'node:fs/promises';
import { join, basename } from 'node:path';
import type { Source } from './config.js';
import { run, probe } from './exec.js';
import { LabError, ExitCode } from './errors.js';
import { hostAptSources } from './apt.js';

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
      return { kind: 'debian-package', package: src.package, suite: src.suite ?? 'host' };
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

/**
 * Download a Debian source package (e.g. linux-source-6.1) with a private apt state directory, so the
 * host's apt configuration and lists are never changed; a named suite uses the host's mirror.
 */
async function fromDebianPackage(src: Extract<Source, { kind: 'debian-package' }>, opts: MaterializeOptions): Promise<MaterializedSource> {
  const state = join(opts.workDir, 'apt-state');
  await mkdir(join(state, 'lists', 'partial'), { recursive: true });
  await mkdir(join(state, 'archives', 'partial'), { recursive: true });
  const listFile = join(state, 'sources.list');
  const sources = hostAptSources();
  if (!sources.length) throw new LabError(`source ${opts.name}: this host has no apt sources`, ExitCode.infra, `--source ${opts.name}=/path/to/tree`);
  const lines = src.suite
    ? [...new Set(sources.filter((s) => !/security/.test(s.uri)).map((s) => s.uri))].map((u) => `deb ${u} ${src.suite} main`)
    : sources.flatMap((s) => s.suites.map((suite) => `deb ${s.uri} ${suite} ${s.components.join(' ') || 'main'}`));
  await writeFile(listFile, `${lines.join('\n')}\n`);
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
  opts.log(`apt: resolving ${src.package} from ${src.suite ?? "the host's suites"} (private state in ${state})`);
  await run(['apt-get', ...aptOpts, 'update'], runOpts);
  const debDir = join(opts.workDir, 'deb');
  await mkdir(debDir, { recursive: true });
  await run(['apt-get', ...aptOpts, 'download', src.package], { ...runOpts, cwd: debDir }).catch((e: Error) => {
    throw new LabError(
      `source ${opts.name}: Debian package ${src.package} cannot be downloaded from ` +
        `${src.suite ?? "the host's suites"}: ${e.message.split('\n').slice(-3).join(' ')}`,
      ExitCode.usage,
    );
  });
  const deb = (await readdir(debDir)).find((f) => f.endsWith('.deb'));
  if (!deb) throw new LabError(`source ${opts.name}: apt-get download produced no .deb`, ExitCode.infra);
  const debPath = join(debDir, deb);
  const version = (await run(['dpkg-deb', '-f', debPath, 'Version'])).stdout.trim();
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
  return { dir, kind: 'debian-package', origin: `${src.package} ${version} (${src.suite ?? 'host suites'})`, version, sha256, readOnly: false };
}
