import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  parseConfig,
  renderFragment,
  verifyConfig,
  kconfigEntry,
  formatMismatch,
  selectFragment,
  kernelCondition,
  kernelVersionFromMakefile,
  type KernelVersion,
} from '../../kernel/kconfig.js';
import { fragmentPath, kernelMakeArgv } from '../../kernel/stage.js';

describe('kernel configuration helpers', () => {
  it('parses set, unset and string options', () => {
    const c = parseConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=64\n# comment\n');
    expect([...c]).toEqual([
      ['CONFIG_A', 'y'],
      ['CONFIG_B', 'n'],
      ['CONFIG_C', '"x y"'],
      ['CONFIG_D', '64'],
    ]);
  });

  it('renders profile extras as a fragment', () => {
    expect(renderFragment({ X86_5LEVEL: true, CONFIG_DEBUG_INFO_BTF: 'y', NR_CPUS: 8, KASAN: false })).toBe(
      'CONFIG_X86_5LEVEL=y\nCONFIG_DEBUG_INFO_BTF=y\nCONFIG_NR_CPUS=8\n# CONFIG_KASAN is not set\n',
    );
  });

  it('lists every option that did not stick, with the fragment that asked', () => {
    const frag = parseConfig('CONFIG_BPF_JIT=y\nCONFIG_KASAN=n\nCONFIG_NR_CPUS=64\n');
    const final = parseConfig('# CONFIG_BPF_JIT is not set\nCONFIG_NR_CPUS=64\n');
    expect(verifyConfig([{ name: 'bpf-xdp.config', values: frag }], final)).toEqual([
      { option: 'CONFIG_BPF_JIT', wanted: 'y', got: 'n', fragment: 'bpf-xdp.config' },
    ]);
  });

  it('explains a dropped option from its Kconfig entry', () => {
    // The real 6.1 entry, abridged: BPF_JIT depends on MODULES there.
    const kconfig =
      'config BPF_JIT\n\tbool "Enable BPF Just In Time compiler"\n\tdepends on BPF\n\tdepends on HAVE_CBPF_JIT || HAVE_EBPF_JIT\n' +
      '\tdepends on MODULES\n\thelp\n\t  text\n\nconfig OTHER\n\tdepends on X\n';
    expect(kconfigEntry(kconfig, 'CONFIG_BPF_JIT')).toEqual({ dependsOn: ['BPF', 'HAVE_CBPF_JIT || HAVE_EBPF_JIT', 'MODULES'] });
    expect(kconfigEntry(kconfig, 'CONFIG_NOPE')).toBeUndefined();
    const m = { option: 'CONFIG_BPF_JIT', wanted: 'y', got: 'n', fragment: 'bpf-xdp.config' };
    expect(formatMismatch(m, ['BPF', 'MODULES'])).toBe('CONFIG_BPF_JIT=y (fragment bpf-xdp.config) ended as n: depends on BPF && MODULES');
    expect(formatMismatch({ ...m, option: 'CONFIG_BPF_JITT', got: undefined }, undefined)).toMatch(/ended as absent: no Kconfig defines this symbol/);
  });

  it("the lab's fragments ask for what the VM and KFlex need", () => {
    const vm = parseConfig(readFileSync(fragmentPath('vm-guest'), 'utf8'));
    const bpf = parseConfig(readFileSync(fragmentPath('bpf-xdp'), 'utf8'));
    for (const o of [
      'CONFIG_64BIT',
      'CONFIG_VIRTIO_PCI',
      'CONFIG_VIRTIO_NET',
      'CONFIG_VIRTIO_BLK',
      'CONFIG_EXT4_FS',
      'CONFIG_SERIAL_8250_CONSOLE',
      'CONFIG_DEVTMPFS',
      'CONFIG_CGROUPS',
    ])
      expect(vm.get(o)).toBe('y');
    for (const o of [
      'CONFIG_BPF_SYSCALL',
      'CONFIG_BPF_JIT',
      'CONFIG_DEBUG_INFO_BTF',
      'CONFIG_CGROUP_BPF',
      'CONFIG_BPF_STREAM_PARSER',
      'CONFIG_NET_SOCK_MSG',
      'CONFIG_XDP_SOCKETS',
      'CONFIG_NET_CLS_BPF',
      'CONFIG_NET_ACT_BPF',
      'CONFIG_X86_5LEVEL',
    ])
      expect(bpf.get(o)).toBe('y');
  });

  it('builds out of tree, never in the source', () => {
    expect(kernelMakeArgv('/src', '/b', ['bzImage'], { jobs: 2, ccache: true })).toEqual([
      'make',
      '-C',
      '/src',
      'O=/b',
      '-j2',
      'CC=ccache gcc',
      'HOSTCC=ccache gcc',
      'bzImage',
    ]);
  });
});

const v = (s: string): KernelVersion => {
  const [major, minor, patch] = s.split('.').map(Number);
  return { major: major!, minor: minor!, patch: patch ?? 0 };
};
const fragment = (name: string) => readFileSync(fragmentPath(name), 'utf8');
const options = (text: string) => text.split('\n').filter((l) => /^CONFIG_|^# CONFIG_\S+ is not set/.test(l));

describe('fragments per kernel version', () => {
  it("reads the version from a tree's top Makefile", () => {
    expect(kernelVersionFromMakefile('# SPDX\nVERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n')).toEqual(v('7.3.4'));
    expect(kernelVersionFromMakefile('VERSION = 6\nPATCHLEVEL = 9\n')).toEqual(v('6.9.0'));
    expect(kernelVersionFromMakefile('all:\n\techo\n')).toBeUndefined();
  });

  it('evaluates version conditions (< and >=, joined by &&; patch levels count)', () => {
    expect(kernelCondition('kernel < 6.16', v('6.9'))).toBe(true);
    expect(kernelCondition('kernel < 6.16', v('6.16.0'))).toBe(false);
    expect(kernelCondition('kernel >= 6.10', v('6.10'))).toBe(true);
    expect(kernelCondition('kernel >= 6.10 && kernel < 7.0', v('6.19.3'))).toBe(true);
    expect(kernelCondition('kernel >= 6.10 && kernel < 7.0', v('7.0.0'))).toBe(false);
    expect(kernelCondition('kernel >= 7.3.5', v('7.3.4'))).toBe(false);
    expect(kernelCondition('kernel > 6.1', v('7.3'))).toBeUndefined();
    expect(kernelCondition('version < 6.1', v('7.3'))).toBeUndefined();
  });

  it('keeps the branch that holds, drops the other, and names what it dropped', () => {
    const text = 'CONFIG_A=y\n# @if kernel < 6.16\nCONFIG_OLD=y\n# @else\nCONFIG_NEW=y\n# CONFIG_GONE is not set\n# @endif\nCONFIG_B=y';
    expect(selectFragment(text, v('6.9'), 'f')).toEqual({ text: 'CONFIG_A=y\nCONFIG_OLD=y\nCONFIG_B=y', dropped: ['CONFIG_NEW', 'CONFIG_GONE'] });
    expect(selectFragment(text, v('7.3.4'), 'f')).toEqual({ text: 'CONFIG_A=y\nCONFIG_NEW=y\n# CONFIG_GONE is not set\nCONFIG_B=y', dropped: ['CONFIG_OLD'] });
    // A fragment without guards is merged as it is.
    expect(selectFragment('# a comment\nCONFIG_A=y\n', v('7.3'), 'f')).toEqual({ text: '# a comment\nCONFIG_A=y\n', dropped: [] });
  });

  it('a malformed guard stops the build, named by file and line (a typo never keeps or drops an option silently)', () => {
    expect(() => selectFragment('# @if kernel > 6.1\nCONFIG_A=y\n# @endif', v('7.3'), 'x.config')).toThrow(
      /x\.config:1: cannot read the condition 'kernel > 6\.1'/,
    );
    expect(() => selectFragment('# @if kernel < 6.1\nCONFIG_A=y', v('7.3'), 'x.config')).toThrow(/x\.config:1: @if without @endif/);
    expect(() => selectFragment('# @if kernel < 6.1\n# @if kernel < 6.2\n# @endif', v('7.3'), 'x.config')).toThrow(/x\.config:2: @if inside the @if of line 1/);
    expect(() => selectFragment('# @else', v('7.3'), 'x.config')).toThrow(/x\.config:1: @else without an open @if/);
    expect(() => selectFragment('# @endif', v('7.3'), 'x.config')).toThrow(/@endif without an open @if/);
    expect(() => selectFragment('# @elif kernel < 7.0', v('7.3'), 'x.config')).toThrow(/x\.config:1: unknown directive/);
  });

  it('the three options no Kconfig of 7.3 defines are asked only of the kernels that have them, their replacements of the others', () => {
    const on = (ver: string) =>
      new Map(['tiny', 'vm-guest', 'bpf-xdp', 'bpf-cells'].flatMap((f) => [...parseConfig(selectFragment(fragment(f), v(ver), f).text)]));
    const old = on('6.9');
    const now = on('7.3.4');
    expect([old.get('CONFIG_BASE_FULL'), old.get('CONFIG_PROC_SYSCTL'), old.get('CONFIG_X86_5LEVEL')]).toEqual(['y', 'y', 'y']);
    expect([old.has('CONFIG_BASE_SMALL'), old.has('CONFIG_SYSCTL'), old.has('CONFIG_PGTABLE_LEVELS')]).toEqual([false, false, false]);
    expect([now.has('CONFIG_BASE_FULL'), now.has('CONFIG_PROC_SYSCTL'), now.has('CONFIG_X86_5LEVEL')]).toEqual([false, false, false]);
    expect([now.get('CONFIG_BASE_SMALL'), now.get('CONFIG_SYSCTL'), now.get('CONFIG_PGTABLE_LEVELS')]).toEqual(['n', 'y', '5']);
    // 6.12 (the version the e2e test configures the paper profile on) still has all three.
    expect(on('6.12.48').get('CONFIG_X86_5LEVEL')).toBe('y');
    expect(on('6.12.48').get('CONFIG_PROC_SYSCTL')).toBe('y');
  });

  it("the paper profile's kernel (KFlex-linux v6.9) is asked exactly what it was before the guards", () => {
    // sha256 of the sorted option lines of vm-guest + bpf-xdp at commit f4feff0, before any version guard, with
    // the one change made on purpose since: CONFIG_NR_CPUS 64 -> 512 (issue 23: `build kernel --deb` for bare metal).
    const lines = ['vm-guest', 'bpf-xdp'].flatMap((f) => options(selectFragment(fragment(f), v('6.9.0'), f).text)).sort();
    expect(lines).toHaveLength(80);
    expect(lines).toContain('CONFIG_NR_CPUS=512');
    expect(
      createHash('sha256')
        .update(`${lines.join('\n')}\n`)
        .digest('hex'),
    ).toBe('cd9ddccc5da1b68f3a954aa5fa772b47c77a1ab2dc88e8bc889b7238bf2cef3b');
  });

  it("the cells' fragment asks for kallsyms, BPF events, clsact and what arenas are built with", () => {
    const cells = parseConfig(fragment('bpf-cells'));
    for (const o of ['KALLSYMS', 'BPF_EVENTS', 'PERF_EVENTS', 'KPROBE_EVENTS', 'NET_SCH_INGRESS', 'MMU', '64BIT', 'BPF_SYSCALL'])
      expect(cells.get(`CONFIG_${o}`), o).toBe('y');
    expect(cells.has('CONFIG_BPF_JIT_ALWAYS_ON')).toBe(false);
  });
});
