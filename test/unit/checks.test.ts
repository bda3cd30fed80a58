import { describe, it, expect } from 'vitest';
import { checkLines } from '../../cli/checks.js';

describe('the check printer (cli/checks.ts)', () => {
  it('marks each level, aligns the details, and gives the fix under a check that is not ok', () => {
    expect(
      checkLines([
        { name: 'qemu', level: 'ok', detail: 'qemu-system-x86_64 7.2.22', fix: 'never printed for ok' },
        { name: 'kvm', level: 'warn', detail: '/dev/kvm missing: TCG', fix: 'modprobe kvm_intel' },
        { name: 'pahole', level: 'fail', detail: 'pahole 1.15 is too old' },
      ]),
    ).toEqual([
      '[ ok ] qemu          qemu-system-x86_64 7.2.22',
      '[warn] kvm           /dev/kvm missing: TCG',
      '                     fix: modprobe kvm_intel',
      '[FAIL] pahole        pahole 1.15 is too old',
    ]);
  });

  it('adds a host column when the checks name hosts (hosts check)', () => {
    expect(
      checkLines([
        { host: 'server', name: 'kflex kernel', level: 'ok', detail: 'BPF_MAP_TYPE_HEAP is in the BTF' },
        { host: 'both', name: 'ntp', level: 'fail', detail: 'clocks differ', fix: 'run NTP on both' },
      ]),
    ).toEqual([
      '[ ok ] server kflex kernel  BPF_MAP_TYPE_HEAP is in the BTF',
      '[FAIL] both   ntp           clocks differ',
      '                            fix: run NTP on both',
    ]);
  });
});
