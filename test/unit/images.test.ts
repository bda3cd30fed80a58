import { describe, it, expect } from 'vitest';
import { mmdebstrapArgv, explainMmdebstrapFailure } from '../../images/mmdebstrap.js';
import { parsePackageVersions } from '../../images/stage.js';
import { kflexBuildCommand, KFLEX_BUILD_PACKAGES } from '../../images/kflex.js';

describe('image stage helpers', () => {
  it('mmdebstrap argv: variant, root mode, packages, bounded apt timeouts, hooks, optional mirror', () => {
    const a = mmdebstrapArgv({
      suite: 'trixie',
      target: '/t/rootfs',
      include: ['systemd', 'openssh-server'],
      customize: ['/x/customize.sh', 'copy-in /a /b'],
      slim: true,
    });
    expect(a.slice(0, 4)).toEqual(['mmdebstrap', '--variant=minbase', '--mode=root', '--include=systemd,openssh-server']);
    expect(a).toContain('--aptopt=Acquire::http::Timeout "30"');
    expect(a).toContain('--customize-hook=copy-in /a /b');
    expect(a.slice(-2)).toEqual(['trixie', '/t/rootfs']);
    expect(mmdebstrapArgv({ suite: 'trixie', target: '/t', include: ['x'], mirror: 'http://mirror.example/debian' }).at(-1)).toBe(
      'http://mirror.example/debian',
    );
  });

  it('explains failures from mmdebstrap logs (captured; the mirror name replaced)', () => {
    expect(
      explainMmdebstrapFailure(
        "E: The repository 'http://MIRROR/debian nosuchsuite Release' does not have a Release file.\nE: mmdebstrap failed to run\n",
        'nosuchsuite',
      ),
    ).toBe("suite 'nosuchsuite' is not on the mirror; fix image.suite (e.g. trixie, bookworm)");
    expect(explainMmdebstrapFailure('E: Unable to locate package kflex-nope\nE: Unable to locate package kflex-nope\n', 'trixie')).toBe(
      'package(s) not in trixie: kflex-nope; fix image.packages in lab.yaml',
    );
    expect(explainMmdebstrapFailure("E: Package 'libpcre3-dev' has no installation candidate\n", 'trixie')).toBe(
      'package(s) not in trixie: libpcre3-dev; fix image.packages in lab.yaml',
    );
    expect(explainMmdebstrapFailure('Err:1 http://MIRROR/debian trixie InRelease\n  Could not resolve host\n', 'trixie')).toMatch(/the mirror does not answer/);
    expect(explainMmdebstrapFailure('all fine', 'trixie')).toBeUndefined();
  });

  it('reads dpkg-query package versions', () => {
    expect(parsePackageVersions('memcached\t1.6.38-1\nredis-server\t5:8.0.2-3\n')).toEqual({ memcached: '1.6.38-1', 'redis-server': '5:8.0.2-3' });
  });

  it('KFlex builds with its real dependencies and is judged by its binaries (build.sh exits 0 on failure)', () => {
    for (const p of ['libabsl-dev', 'libjemalloc-dev', 'libbpf-dev', 'libbenchmark-dev', 'clang-19']) expect(KFLEX_BUILD_PACKAGES).toContain(p);
    expect(kflexBuildCommand('/b')).toMatch(/CLANG=clang-19 .*\.\/build\.sh && for b in ffkx ffkx-bench ffkx-test; do test -x "\$b"/);
  });
});
