import { join, basename } from 'node:path';
import type { ResolvedConfig } from '../core/config.js';
import type { TestbedProvider } from '../core/testbed.js';
import { kvmProbe } from '../core/host-probe.js';
import { VmTestbed } from '../vm/testbed.js';
import { TESTBED_TARGETS } from './stages.js';
import { hostsProvider } from '../hosts/testbed.js';

export type { TestbedContext, TestbedProvider } from '../core/testbed.js';

const vmProvider: TestbedProvider = {
  kind: 'vm',
  targets: TESTBED_TARGETS,
  async accel(config, artifacts) {
    const wanted = config.profile.vms.accel;
    if (wanted !== 'auto') return { accel: wanted, why: `vms.accel is ${wanted}` };
    // Boot the kernel the VMs will run under KVM: /dev/kvm can open on nested hosts where no Linux guest starts.
    // The answer is cached until the host reboots or QEMU or the kernel changes (core/host-probe.ts).
    const k = await kvmProbe(config.cacheRoot, artifacts.kernel);
    return k.ok ? { accel: 'kvm', why: k.why } : { accel: 'tcg', why: `${k.why}; TCG numbers are functional only` };
  },
  async up(ctx) {
    const { kernel, baseImage, probeObject } = ctx.artifacts;
    if (!kernel || !baseImage) throw new Error('the VM testbed needs the kernel and image stages');
    const p = ctx.config.profile;
    // The accelerator was decided once, before the preamble: the cluster must not probe again.
    const profile = { ...p, vms: { ...p.vms, accel: ctx.accel === 'native' ? 'tcg' : ctx.accel } } as typeof p;
    return VmTestbed.up({ kernel, baseImage, probeObject, profile, cacheRoot: ctx.config.cacheRoot, dir: ctx.dir, owner: ctx.owner, bus: ctx.bus });
  },
};

/** Every kind of testbed the lab can run on; a new kind is one folder plus one line here. */
export const TESTBEDS: Record<string, TestbedProvider> = { vm: vmProvider, hosts: hostsProvider };

/** The VM directory of a run: its VMs are private to it and named after it. */
export function runVmDir(config: ResolvedConfig, runDir: string): string {
  return join(config.cacheRoot, 'vms', basename(runDir));
}
