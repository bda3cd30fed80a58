/**
 * The accelerator the machines really run on: KVM or TCG for the lab's VMs, 'native' for real hosts. The one
 * definition: what QEMU runs the VMs on and what the manifest records derive from it.
 */
export type Accel = 'kvm' | 'tcg' | 'native';

/** The accelerators QEMU runs the lab's VMs on (lab.yaml's vms.accel: one of these or 'auto'). */
export const VM_ACCELS = ['kvm', 'tcg'] as const satisfies readonly Accel[];
export type VmAccel = (typeof VM_ACCELS)[number];
