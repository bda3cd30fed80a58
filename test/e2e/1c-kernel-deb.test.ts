import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import { lab, explain } from './cli.js';
import { requireOrSkip, tempDir } from '../helpers.js';
import { findOnPath } from '../../core/requirements.js';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const dpkgDeb = (...args: string[]) => execFileSync('dpkg-deb', args, { encoding: 'utf8', maxBuffer: 256 << 20 });

// The smoke profile's kernel (Debian's linux-source-7.3) as Debian packages, made by bindeb-pkg in the
// kernel stage's own build tree; the kernel itself comes from the cache (1-stages builds it).
describe('build kernel --deb --profile smoke', () => {
  let kernelDir = '';
  let debDir = '';

  it('packages the cached kernel: linux-image holds /boot/vmlinuz-<release> and the verified config, release as kernel.json', async () => {
    if (!requireOrSkip(!!findOnPath('dpkg-buildpackage'), 'dpkg-dev (bash .ci/install-deps)')) return;
    const k = await lab(['build', 'kernel', '--profile', 'smoke']);
    expect(k.code, explain(k)).toBe(0);
    kernelDir = k.stdout.match(/^kernel\s+(\S+)$/m)![1]!;
    const kernel = JSON.parse(readFileSync(join(kernelDir, 'kernel.json'), 'utf8'));

    const t0 = Date.now();
    // --force kernel-deb: bindeb-pkg runs every time (the kernel stays cached), so a packaging change is tested.
    const r = await lab(['build', 'kernel', '--deb', '--force', 'kernel-deb', '--profile', 'smoke']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stderr).toMatch(/kernel: cached \(/);
    console.log(`build kernel --deb (smoke, kernel cached): ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const head = r.stdout.match(/^Debian packages of kernel (\S+) \(profile smoke\) in (\S+):$/m);
    expect(head, r.stdout).toBeTruthy();
    expect(head![1]).toBe(kernel.release);
    debDir = head![2]!;

    const stage = JSON.parse(readFileSync(join(debDir, 'stage.json'), 'utf8'));
    expect(stage).toMatchObject({ stage: 'kernel-deb', release: kernel.release, config_sha256: kernel.config_sha256, kernel_fingerprint: basename(kernelDir) });
    const roles = Object.fromEntries((stage.packages as Array<{ role: string; file: string; sha256: string }>).map((p) => [p.role, p]));
    // tinyconfig + the fragments: MODULES and DEBUG_INFO are on, so headers and -dbg come too.
    expect(Object.keys(roles).sort()).toEqual(['headers', 'image', 'image-dbg', 'libc-dev']);
    for (const p of stage.packages) {
      expect(sha256(join(debDir, p.file)), p.file).toBe(p.sha256);
      expect(r.stdout, p.file).toContain(`${p.file}  `);
    }

    const image = join(debDir, roles.image!.file);
    const info = dpkgDeb('-I', image);
    expect(info).toMatch(new RegExp(`^ Package: linux-image-${kernel.release.replace(/\./g, '\\.')}$`, 'm'));
    expect(info).toMatch(/^ Architecture: amd64$/m);
    const listing = dpkgDeb('-c', image);
    for (const f of [`./boot/vmlinuz-${kernel.release}`, `./boot/config-${kernel.release}`, `./boot/System.map-${kernel.release}`])
      expect(listing, f).toMatch(new RegExp(` ${f.replace(/\./g, '\\.')}$`, 'm'));
    // The packaged configuration is the kernel stage's, byte for byte.
    const x = tempDir('kflex-deb-');
    dpkgDeb('-x', image, x);
    expect(sha256(join(x, 'boot', `config-${kernel.release}`))).toBe(kernel.config_sha256);
    expect(readFileSync(join(x, 'boot', `config-${kernel.release}`), 'utf8')).toMatch(/^CONFIG_DEBUG_INFO_BTF=y$/m);
    expect(dpkgDeb('-f', join(debDir, roles.headers!.file), 'Package')).toBe(`linux-headers-${kernel.release}\n`);

    // The lab prints the steps and installs nothing itself.
    expect(r.stdout).toMatch(/sudo dpkg -i linux-image-\S+\.deb linux-headers-\S+\.deb\n/);
    expect(r.stdout).toMatch(/update-grub[\s\S]*reboot[\s\S]*kflex-lab hosts check/);
    expect(r.stdout).toMatch(/not a KFlex kernel.*--profile paper/);
  });

  it('a second --deb is a cached no-op', async () => {
    if (!debDir) return;
    const r = await lab(['build', 'kernel', '--deb', '--profile', 'smoke']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stderr).toMatch(/kernel-deb.*cached \(/);
    expect(r.stdout).toContain(`in ${debDir}:`);
  });

  it('--deb is for the kernel stage only', async () => {
    const r = await lab(['build', 'image', '--deb', '--profile', 'smoke']);
    expect(r.code, explain(r)).toBe(2);
    expect(r.stderr).toMatch(/--deb packages the kernel stage/);
  });
});
