import { join } from 'node:path';
import { fixedMemoryMb, type Profile } from '../core/config.js';
import type { EventBus } from '../core/events.js';
import type { Testbed, LinkFacts } from '../core/testbed.js';
import { LabError, ExitCode } from '../core/errors.js';
import { LINK_IF } from '../core/guest.js';
import { startReaperProcess } from '../core/reaping.js';
import { Cluster } from './cluster.js';
import { checkNativeXdp, type XdpCheckResult } from '../core/xdp-check.js';
import { cleanStaleVms, qemuPid, readSerialTail } from './state.js';
import { describeLink } from './link/index.js';
import type { Host } from '../core/host.js';
import { ledgerPath, TrackedHost } from '../core/processes.js';

export interface VmTestbedInputs {
  kernel: string;
  baseImage: string;
  /** The lab's XDP probe object, attached in driver mode to prove native XDP. */
  probeObject: string;
  profile: Profile;
  cacheRoot: string;
  dir: string;
  /** 'run': the VMs die with this lab process (a reaper watches it); 'up': they stay until `down`. */
  owner: 'up' | 'run';
  bus: EventBus;
}

/** The acceptance rule for the link: the probe must count exactly what the client sent, in driver mode. */
export function xdpAccepted(x: XdpCheckResult): string | undefined {
  if (x.mode !== 'driver') return `XDP ran in ${x.mode} mode, not driver mode`;
  if (x.counted !== x.sent) return `sent ${x.sent} UDP packets to port ${x.port}, the probe counted ${x.counted}`;
  return undefined;
}

export function describeXdp(x: XdpCheckResult): string {
  return (
    `mode ${x.mode}, UDP port ${x.port}: sent ${x.sent}, counted ${x.counted}; other counters: ` +
    `${x.other.map((o) => `${o.proto === 0xffff ? 'eth' : o.proto}/${o.port}=${o.count}`).join(' ') || 'none'}`
  );
}

/** The lab's own server and client VMs on a virtio-net link, as a Testbed. */
export class VmTestbed implements Testbed {
  readonly kind = 'vm';
  private stopped = false;

  private readonly tracked?: { server: TrackedHost; client: TrackedHost };

  private constructor(
    readonly cluster: Cluster,
    readonly link: LinkFacts,
    readonly xdp: XdpCheckResult | undefined,
    private readonly profile: Profile,
    /** For a run's VMs: the guests' ledger, in which every command the cells run is recorded before it runs. */
    ledger?: string,
  ) {
    if (ledger) this.tracked = { server: new TrackedHost(cluster.server.host, ledger), client: new TrackedHost(cluster.client.host, ledger) };
  }

  get server(): Host {
    return this.tracked?.server ?? this.cluster.server.host;
  }
  get client(): Host {
    return this.tracked?.client ?? this.cluster.client.host;
  }
  get accel() {
    return this.cluster.state.accel;
  }
  get serverMemoryMb() {
    return fixedMemoryMb(this.profile.vms.server.memory_mb);
  }
  get serverCpus() {
    return this.profile.vms.server.cpus;
  }
  get facts(): Record<string, unknown> {
    return { testbed: 'vm', dir: this.cluster.dir, accel: this.accel, link: this.link.describe, xdp_check: this.xdp };
  }

  /** Boot both VMs, start the reaper for run-owned sets, and prove native XDP on the server's link NIC. */
  static async up(inp: VmTestbedInputs): Promise<VmTestbed> {
    const { bus } = inp;
    for (const d of await cleanStaleVms(inp.cacheRoot))
      bus.emit({ type: 'step', scope: 'vms', message: `cleaned a stale VM set (its lab process is gone): ${d}` });
    // The reaper is started before the first QEMU: a lab killed with SIGKILL during the boot leaves nothing either.
    if (inp.owner === 'run') startReaper(process.pid, inp.dir);
    const cluster = await Cluster.up({
      kernel: inp.kernel,
      baseImage: inp.baseImage,
      profile: inp.profile,
      cacheRoot: inp.cacheRoot,
      dir: inp.dir,
      owner: inp.owner,
      bus,
    });
    try {
      const xdp = await checkNativeXdp(
        { server: cluster.server.host, client: cluster.client.host, serverIf: LINK_IF, serverIp: cluster.server.linkIp },
        inp.probeObject,
      );
      bus.emit({ type: 'step', scope: 'xdp', message: describeXdp(xdp) });
      for (const w of xdp.warnings) bus.emit({ type: 'warn', scope: 'xdp', message: w });
      const refused = xdpAccepted(xdp);
      if (refused) throw new LabError(`native XDP check: ${refused}`, ExitCode.infra);
      const describe = describeLink(cluster.state.link);
      const link: LinkFacts = { serverIf: LINK_IF, serverIp: cluster.server.linkIp, clientIp: cluster.client.linkIp, nativeXdp: true, xdpCheck: xdp, describe };
      // A cell past its bound stops what the ledger recorded (experiments/server.ts resetHosts); the VMs die with the run.
      return new VmTestbed(cluster, link, xdp, inp.profile, inp.owner === 'run' ? ledgerPath(`run-${process.pid}`) : undefined);
    } catch (e) {
      await cluster.down();
      throw e;
    }
  }

  /** A testbed over VMs a previous `up` left running. */
  static async attach(dir: string, cacheRoot: string, profile: Profile): Promise<VmTestbed> {
    const cluster = await Cluster.attach(dir, cacheRoot);
    const s = cluster.state;
    const link: LinkFacts = { serverIf: LINK_IF, serverIp: cluster.server.linkIp, clientIp: cluster.client.linkIp, nativeXdp: false, describe: s.link.backend };
    return new VmTestbed(cluster, link, undefined, profile);
  }

  async health(): Promise<string | undefined> {
    for (const vm of [this.cluster.server, this.cluster.client]) {
      const pidfile = this.cluster.state.vms[vm.role].pidfile;
      if (qemuPid(pidfile)) continue;
      // A daemonized QEMU is not our child: its exit status cannot be read, only that it is gone.
      const tail = (await readSerialTail(vm.serialLog, 15)).filter((l) => l.trim());
      return (
        `the ${vm.role} VM's QEMU is gone (pid file ${pidfile}; killed or crashed, exit status not ` +
        `observable for a daemonized QEMU); last serial ` +
        `lines:\n${tail.map((l) => `  | ${l}`).join('\n')}`
      );
    }
    return undefined;
  }

  async down(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.cluster.down();
  }

  logs(): Record<string, string> {
    return { 'server.serial.log': this.cluster.server.serialLog, 'client.serial.log': this.cluster.client.serialLog };
  }
}

/**
 * A detached process that tears the VM set down when the lab process is gone, however it died (SIGKILL
 * included). It leaves by itself once the set is torn down normally.
 */
export function startReaper(labPid: number, dir: string): void {
  // Recorded in the VM directory as it starts: a resume of the run waits while it tears down (core/reaping.ts).
  startReaperProcess('vm/reaper', [String(labPid), dir], { dir, labPid, what: `the VM set in ${dir}`, log: join(dir, 'reaper.log') });
}
