import { describe, it, expect } from 'vitest';
import { hostTscKhz, guestClockParams } from '../../vm/clock.js';
import { kernelCmdline } from '../../vm/spec.js';

// dmesg and cpuinfo lines in the layouts Linux prints them (this host's dmesg said "tsc: Detected 2096.011 MHz
// processor"; a bare-metal box's refined calibration line is Linux's format, assembled here).
describe("a TCG guest's clock (vm/clock.ts)", () => {
  it("reads the host's TSC frequency: the refined calibration first, then the detected one, then cpuinfo with tsc_known_freq", () => {
    const detected = '[    0.000264] tsc: Detected 2096.011 MHz processor\n';
    const refined = `${detected}[    1.234567] tsc: Refined TSC clocksource calibration: 2095.998 MHz\n`;
    expect(hostTscKhz(refined, '')).toBe(2_095_998);
    expect(hostTscKhz(detected, '')).toBe(2_096_011);
    const cpuinfo = (flags: string) => `processor\t: 0\ncpu MHz\t\t: 2096.011\nflags\t\t: fpu tsc ${flags}\n`;
    expect(hostTscKhz('', cpuinfo('constant_tsc tsc_known_freq'))).toBe(2_096_011);
    // Without tsc_known_freq "cpu MHz" is the core's current frequency: not used.
    expect(hostTscKhz('', cpuinfo('constant_tsc'))).toBeUndefined();
    expect(hostTscKhz('', '')).toBeUndefined();
  });

  it('hands it to a TCG guest only (kvm-clock under KVM), and never a nonsense value', () => {
    expect(guestClockParams('tcg', 2_096_011)).toEqual(['tsc_early_khz=2096011', 'tsc=reliable']);
    expect(guestClockParams('kvm', 2_096_011)).toEqual([]);
    expect(guestClockParams('tcg', undefined)).toEqual([]);
    expect(guestClockParams('tcg', 12)).toEqual([]);
  });

  it('the kernel command line carries it', () => {
    const spec = { role: 'server', accel: 'tcg', linkAddr: '10.77.0.1/24', mtu: 1500, tscKhz: 2_096_011 } as Parameters<typeof kernelCmdline>[0];
    expect(kernelCmdline(spec)).toMatch(/ tsc_early_khz=2096011 tsc=reliable$/);
    expect(kernelCmdline({ ...spec, tscKhz: undefined })).not.toMatch(/tsc/);
  });
});
