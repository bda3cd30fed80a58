import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseConfig, renderFragment, verifyConfig, kconfigEntry, formatMismatch } from '../../kernel/kconfig.js';
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
