import { describe, it, expect } from 'vitest';
import {
  bindebArgv,
  debNeedsFor,
  debRole,
  installSteps,
  isPackagingProduct,
  kernelWorkDir,
  missingImageFiles,
  nrCpusOf,
  packagingEnv,
  parseDebName,
} from '../../kernel/deb.js';

// The file names and listing lines below were captured from `make bindeb-pkg` of the smoke profile's
// kernel (Debian's linux-source-6.1, 6.1.192); the listings are cut to the lines that matter.
const SMOKE_FILES = [
  'linux-headers-6.1.192_6.1.192-2_amd64.deb',
  'linux-image-6.1.192-dbg_6.1.192-2_amd64.deb',
  'linux-image-6.1.192_6.1.192-2_amd64.deb',
  'linux-libc-dev_6.1.192-2_amd64.deb',
  'linux-upstream_6.1.192-2_amd64.buildinfo',
  'linux-upstream_6.1.192-2_amd64.changes',
];
const IMAGE_LISTING = `drwxr-xr-x root/root         0 2026-11-27 16:50 ./
drwxr-xr-x root/root         0 2026-11-27 16:50 ./boot/
-rw-r--r-- root/root   1706260 2026-11-27 16:50 ./boot/System.map-6.1.192
-rw-r--r-- root/root     66363 2026-11-27 16:50 ./boot/config-6.1.192
-rw-r--r-- root/root   2864128 2026-11-27 16:50 ./boot/vmlinuz-6.1.192
drwxr-xr-x root/root         0 2026-11-27 16:50 ./lib/modules/6.1.192/
`;

describe('kernel-deb: naming and parsing', () => {
  it('parses the package file names bindeb-pkg writes, and nothing else', () => {
    expect(parseDebName('linux-image-6.1.192_6.1.192-2_amd64.deb')).toEqual({
      file: 'linux-image-6.1.192_6.1.192-2_amd64.deb',
      package: 'linux-image-6.1.192',
      version: '6.1.192-2',
      arch: 'amd64',
    });
    expect(parseDebName('linux-image-6.9.0-rc1+_6.9.0~rc1-3_arm64.deb')).toMatchObject({
      package: 'linux-image-6.9.0-rc1+',
      version: '6.9.0~rc1-3',
      arch: 'arm64',
    });
    expect(parseDebName('linux-upstream_6.1.192-2_amd64.changes')).toBeUndefined();
    expect(parseDebName('linux-image-6.1.192.deb')).toBeUndefined();
    expect(parseDebName('Linux_1_amd64.deb')).toBeUndefined();
  });

  it('gives each package of the release its role', () => {
    const roles = SMOKE_FILES.flatMap((f) => parseDebName(f) ?? []).map((d) => [d.package, debRole(d.package, '6.1.192')]);
    expect(roles).toEqual([
      ['linux-headers-6.1.192', 'headers'],
      ['linux-image-6.1.192-dbg', 'image-dbg'],
      ['linux-image-6.1.192', 'image'],
      ['linux-libc-dev', 'libc-dev'],
    ]);
    // A package of another release (an old build left beside the tree) is not this kernel's image.
    expect(debRole('linux-image-6.1.191', '6.1.192')).toBe('other');
  });

  it('collects only what bindeb-pkg leaves beside the build tree', () => {
    expect(SMOKE_FILES.filter(isPackagingProduct)).toEqual(SMOKE_FILES);
    for (const f of ['build', 'kernel-src', 'apt-state', 'linux-source-6.1_6.1.192-2_all.tar.xz', 'memtier_2.1_amd64.deb', 'linux-upstream_6.1.192-2.dsc'])
      expect(isPackagingProduct(f), f).toBe(false);
  });

  it('finds the files a bootable image package must hold in a dpkg-deb -c listing', () => {
    expect(missingImageFiles(IMAGE_LISTING, '6.1.192')).toEqual([]);
    expect(missingImageFiles(IMAGE_LISTING.replace(/.*vmlinuz.*\n/, ''), '6.1.192')).toEqual(['./boot/vmlinuz-6.1.192']);
    // The release must match: 6.1.19 is a prefix of 6.1.192, not the same kernel.
    expect(missingImageFiles(IMAGE_LISTING, '6.1.19')).toEqual(['./boot/vmlinuz-6.1.19', './boot/config-6.1.19', './boot/System.map-6.1.19']);
    const link =
      'lrwxrwxrwx root/root 0 2026-11-27 16:50 ./boot/vmlinuz-6.1.192 -> vmlinuz-6.1.192-real\n' +
      '-rw-r--r-- root/root 1 2026-11-27 16:50 ./boot/config-6.1.192\n-rw-r--r-- root/root 1 2026-11-27 16:50 ./boot/System.map-6.1.192\n';
    expect(missingImageFiles(link, '6.1.192')).toEqual([]);
  });
});

describe('kernel-deb: the packaging command', () => {
  it('is the kernel stage make argv (same O=, same CC) with bindeb-pkg and no build-dependency check', () => {
    expect(bindebArgv('/c/kernel-work/f/kernel-src', '/c/kernel-work/f/build', { jobs: 4, ccache: true })).toEqual([
      'make',
      '-C',
      '/c/kernel-work/f/kernel-src',
      'O=/c/kernel-work/f/build',
      '-j4',
      'CC=ccache gcc',
      'HOSTCC=ccache gcc',
      'DPKG_FLAGS=-d',
      'bindeb-pkg',
    ]);
    expect(bindebArgv('/s', '/b')).toEqual(['make', '-C', '/s', 'O=/b', 'DPKG_FLAGS=-d', 'bindeb-pkg']);
  });

  it('asks for debhelper only from v6.4 on (dh_listpackages), where the packaging scripts call it', () => {
    const pkgs = (r: string) => debNeedsFor(r).map((n) => n.package);
    expect(pkgs('6.1.192')).toEqual(['dpkg-dev', 'dpkg', 'kmod']);
    expect(pkgs('6.3.13')).not.toContain('debhelper');
    for (const r of ['6.4.0', '6.9.0-rc7+', '6.12.57', '7.0.0']) expect(pkgs(r), r).toContain('debhelper');
  });

  it("runs in the kernel stage's work directory", () => {
    expect(kernelWorkDir('/root/.cache/kflex-lab', 'e1877763b746e876')).toBe('/root/.cache/kflex-lab/kernel-work/e1877763b746e876');
  });

  it("keeps the user's maintainer and distribution, else sets them so hostname and lsb_release are never asked", () => {
    expect(packagingEnv({ PATH: '/usr/local/bin:/usr/bin:/bin' })).toEqual({
      DEBFULLNAME: 'kflex-lab',
      DEBEMAIL: 'kflex-lab@localhost',
      KDEB_CHANGELOG_DIST: 'unstable',
      PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    });
    const mine = packagingEnv(
      { PATH: '/usr/sbin:/usr/bin', DEBEMAIL: 'me@example.org', DEBFULLNAME: 'Me', KDEB_CHANGELOG_DIST: 'bookworm' },
      '/c/kernel-work/f',
    );
    expect(mine).toEqual({ PATH: '/usr/sbin:/usr/bin:/sbin', CCACHE_BASEDIR: '/c/kernel-work/f', CCACHE_NOHASHDIR: 'true' });
  });
});

describe('kernel-deb: the install and boot steps', () => {
  const packages = [
    { role: 'image' as const, file: 'linux-image-6.9.0_6.9.0-1_amd64.deb', path: '/c/kernel-deb/x/linux-image-6.9.0_6.9.0-1_amd64.deb' },
    { role: 'headers' as const, file: 'linux-headers-6.9.0_6.9.0-1_amd64.deb', path: '/c/kernel-deb/x/linux-headers-6.9.0_6.9.0-1_amd64.deb' },
    { role: 'libc-dev' as const, file: 'linux-libc-dev_6.9.0-1_amd64.deb', path: '/c/kernel-deb/x/linux-libc-dev_6.9.0-1_amd64.deb' },
  ];

  it('installs the image and headers, never linux-libc-dev, and ends with hosts check', () => {
    const text = installSteps({ release: '6.9.0', packages, kflex: true, config: 'defconfig + vm-guest + bpf-xdp' }).join('\n');
    expect(text).toContain('sudo dpkg -i linux-image-6.9.0_6.9.0-1_amd64.deb linux-headers-6.9.0_6.9.0-1_amd64.deb\n');
    expect(text).toContain('scp /c/kernel-deb/x/linux-image-6.9.0_6.9.0-1_amd64.deb /c/kernel-deb/x/linux-headers-6.9.0_6.9.0-1_amd64.deb HOST:');
    expect(text).not.toMatch(/dpkg -i .*libc-dev/);
    expect(text).toMatch(/update-grub[\s\S]*reboot[\s\S]*uname -r on the host prints 6\.9\.0[\s\S]*kflex-lab hosts check/);
    expect(text).toContain('(defconfig + vm-guest + bpf-xdp)');
    // Without the packaged configuration's CPU limit nothing is said; with it, how to raise it.
    expect(text).not.toContain('CONFIG_NR_CPUS');
    expect(installSteps({ release: '6.9.0', packages, kflex: true, config: 'x', nrCpus: 512 }).join('\n')).toMatch(
      /at most 512 CPUs \(CONFIG_NR_CPUS\).*--set kernel\.extra\.CONFIG_NR_CPUS=N/,
    );
    expect(nrCpusOf('CONFIG_SMP=y\nCONFIG_NR_CPUS=512\n')).toBe(512);
    expect(nrCpusOf('# CONFIG_SMP is not set\n')).toBeUndefined();
    expect(text).not.toContain('not a KFlex kernel');
  });

  it("says when the profile's kernel is not KFlex's, and fails plainly without an image", () => {
    expect(installSteps({ release: '6.1.192', packages: packages.map((p) => ({ ...p })), kflex: false, config: 'tinyconfig' }).at(-1)).toMatch(
      /not a KFlex kernel.*build kernel --deb --profile paper/,
    );
    expect(installSteps({ release: '6.9.0', packages: packages.slice(1), kflex: true, config: 'defconfig' })).toEqual([
      'no linux-image-6.9.0 package was built',
    ]);
  });
});
