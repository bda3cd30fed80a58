import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { materialize, sourceIdentity, sha256File, missingVersionError, parseMadison, privateAptLines, sortByNameVersion } from '../../core/sources.js';
import { parseAptSources } from '../../core/apt.js';
import { LlvmStage, llvmCmakeArgv } from '../../llvm/stage.js';
import { buildEntry } from '../../core/stage.js';
import { EventBus } from '../../core/events.js';
import { loadConfig } from '../../core/config.js';
import { tempDir } from '../helpers.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();
const quiet = { log: () => {}, exec: { logPath: '/dev/null', onLine: () => {} } };

/** A local git repository made by the test: the lab's git path without any network. */
function localRepo(files: Record<string, string>, tag?: string): { dir: string; commit: string } {
  const dir = tempDir('kflex-repo-');
  git(dir, 'init', '-q');
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), c);
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'one');
  // a second commit, so fetching the first one by hash is a real pin
  writeFileSync(join(dir, 'later.txt'), 'later');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'two');
  const first = git(dir, 'rev-parse', 'HEAD~1');
  if (tag) git(dir, 'tag', tag, first);
  git(dir, 'config', 'uploadpack.allowReachableSHA1InWant', 'true');
  return { dir, commit: first };
}

describe('sources', () => {
  it('git: fetches exactly the pinned commit and checks HEAD', async () => {
    const repo = localRepo({ Kbuild: 'obj-y += x\n' });
    const work = tempDir();
    const m = await materialize({ kind: 'git', url: `file://${repo.dir}`, commit: repo.commit }, { name: 'kernel', workDir: work, expect: 'Kbuild', ...quiet });
    expect(m.commit).toBe(repo.commit);
    expect(existsSync(join(m.dir, 'Kbuild'))).toBe(true);
    expect(existsSync(join(m.dir, 'later.txt'))).toBe(false);
    expect(await sourceIdentity({ kind: 'git', url: 'u', commit: repo.commit })).toEqual({ kind: 'git', url: 'u', commit: repo.commit, ref: undefined });
  });

  it('git: an unknown commit is a clear error naming the source and the override', async () => {
    const repo = localRepo({ Kbuild: '' });
    await expect(
      materialize({ kind: 'git', url: `file://${repo.dir}`, commit: 'f'.repeat(40) }, { name: 'kernel', workDir: tempDir(), ...quiet }),
    ).rejects.toThrow(/source kernel: cannot fetch f{40} from file:\/\/.*\n {2}fix: .*--source kernel=\/path\/to\/checkout/);
  });

  it('git: a tag, and a tree that is not the expected one', async () => {
    const repo = localRepo({ 'README.md': 'not a kernel' }, 'v1');
    await expect(
      materialize({ kind: 'git', url: `file://${repo.dir}`, ref: 'v1' }, { name: 'kernel', workDir: tempDir(), expect: 'Kbuild', ...quiet }),
    ).rejects.toThrow(/is not the expected tree \(no Kbuild at its top\)/);
  });

  it('tarball: sha256 checked; a wrong one names both sums', async () => {
    const src = tempDir();
    mkdirSync(join(src, 'linux-x'));
    writeFileSync(join(src, 'linux-x', 'Kbuild'), 'x');
    const file = join(tempDir(), 'linux.tar.gz');
    await tar.c({ gzip: true, file, cwd: src }, ['linux-x']);
    const sum = await sha256File(file);
    const m = await materialize({ kind: 'tarball', url: file, sha256: sum }, { name: 'kernel', workDir: tempDir(), expect: 'Kbuild', ...quiet });
    expect(readFileSync(join(m.dir, 'Kbuild'), 'utf8')).toBe('x');
    expect(m.sha256).toBe(sum);
    await expect(materialize({ kind: 'tarball', url: file, sha256: '0'.repeat(64) }, { name: 'kernel', workDir: tempDir(), ...quiet })).rejects.toThrow(
      new RegExp(`has sha256 ${sum}, lab.yaml pins 0{64}`),
    );
  });

  it('path: used read-only; a missing path names the override', async () => {
    const repo = localRepo({ Kbuild: '' });
    const m = await materialize({ kind: 'path', path: repo.dir }, { name: 'kernel', workDir: tempDir(), expect: 'Kbuild', ...quiet });
    expect([m.dir, m.readOnly, m.commit?.length]).toEqual([repo.dir, true, 40]);
    const id1 = await sourceIdentity({ kind: 'path', path: repo.dir });
    writeFileSync(join(repo.dir, 'Kbuild'), 'changed');
    expect(await sourceIdentity({ kind: 'path', path: repo.dir })).not.toEqual(id1);
    await expect(materialize({ kind: 'path', path: '/nonexistent/k' }, { name: 'kernel', workDir: tempDir(), ...quiet })).rejects.toThrow(
      /path \/nonexistent\/k does not exist; fix --source kernel=PATH/,
    );
  });
});

describe('LLVM from source', () => {
  it('cmake argv: the seed options, BPF;X86 only, link jobs from RAM, lld and ccache when present', () => {
    const a = llvmCmakeArgv({ srcDir: '/s', buildDir: '/b', installDir: '/i', freeRamGb: 13, lld: true, ccache: false });
    expect(a.slice(0, 7)).toEqual(['cmake', '-S', '/s/llvm', '-B', '/b', '-G', 'Ninja']);
    for (const o of [
      '-DLLVM_TARGETS_TO_BUILD=BPF;X86',
      '-DLLVM_ENABLE_PROJECTS=clang',
      '-DCMAKE_BUILD_TYPE=Release',
      '-DLLVM_BUILD_RUNTIME=OFF',
      '-DCMAKE_INSTALL_PREFIX=/i',
      '-DLLVM_USE_LINKER=lld',
    ])
      expect(a).toContain(o);
    expect(a.find((x) => x.startsWith('-DLLVM_PARALLEL_LINK_JOBS='))).toMatch(/=(1|2)$/);
    expect(a).not.toContain('-DLLVM_CCACHE_BUILD=ON');
  });

  it('fetches the pinned tag from a git repository and calls cmake with that argv (cmake stubbed)', async () => {
    const repo = localRepo({ 'llvm/CMakeLists.txt': 'project(LLVM)\n' }, 'llvmorg-19.1.7');
    // A stub cmake on PATH records its argv and stops the build there: the test covers fetch + configure.
    const bin = tempDir();
    const record = join(bin, 'argv.txt');
    writeFileSync(join(bin, 'cmake'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${record}\nexit 1\n`);
    chmodSync(join(bin, 'cmake'), 0o755);
    const cache = tempDir();
    const config = loadConfig({ profile: 'smoke', set: ['toolchain.policy=source'], env: { KFLEX_LAB_CACHE: cache } });
    config.profile.sources.llvm = { kind: 'git', url: `file://${repo.dir}`, ref: 'llvmorg-19.1.7' };
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    try {
      await expect(buildEntry(new LlvmStage(), 'fp', { config, deps: {}, cacheRoot: cache, bus: new EventBus() })).rejects.toThrow(
        /stage llvm failed: cmake failed/,
      );
    } finally {
      process.env.PATH = oldPath;
    }
    const argv = readFileSync(record, 'utf8').trim().split('\n');
    expect(argv.slice(0, 6)).toEqual(['-S', join(cache, 'llvm-work', 'llvm-src', 'llvm'), '-B', join(cache, 'llvm-work', 'build'), '-G', 'Ninja']);
    expect(argv).toContain('-DLLVM_TARGETS_TO_BUILD=BPF;X86');
    expect(argv.find((a) => a.startsWith('-DCMAKE_INSTALL_PREFIX='))).toMatch(/llvm\/fp\.tmp-\d+\/install$/);
    expect(existsSync(join(cache, 'llvm', 'fp', 'stage.json'))).toBe(false);
  });
});

describe('debian-package sources pinned by version', () => {
  // `apt-cache madison` as it answers for trixie-backports (the mirror's address replaced).
  const madison =
    ' linux-source-7.3 | 7.3.4-1~bpo13+1 | http://mirror.example/debian trixie-backports/main amd64 Packages\n' +
    ' linux-source-7.3 | 7.3.4-1~bpo13+1 | http://mirror.example/debian trixie-backports/main i386 Packages\n';

  it('parses madison, one entry per package and version', () => {
    expect(parseMadison(madison)).toEqual([{ package: 'linux-source-7.3', version: '7.3.4-1~bpo13+1' }]);
    expect(parseMadison('N: Unable to locate package x\n')).toEqual([]);
  });

  it('a pinned version that left the archive: the newest there, the --set that pins it, and the --source way out', () => {
    const e = missingVersionError({
      name: 'kernel',
      package: 'linux-source-7.3',
      version: '7.3.3-1~bpo13+1',
      suite: 'trixie-backports',
      available: parseMadison(madison),
      others: [
        { package: 'linux-source-7.2', version: '7.2.12-1~bpo13+1' },
        { package: 'linux-source-7.2', version: '7.2.11-1~bpo13+1' },
      ],
    });
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe(
      'source kernel: Debian package linux-source-7.3 7.3.3-1~bpo13+1 is not in trixie-backports any more (suites drop old versions); ' +
        'newest there: linux-source-7.3 7.3.4-1~bpo13+1 (also there: linux-source-7.2 7.2.12-1~bpo13+1)',
    );
    expect(e.hint).toBe(
      'pin what is there (a different kernel, recorded as such): --set sources.kernel.version=7.3.4-1~bpo13+1\n' +
        '  or: build from a tree you have: --source kernel=/path/to/linux (an unpacked linux-source-7.3 tarball or a kernel checkout)',
    );
  });

  it('the whole package gone: a newer linux-source-X.Y is named, with the --set for package and version', () => {
    const e = missingVersionError({
      name: 'kernel',
      package: 'linux-source-7.3',
      version: '7.3.4-1~bpo13+1',
      suite: 'trixie-backports',
      available: [],
      others: sortByNameVersion([
        { package: 'linux-source-7.4', version: '7.4.2-1~bpo13+1' },
        { package: 'linux-source-7.10', version: '7.10.1-1~bpo13+1' },
      ]),
    });
    expect(e.message).toMatch(/newest there: linux-source-7\.10 7\.10\.1-1~bpo13\+1 \(also there: linux-source-7\.4 7\.4\.2-1~bpo13\+1\)$/);
    expect(e.hint).toMatch(/^pin what is there .*: --set sources\.kernel\.package=linux-source-7\.10 --set sources\.kernel\.version=7\.10\.1-1~bpo13\+1\n/);
    const none = missingVersionError({ name: 'kernel', package: 'linux-source-7.3', version: '7.3.4-1~bpo13+1', suite: undefined, available: [] });
    expect(none.message).toMatch(/is not in the host's suites any more .*; no version of linux-source-7\.3 is there any more$/);
    expect(none.hint).toMatch(/^build from a tree you have: --source kernel=/);
  });

  it("a named suite uses only the host's Debian archives: not the security archive, not a vendor's repository", () => {
    // This host's shape: deb822 in sources.list.d, main + security, plus a vendor repository.
    const host = parseAptSources(
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n' +
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' +
        'Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n' +
        'Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n',
      true,
    );
    expect(privateAptLines(host, 'trixie-backports')).toEqual([
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian trixie-backports main',
    ]);
    expect(privateAptLines(host, undefined)).toEqual([
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main',
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm-updates main',
      'deb http://mirror.example/debian-security bookworm-security main',
      'deb https://vendor.example/apt nodistro main',
    ]);
    // One-line sources carry it as an option; an inline key block (deb822) is not a file and is left out.
    expect(parseAptSources('deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie main\n', false)[0]!.signedBy).toBe('/k.gpg');
  });

  it('the pinned version is part of the identity (a new pin rebuilds the kernel)', async () => {
    const id = await sourceIdentity({ kind: 'debian-package', package: 'linux-source-7.3', version: '7.3.4-1~bpo13+1', suite: 'trixie-backports' });
    expect(id).toEqual({ kind: 'debian-package', package: 'linux-source-7.3', version: '7.3.4-1~bpo13+1', suite: 'trixie-backports' });
  });
});
