import { describe, it, expect } from 'vitest';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  parseQemuVersion,
  parseClangVersion,
  llcHasBpf,
  parsePaholeVersion,
  parseMmdebstrapVersion,
  cgroupV2FromMounts,
  aptLine,
  programChecks,
  runDoctor,
} from '../../core/doctor.js';
import { parseAptSources, hostDebianMirror } from '../../core/apt.js';
import { findOnPath, HOST_PACKAGES_FILE, packageTable, renderHostPackages, requireNeeds, type NeedGroup } from '../../core/requirements.js';
import { allNeedGroups, profileNeedGroups } from '../../lab/requirements.js';
import { tapCapabilityFrom } from '../../vm/link/index.js';
import { loadConfig } from '../../core/config.js';
import { FIXTURES, ROOT, regexOf, tempDir } from '../helpers.js';

// Every input below was captured from the real tool on a Debian 12 host (test/fixtures/doctor).
const fx = (f: string) => readFileSync(join(FIXTURES, 'doctor', f), 'utf8');

describe('doctor parsers on real tool output', () => {
  it('reads versions', () => {
    expect(parseQemuVersion(fx('qemu-version.txt'))).toBe('7.2.22');
    expect(parseClangVersion(fx('clang-version.txt'))).toBe(19);
    expect(llcHasBpf(fx('llc-version.txt'))).toBe(true);
    expect(llcHasBpf(fx('llc-version.txt').replace(/^\s+bpf\s.*$/gm, ''))).toBe(false);
    expect(parsePaholeVersion(fx('pahole-version.txt'))).toBe(1.24);
    expect(parseMmdebstrapVersion(fx('mmdebstrap-version.txt'))).toBe('1.3.5');
    expect(parseClangVersion('gcc (Debian 12.2.0-14) 12.2.0')).toBeUndefined();
  });

  it('tells the cgroup layout and CAP_NET_ADMIN', () => {
    expect(cgroupV2FromMounts(fx('proc-mounts-hybrid.txt'))).toBe('hybrid');
    expect(cgroupV2FromMounts(fx('proc-mounts-guest.txt'))).toBe('unified');
    expect(cgroupV2FromMounts('proc /proc proc rw 0 0\n')).toBe('none');
    // The tap verdict is the link backend's (vm/link/tap.ts), the one the link chooser uses too.
    expect(tapCapabilityFrom({ status: fx('proc-status-root.txt'), tun: true, vhostNet: false, ipTool: true }).ok).toBe(true);
    expect(tapCapabilityFrom({ status: 'CapEff:\t0000000000000000\n', tun: true, vhostNet: false, ipTool: true })).toMatchObject({
      ok: false,
      why: 'lacks CAP_NET_ADMIN and CAP_SYS_ADMIN',
    });
  });

  it('prints one apt-get line for everything missing, without duplicates', () => {
    expect(
      aptLine([
        { name: 'qemu', level: 'fail', detail: '', packages: ['qemu-system-x86', 'qemu-utils'] },
        { name: 'qemu-img', level: 'fail', detail: '', packages: ['qemu-utils'] },
        { name: 'ok', level: 'ok', detail: '', packages: ['never'] },
      ]),
    ).toBe('apt-get install -y qemu-system-x86 qemu-utils');
    expect(aptLine([{ name: 'x', level: 'ok', detail: '' }])).toBeUndefined();
  });

  it('finds the Debian mirror in one-line and deb822 apt sources, never the security archive', () => {
    const deb822 = parseAptSources(
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n' +
        'Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n',
      true,
    );
    expect(deb822).toHaveLength(2);
    expect(hostDebianMirror(deb822)).toBe('http://mirror.example/debian');
    const classic = parseAptSources(
      '# comment\ndeb [arch=amd64] http://m.example/debian/ trixie main contrib\ndeb http://m.example/debian-security trixie-security main\n',
      false,
    );
    expect(classic[0]).toEqual({ uri: 'http://m.example/debian/', suites: ['trixie'], components: ['main', 'contrib'] });
    expect(hostDebianMirror(classic)).toBe('http://m.example/debian');
    expect(hostDebianMirror([])).toBeUndefined();
  });
});

/** A PATH of one directory holding an executable stub for every declared program of the groups, except `without`. */
function stubPath(groups: readonly NeedGroup[], without: string[]): string {
  const dir = tempDir('kflex-path-');
  for (const n of groups.flatMap((g) => g.needs)) {
    if (n.file || without.includes(n.name)) continue;
    writeFileSync(join(dir, n.name), '#!/bin/sh\n');
    chmodSync(join(dir, n.name), 0o755);
  }
  return dir;
}

describe('declared host programs: the doctor checks them, install-deps installs them', () => {
  const smoke = loadConfig({ profile: 'smoke', env: {} }).profile;

  it("names a missing program, the stage that runs it and why, and puts its package in the doctor's apt line", async () => {
    const groups = await profileNeedGroups(smoke);
    const checks = programChecks(groups, stubPath(groups, ['rsync']));
    const rsync = checks.find((c) => c.name === 'rsync');
    expect(rsync).toMatchObject({ level: 'fail', packages: ['rsync'] });
    expect(rsync!.detail).toBe('rsync not found; the kernel stage needs it: make headers_install copies the UAPI headers with rsync');
    expect(aptLine(checks)).toMatch(/^apt-get install -y (\S+ )*rsync( |$)/);
    // With every program on PATH no program check fails (files such as headers depend on this host).
    const all = programChecks(groups, stubPath(groups, []));
    expect(all.filter((c) => c.level === 'fail' && !groups.some((g) => g.needs.some((n) => n.name === c.name && n.file)))).toEqual([]);
  });

  it('runDoctor, as reproduce calls it, fails on a PATH without rsync before anything builds', async () => {
    const groups = await profileNeedGroups(smoke);
    const checks = await runDoctor(smoke, { cacheDir: tempDir(), needs: groups, path: stubPath(groups, ['rsync', 'mmdebstrap']) });
    expect(checks.filter((c) => c.level === 'fail').map((c) => c.name)).toEqual(expect.arrayContaining(['rsync', 'mmdebstrap']));
    expect(checks.find((c) => c.name === 'mmdebstrap' && c.level === 'fail')!.detail).toMatch(
      /the bmc and arena and image stages need it: builds BMC in a throwaway root/,
    );
    expect(aptLine(checks)).toMatch(/\brsync\b/);
    expect(aptLine(checks)).toMatch(/\bmmdebstrap\b/);
  });

  it('a program two stages run is reported once, naming both; an optional one only warns', async () => {
    const paper = loadConfig({ profile: 'paper', env: {} }).profile;
    const groups = await profileNeedGroups(paper);
    const checks = programChecks(groups, stubPath(groups, ['mmdebstrap', 'ccache']));
    expect(checks.filter((c) => c.name === 'mmdebstrap')).toHaveLength(1);
    expect(checks.find((c) => c.name === 'mmdebstrap')!.detail).toMatch(/the kflex and bmc and image stages need it/);
    expect(checks.find((c) => c.name === 'ccache')).toMatchObject({ level: 'warn', packages: ['ccache'] });
  });

  it('a stage refuses to start without its programs (for `build`, which runs no doctor)', async () => {
    const groups = await profileNeedGroups(smoke);
    const kernel = groups.find((g) => g.stage === 'kernel')!;
    expect(() =>
      requireNeeds(
        'kernel',
        kernel.needs.filter((n) => !n.file),
        stubPath(groups, ['rsync', 'bc']),
      ),
    ).toThrow(
      regexOf(
        '',
        /rsync not found; the kernel stage needs it: make headers_install[^\n]*\n.*bc not found[^\n]*\ninstall: apt-get install -y bc rsync/,
        /|rsync not found[\s\S]*install: apt-get install -y (rsync bc|bc rsync)/,
      ),
    );
    expect(() =>
      requireNeeds(
        'kernel',
        kernel.needs.filter((n) => !n.file),
        stubPath(groups, []),
      ),
    ).not.toThrow();
  });

  it('the profiles check what their stages run: smoke fetches a Debian package, paper git sources and builds KFlex', async () => {
    const names = (gs: NeedGroup[], stage: string) => gs.find((g) => g.stage === stage)?.needs.map((n) => n.name) ?? [];
    const s = await profileNeedGroups(smoke);
    expect(s.map((g) => g.stage)).toEqual(['llvm', 'kernel', 'bmc', 'arena', 'image', 'testbed']);
    expect(names(s, 'kernel')).toEqual(expect.arrayContaining(['make', 'gcc', 'flex', 'bison', 'bc', 'pahole', 'rsync', 'apt-get', 'dpkg-deb', 'tar', 'xz']));
    expect(names(s, 'kernel')).not.toContain('git');
    const p = await profileNeedGroups(loadConfig({ profile: 'paper', env: {} }).profile);
    expect(p.map((g) => g.stage)).toEqual(['llvm', 'kernel', 'kflex', 'bmc', 'image', 'testbed']);
    expect(names(p, 'kernel')).toContain('git');
    expect(names(p, 'kflex')).toEqual(expect.arrayContaining(['mmdebstrap', 'git']));
    const source = await profileNeedGroups(loadConfig({ profile: 'smoke', env: {}, set: ['toolchain.policy=source'] }).profile);
    expect(names(source, 'llvm')).toEqual(expect.arrayContaining(['cmake', 'ninja', 'g++', 'git']));
  });

  it('.ci/host-packages is generated from the declarations and current; install-deps installs exactly those packages', async () => {
    const groups = await allNeedGroups();
    const want = renderHostPackages(groups);
    expect(readFileSync(HOST_PACKAGES_FILE, 'utf8'), 'stale .ci/host-packages: run npx tsx lab/requirements.ts --write').toBe(want);
    const r = spawnSync('bash', [join(ROOT, '.ci', 'install-deps'), '--list'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(packageTable(groups).map((t) => t.package));
    expect(r.stdout).toMatch(/^rsync$/m);
  });

  it("every program the lab's own code runs on the host is declared (a new run(['foo', ...]) must say who provides foo)", async () => {
    const declared = new Set((await allNeedGroups()).flatMap((g) => g.needs.map((n) => n.name)));
    // From Essential: yes packages (dash, coreutils, grep), present on every Debian system.
    const essential = new Set(['sh', 'rm', 'grep']);
    const found = new Map<string, string>();
    // experiments/ builds the commands its cells run in the guests (Host.exec), not on this host.
    for (const dir of ['core', 'llvm', 'kernel', 'images', 'vm', 'lab', 'cli', 'report', 'bpf'])
      for (const f of readdirSync(join(ROOT, dir), { recursive: true }) as string[]) {
        if (!f.endsWith('.ts')) continue;
        const text = readFileSync(join(ROOT, dir, f), 'utf8');
        // Host commands: run/probe/spawn with a literal argv[0], and the argv builders' first word. `.exec([...])` runs in a guest.
        const direct = [...text.matchAll(/\b(?:run|probe|spawnSync|spawn|execFileSync)\(\s*\[?\s*'([^'\s]+)'/g)].map((m) => m[1]!);
        const builders = [...text.matchAll(/function \w+Argv\([^)]*\)[^{]*\{([\s\S]*?)\n\}/g)].flatMap((m) =>
          [...m[1]!.matchAll(/return \[\s*\[?\s*(?:\.\.\.\([^)]*\),\s*)?'([^'\s]+)'/g)].map((x) => x[1]!),
        );
        for (const p of [...direct, ...builders]) if (!found.has(p)) found.set(p, `${dir}/${f}`);
      }
    expect(found.size).toBeGreaterThan(10);
    const undeclared = [...found].filter(([p]) => !declared.has(p) && !essential.has(p)).map(([p, where]) => `${p} (run by ${where})`);
    expect(undeclared, 'declare each in its stage file or core/requirements.ts, then npx tsx lab/requirements.ts --write').toEqual([]);
  });

  it('finds programs on PATH as command -v does: executable files only', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
    writeFileSync(join(dir, 'data'), 'x');
    chmodSync(join(dir, 'tool'), 0o755);
    expect(findOnPath('tool', `/nonexistent:${dir}`)).toBe(join(dir, 'tool'));
    expect(findOnPath('data', dir)).toBeUndefined();
    expect(findOnPath('tool', '')).toBeUndefined();
  });
});
