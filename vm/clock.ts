/**
 * The guest's clock under TCG. The smoke kernel has no ACPI, so no HPET or PM timer: its TSC is calibrated
 * against the emulated PIT alone, and on a busy host that fails ("tsc: Fast TSC calibration failed", "Unable to
 * calibrate against PIT", "Marking TSC unstable due to could not calculate TSC khz"). The guest then keeps time
 * with refined-jiffies, 4 ms ticks, and every BPF_PROG_TEST_RUN duration below a tick reads 0 ns (Google
 * Benchmark then prints `inf` items per second). Under TCG QEMU's guest TSC counts the host's TSC
 * (cpu_get_ticks: cpu_get_host_ticks), so the host's TSC frequency, handed over as `tsc_early_khz=`, skips the
 * calibration; `tsc=reliable` keeps the watchdog (jiffies) from demoting it. Under KVM kvm-clock is used.
 */

import type { VmAccel } from '../core/accel.js';

/** The host's TSC frequency in kHz: its kernel's calibration, else /proc/cpuinfo when the CPU says the TSC runs at a known frequency. */
export function hostTscKhz(dmesg: string, cpuinfo: string): number | undefined {
  const mhz = (re: RegExp) => {
    const m = [...dmesg.matchAll(re)].at(-1);
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  };
  const fromKernel = mhz(/Refined TSC clocksource calibration: ([\d.]+) MHz/g) ?? mhz(/tsc: Detected ([\d.]+) MHz (?:processor|TSC)/g);
  if (fromKernel) return fromKernel;
  // Without tsc_known_freq, "cpu MHz" is the core's current frequency, not the TSC's.
  if (!/^flags\s*:.*\btsc_known_freq\b/m.test(cpuinfo)) return undefined;
  const m = cpuinfo.match(/^cpu MHz\s*:\s*([\d.]+)/m);
  return m ? Math.round(Number(m[1]) * 1000) : undefined;
}

/** Kernel parameters that give a TCG guest a TSC clock; none under KVM or when the host's frequency is unknown. */
export function guestClockParams(accel: VmAccel, tscKhz: number | undefined): string[] {
  if (accel !== 'tcg' || !tscKhz || tscKhz < 100_000) return [];
  return [`tsc_early_khz=${tscKhz}`, 'tsc=reliable'];
}
