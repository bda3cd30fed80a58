import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseQemuVersion, parseClangVersion, llcHasBpf, parsePaholeVersion, parseMmdebstrapVersion, cgroupV2FromMounts, capNetAdminFromStatus, aptLine } from '../../core/doctor.js';
import { parseAptSources, hostDebianMirror } from '../../core/apt.js';
import { FIXTURES } from '../helpers.js';

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
    expect(capNetAdminFromStatus(fx('proc-status-root.txt'))).toBe(true);
    expect(capNetAdminFromStatus('CapEff:\t0000000000000000\n')).toBe(false);
  });

  it('prints one apt-get line for everything missing, without duplicates', () => {
    expect(aptLine([
      { name: 'qemu', level: 'fail', detail: '', packages: ['qemu-system-x86', 'qemu-utils'] },
      { name: 'qemu-img', level: 'fail', detail: '', packages: ['qemu-utils'] },
      { name: 'ok', level: 'ok', detail: '', packages: ['never'] },
    ])).toBe('apt-get install -y qemu-system-x86 qemu-utils');
    expect(aptLine([{ name: 'x', level: 'ok', detail: '' }])).toBeUndefined();
  });

  it('finds the Debian mirror in one-line and deb822 apt sources, never the security archive', () => {
    const deb822 = parseAptSources('Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n', true);
    expect(deb822).toHaveLength(2);
    expect(hostDebianMirror(deb822)).toBe('http://mirror.example/debian');
    const classic = parseAptSources('# comment\ndeb [arch=amd64] http://m.example/debian/ trixie main contrib\ndeb http://m.example/debian-security trixie-security main\n', false);
    expect(classic[0]).toEqual({ uri: 'http://m.example/debian/', suites: ['trixie'], components: ['main', 'contrib'] });
    expect(hostDebianMirror(classic)).toBe('http://m.example/debian');
    expect(hostDebianMirror([])).toBeUndefined();
  });
});
