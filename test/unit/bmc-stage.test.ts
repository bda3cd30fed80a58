import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BMC_ARTIFACT_ENTRIES,
  BMC_BUILD_PACKAGES,
  BMC_UPSTREAM_PATCH,
  bmcBuildCommand,
  bmcCacheEntries,
  bmcCacheRewriteHooks,
  bmcDeviations,
  bmcPatchHooks,
} from '../../images/bmc.js';
import { guestPayload, imagePayloads, payloadHooks } from '../../images/stage.js';
import { stageRegistry } from '../../lab/stages.js';
import { loadConfig } from '../../core/config.js';
import type { StageOutput } from '../../core/stage.js';

describe('bmc stage: cache scale rule', () => {
  it("keeps the artifact's 3,250,000 entries when the server VM is sized from the host", () => {
    expect(bmcCacheEntries('auto')).toBe(BMC_ARTIFACT_ENTRIES);
  });
  it("gives the cache a quarter of a fixed server VM's RAM, in thousands of 1320-byte entries", () => {
    // 1024 MiB / 4 = 268,435,456 B / 1320 B = 203,360.2 -> 203,000
    expect(bmcCacheEntries(1024)).toBe(203_000);
    expect(bmcCacheEntries(4096)).toBe(813_000);
    expect(bmcCacheEntries(256 * 1024)).toBe(BMC_ARTIFACT_ENTRIES);
  });
  it('refuses a server too small for 1000 entries, naming the field', () => {
    expect(() => bmcCacheEntries(2)).toThrow(/vms.server.memory_mb: 2 MiB leaves no room for BMC's cache/);
  });
});

describe('bmc stage: build-root hooks', () => {
  it('rewrites BMC_CACHE_ENTRY_COUNT only when scaled, and checks the rewrite took', () => {
    expect(bmcCacheRewriteHooks(BMC_ARTIFACT_ENTRIES, '/build/b')).toEqual([]);
    const [sed, check] = bmcCacheRewriteHooks(203_000, '/build/b');
    expect(sed).toBe(`chroot "$1" sed -i -E 's/^#define BMC_CACHE_ENTRY_COUNT 3250000$/#define BMC_CACHE_ENTRY_COUNT 203000/' /build/b/bmc/bmc_common.h`);
    expect(check).toContain('grep -qx "#define BMC_CACHE_ENTRY_COUNT 203000" /build/b/bmc/bmc_common.h');
    expect(check).toContain('did not take" >&2; exit 1;');
  });

  it("the rewrite hooks work on a header like the fork's, and fail on one without the constant", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bmc-hooks-'));
    try {
      const header = join(dir, 'bmc', 'bmc_common.h');
      execFileSync('mkdir', ['-p', join(dir, 'bmc')]);
      const run = (text: string) => {
        execFileSync('sh', ['-c', `printf '%s' "$1" > "$2"`, 'w', text, header]);
        // the hooks call `chroot "$1" CMD`: run them with a chroot that just runs CMD on this host
        const hooks = bmcCacheRewriteHooks(5000, dir).map((h) => h.replace(/^chroot "\$1" /, ''));
        for (const h of hooks) execFileSync('sh', ['-c', h], { stdio: 'pipe' });
        return readFileSync(header, 'utf8');
      };
      expect(run('#define BMC_MAX_KEY_IN_MULTIGET 30\n#define BMC_CACHE_ENTRY_COUNT 3250000\n#define X 1\n')).toContain('#define BMC_CACHE_ENTRY_COUNT 5000\n');
      expect(() => run('#define BMC_CACHE_ENTRY_COUNT 100\n')).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('applies the lab patch for upstream only, failing on a patch that does not apply', () => {
    expect(bmcPatchHooks('artifact', BMC_UPSTREAM_PATCH, '/build/b')).toEqual([]);
    expect(bmcPatchHooks('upstream', '/lab/images/bmc/upstream-7x.patch', '/build/b')).toEqual([
      'copy-in /lab/images/bmc/upstream-7x.patch /build',
      `chroot "$1" sh -c 'cd /build/b && patch -p1 --forward --batch < /build/upstream-7x.patch'`,
    ]);
  });

  it("builds with the fork's Makefile, clang-19 and the suite's libbpf, and checks both outputs", () => {
    const cmd = bmcBuildCommand('/build/b');
    expect(cmd).toMatch(/^cd \/build\/b\/bmc && make CLANG=clang-19 LLC=llc-19 LIBBPF= /);
    expect(cmd).toContain('"LDFLAGS=-lbpf -lelf"');
    expect(cmd).toContain('-include asm/posix_types.h');
    expect(cmd).toContain('test -s bmc ||');
    expect(cmd).toContain('test -s bmc_kern.o ||');
    expect(BMC_BUILD_PACKAGES).toEqual(expect.arrayContaining(['clang-19', 'llvm-19', 'libbpf-dev', 'patch']));
  });

  it('records the patch and a scaled cache as deviations, and nothing for the artifact', () => {
    expect(bmcDeviations({ variant: 'artifact', cache: { entries: BMC_ARTIFACT_ENTRIES } })).toEqual([]);
    const d = bmcDeviations({ variant: 'upstream', cache: { entries: 203_000 } });
    expect(d.map((x) => x.topic)).toEqual(['BMC patched for upstream', 'BMC cache scaled down']);
    expect(d[0]!.why).toContain('function calls are not allowed while holding a lock');
    expect(d[1]!.lab).toContain('203,000 entries (256 MiB)');
  });
});

describe('the upstream patch file', () => {
  const text = readFileSync(BMC_UPSTREAM_PATCH, 'utf8');
  it('touches only bmc/bmc_kern.c and says why', () => {
    expect([...text.matchAll(/^\+\+\+ b\/(\S+)$/gm)].map((m) => m[1])).toEqual(['bmc/bmc_kern.c']);
    expect(text).toContain('function calls are not allowed while holding a lock');
    expect(text).toContain('KF_SPINLOCK_SAFE');
  });

  // Opt-in: needs the fetched fork (never committed). KFLEX_LAB_BMC_SRC=/path/to/bmc-cache at 1fb8f96.
  const src = process.env.KFLEX_LAB_BMC_SRC;
  it.skipIf(!src)('applies to the pinned fork and leaves no dynptr slice under a spin lock (KFLEX_LAB_BMC_SRC; skipped without it)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bmc-patch-'));
    try {
      cpSync(join(src!, 'bmc'), join(dir, 'bmc'), { recursive: true });
      expect(slicesUnderLock(readFileSync(join(dir, 'bmc', 'bmc_kern.c'), 'utf8'))).toEqual(['bmc_write_reply_main', 'bmc_update_cache_main']);
      execFileSync('patch', ['-p1', '--forward', '--batch', '-i', BMC_UPSTREAM_PATCH], { cwd: dir, stdio: 'pipe' });
      expect(slicesUnderLock(readFileSync(join(dir, 'bmc', 'bmc_kern.c'), 'utf8'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Functions of a BPF C file that call bpf_dynptr_slice* between bpf_spin_lock and bpf_spin_unlock, in program order. */
function slicesUnderLock(c: string): string[] {
  const found: string[] = [];
  let fn = '';
  let held = false;
  for (const line of c.split('\n')) {
    const def = line.match(/^int (\w+)\(/);
    if (def) [fn, held] = [def[1]!, false];
    if (/bpf_spin_lock\(/.test(line)) held = true;
    if (held && /bpf_dynptr_slice(_rdwr)?\(/.test(line) && !found.includes(fn)) found.push(fn);
    // the first unlock ends the region on the path the fork takes; the verifier follows every path, this scan the text
    if (/bpf_spin_unlock\(/.test(line) && !/^\t\t\tbpf_spin_unlock/.test(line)) held = false;
  }
  return found;
}

describe('payload stages in the image', () => {
  const out = (manifest: Record<string, unknown>): StageOutput => ({ stage: 'bmc', fingerprint: 'f', dir: '/cache/bmc/f', manifest });
  it('a stage output that names a payload is copied to its guest directory with its packages', () => {
    const p = guestPayload(out({ payload: 'bmc', guest_dir: '/opt/bmc', guest_packages: ['libbpf-dev'] }));
    expect(p).toEqual({ stage: 'bmc', from: '/cache/bmc/f/bmc', guestDir: '/opt/bmc', packages: ['libbpf-dev'] });
    expect(payloadHooks([p!])).toEqual(['mkdir -p "$1/opt/bmc"', 'copy-in /cache/bmc/f/bmc/. /opt/bmc']);
  });
  it('a payload stage that built nothing (source unreachable) is left out of the image with its reason; one that did not run stops it', () => {
    const built = { ...out({ payload: 'bmc', guest_dir: '/opt/bmc', guest_packages: ['libbpf-dev'], source: { commit: 'c' } }) };
    const unbuilt = { ...out({ built: false, reason: 'source bmc unreachable (...); pass --source bmc=/path/to/bmc-cache' }), stage: 'arena' };
    const logged: string[] = [];
    const r = imagePayloads(['bmc', 'arena'], { bmc: built, arena: unbuilt }, (l) => logged.push(l));
    expect(r.payloads.map((p) => p.stage)).toEqual(['bmc']);
    expect(r.record).toEqual({
      bmc: { dir: '/opt/bmc', from: { commit: 'c' } },
      arena: { built: false, reason: 'source bmc unreachable (...); pass --source bmc=/path/to/bmc-cache' },
    });
    expect(logged).toEqual(['arena is left out of the image: source bmc unreachable (...); pass --source bmc=/path/to/bmc-cache']);
    expect(() => imagePayloads(['bmc'], {})).toThrow(/payload stage bmc did not run/);
  });
  it('an output without a payload is none; a malformed one names the manifest and the fix', () => {
    expect(guestPayload(out({ files: [] }))).toBeUndefined();
    expect(() => guestPayload(out({ payload: '../x', guest_dir: '/opt/bmc' }))).toThrow(/\/cache\/bmc\/f\/stage.json needs payload.*--force bmc/);
    expect(() => guestPayload(out({ payload: 'bmc', guest_dir: 'opt/bmc' }))).toThrow(/guest_dir \(an absolute path\)/);
  });
  it('the smoke profile builds the patched BMC into its image; paper the fork as published', () => {
    const smoke = loadConfig({ profile: 'smoke', env: {} });
    expect(smoke.profile.image.bmc).toBe('upstream');
    const reg = stageRegistry(smoke);
    expect([...reg.keys()].indexOf('bmc')).toBeLessThan([...reg.keys()].indexOf('image'));
    expect(reg.get('image')!.deps).toContain('bmc');
    const paper = loadConfig({ profile: 'paper', env: {} });
    expect(paper.profile.image.bmc).toBe('artifact');
    expect(paper.profile.sources.bmc).toEqual({
      kind: 'git',
      url: 'https://github.com/rs3lab/bmc-cache',
      commit: '1fb8f96066127a6ccae35c72eac38cee63d4bc8f',
    });
  });
  it('--source bmc=PATH replaces the pinned fork; image.bmc: false builds no bmc stage', () => {
    const c = loadConfig({ profile: 'smoke', env: {}, sources: [`bmc=${tmpdir()}`] });
    expect(c.profile.sources.bmc).toEqual({ kind: 'path', path: tmpdir() });
    const off = loadConfig({ profile: 'smoke', env: {}, set: ['image.bmc=false'] });
    expect(stageRegistry(off).has('bmc')).toBe(false);
    expect(stageRegistry(off).get('image')!.deps).not.toContain('bmc');
    expect(existsSync(BMC_UPSTREAM_PATCH)).toBe(true);
  });
});
