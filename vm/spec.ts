import { buildArgs, type QemuConfig } from 'node-qemu';
import { linkBackendOf, type LinkState } from './link/index.js';

export type { VmRole } from './link/types.js';
import type { VmRole } from './link/types.js';
import type { VmAccel } from '../core/accel.js';
import { guestClockParams } from './clock.js';

export interface VmSpec {
  role: VmRole;
  cpus: number;
  memoryMb: number;
  accel: VmAccel;
  kernel: string;
  disk: string;
  sshPort: number;
  mgmtMac: string;
  linkMac: string;
  /** Address of the link NIC (eth1), CIDR. */
  linkAddr: string;
  mtu: number;
  /** The link both VMs share (as state.json records it); the role picks this VM's end. */
  link: LinkState;
  serialLog: string;
  qmpSocket: string;
  pidfile: string;
  /** The host's TSC frequency (kHz), handed to a TCG guest so its clock is the TSC, not 4 ms jiffies (vm/clock.ts). */
  tscKhz?: number;
  /** Once QEMU has opened its devices it becomes this user (a guest escape lands nowhere useful); unset: it keeps the lab's user. */
  dropTo?: PrivilegeDrop;
}

/** The unprivileged user QEMU switches to, and the flag its version understands. */
export interface PrivilegeDrop {
  user: string;
  /** `-run-with user=` on QEMU >= 9 (where `-runas` is deprecated, then removed), `-runas` before. */
  flag: 'run-with' | 'runas';
}

/** The user a root-started QEMU becomes: Debian's `nobody` owns no file the guest could be used to reach. */
export const QEMU_USER = 'nobody';

/** Pure: `QEMU emulator version 7.2.22 (Debian ...)` -> [7, 2]; undefined when the text holds no version. */
export function parseQemuVersion(text: string): [number, number] | undefined {
  const m = text.match(/QEMU emulator version (\d+)\.(\d+)/);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * Pure: whether and how QEMU drops root. Only a root-started QEMU can (and must) switch users; the user
 * has to exist on the host. QEMU 9.0 added `-run-with user=`; older ones know only `-runas`.
 */
export function privilegeDrop(o: { euid: number; qemuVersion?: [number, number]; userExists: boolean; user?: string }): PrivilegeDrop | undefined {
  if (o.euid !== 0 || !o.userExists || !o.qemuVersion) return undefined;
  return { user: o.user ?? QEMU_USER, flag: o.qemuVersion[0] >= 9 ? 'run-with' : 'runas' };
}

/** The argv words for a privilege drop. */
export function privilegeDropArgs(d: PrivilegeDrop | undefined): string[] {
  if (!d) return [];
  return d.flag === 'run-with' ? ['-run-with', `user=${d.user}`] : ['-runas', d.user];
}

export const LINK_ADDRS: Record<VmRole, string> = { server: '10.77.0.1/24', client: '10.77.0.2/24' };
export const MACS: Record<VmRole, { mgmt: string; link: string }> = {
  server: { mgmt: '52:54:00:77:00:01', link: '52:54:00:77:01:01' },
  client: { mgmt: '52:54:00:77:00:02', link: '52:54:00:77:01:02' },
};

/** Kernel command line: root on the virtio disk, serial console, classic NIC names (eth0 mgmt, eth1 link). */
export function kernelCmdline(spec: VmSpec): string {
  return [
    'root=/dev/vda',
    'rw',
    'rootfstype=ext4',
    'console=ttyS0',
    'net.ifnames=0',
    'biosdevname=0',
    // kernel DHCP on the management NIC only (QEMU's user-mode network answers at once)
    'ip=:::::eth0:dhcp',
    // lab units read these; systemd names the VM
    `systemd.hostname=${spec.role}`,
    `kflex.addr=${spec.linkAddr}`,
    `kflex.mtu=${spec.mtu}`,
    'systemd.show_status=1',
    'panic=-1',
    ...guestClockParams(spec.accel, spec.tscKhz),
  ].join(' ');
}

/**
 * The link NIC's device options. XDP on virtio-net needs the host not to implement guest GRO/CSUM
 * offloads ("Can't set XDP while host is implementing GRO_HW/CSUM"), so they are off; with mq, vectors
 * = 2*queues+2 so each queue pair gets its interrupts, and 2 x vCPU queues keep XDP_TX lock-free.
 */
export function linkDeviceArgs(spec: VmSpec): string[] {
  const offloads = 'csum=off,guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off';
  const n = linkBackendOf(spec.link).netdev(spec.link, spec.role);
  const mq = n.queues > 1 ? `,mq=on,vectors=${2 * n.queues + 2}` : '';
  return ['-netdev', [n.type, 'id=link', ...n.options].join(','), '-device', `virtio-net-pci,netdev=link,mac=${spec.linkMac},addr=0x5,${offloads}${mq}`];
}

export function qemuConfig(spec: VmSpec): QemuConfig {
  return {
    machine: { type: 'pc' },
    accel: [{ accel: spec.accel, ...(spec.accel === 'tcg' ? { thread: 'multi' as const } : {}) }],
    cpu: spec.accel === 'kvm' ? 'host' : 'max',
    smp: spec.cpus,
    memory: { size: spec.memoryMb },
    qmp: { socketPath: spec.qmpSocket },
    pidfile: spec.pidfile,
    daemonize: true,
    net: [{ type: 'none' }],
    extraArgs: [
      '-name',
      `kflex-${spec.role}`,
      '-display',
      'none',
      '-nodefaults',
      '-no-user-config',
      '-serial',
      `file:${spec.serialLog}`,
      '-kernel',
      spec.kernel,
      '-append',
      kernelCmdline(spec),
      '-drive',
      `file=${spec.disk},format=qcow2,if=none,id=root,cache=unsafe`,
      '-device',
      'virtio-blk-pci,drive=root,addr=0x3',
      '-netdev',
      `user,id=mgmt,hostfwd=tcp:127.0.0.1:${spec.sshPort}-:22`,
      '-device',
      `virtio-net-pci,netdev=mgmt,mac=${spec.mgmtMac},addr=0x4`,
      ...linkDeviceArgs(spec),
      '-device',
      'virtio-rng-pci,addr=0x6',
      ...privilegeDropArgs(spec.dropTo),
    ],
  };
}

/** The full qemu-system argv (node-qemu builds the common part, the lab adds the devices). */
export function qemuArgv(spec: VmSpec, binary = 'qemu-system-x86_64'): string[] {
  return [binary, ...buildArgs(qemuConfig(spec))];
}
