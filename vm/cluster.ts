import { mkdir, chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QemuProcess, buildArgs } from 'node-qemu';
import { fixedMemoryMb, type Profile } from '../core/config.js';
import type { EventBus } from '../core/events.js';
import { run } from '../core/exec.js';
import { SshHost, CONTROL_PERSIST_S } from '../core/ssh.js';
import { labKeys, type LabKeys } from '../core/keys.js';
import { kvmProbe, pidAlive } from '../core/host-probe.js';
import { LINK_IF } from '../core/guest.js';
import { LabError, ExitCode } from '../core/errors.js';
import { retry, RetryAborted, RetryTimeout } from '../core/retry.js';
import { qemuConfig, LINK_ADDRS, MACS, QEMU_USER, parseQemuVersion, privilegeDrop, type VmSpec, type VmRole } from './spec.js';
import type { VmAccel } from '../core/accel.js';
import { hostTscKhz } from './clock.js';
import { chooseLink, describeLink, linkAvailability, linkBackendOf, planLink, type LinkAvailability } from './link/index.js';
import { readState, writeState, teardownDir, freePorts, qemuPid, isStale, readSerialTail, sshControlPath, type ClusterState } from './state.js';

export interface ClusterInputs {
  kernel: string;
  baseImage: string;
  profile: Profile;
  cacheRoot: string;
  /** Private directory for sockets, pid files, overlays, logs (0700). */
  dir: string;
  owner: ClusterState['owner'];
  bus: EventBus;
}

/** What the plan needs to know about the host; probed once, before planning. */
export interface ClusterHostFacts {
  /** Only probed when vms.accel is auto (the probe boots the kernel under KVM). */
  kvm?: { ok: boolean; why: string };
  links: LinkAvailability;
  /** Who starts QEMU and which QEMU: decides whether and how it drops root (vm/spec.ts privilegeDrop). */
  privileges?: { euid: number; qemuVersion?: [number, number]; userExists: boolean };
  /** The host's TSC frequency (kHz), for a TCG guest's clock (vm/clock.ts); undefined when unknown. */
  tscKhz?: number;
}

export interface PlanInputs {
  kernel: string;
  dir: string;
  vms: Profile['vms'];
  owner: ClusterState['owner'];
  labPid: number;
  /** ISO time, recorded in state.json. */
  created: string;
  host: ClusterHostFacts;
  /** Free loopback ports: each VM's SSH forward, and one for the link backend if it wants it. */
  ports: { server: number; client: number; link: number };
}

export interface ClusterPlan {
  state: ClusterState;
  specs: Record<VmRole, VmSpec>;
  /** Progress lines and warnings for the start to emit. */
  steps: string[];
  warnings: string[];
}

/** Pure: everything `up` will start, decided from the inputs, the host's facts and the chosen ports. */
export function planCluster(p: PlanInputs): ClusterPlan {
  const accel: VmAccel = p.vms.accel === 'auto' ? (p.host.kvm?.ok ? 'kvm' : 'tcg') : p.vms.accel;
  const choice = chooseLink(p.vms.link.backend, p.host.links);
  // The tag only has to be unique among live lab processes, and short for interface names.
  const link = planLink(choice, {
    tag: String(p.labPid % 100000),
    cpus: Math.max(p.vms.server.cpus, p.vms.client.cpus),
    mtu: p.vms.link.mtu,
    port: p.ports.link,
  });
  const spec = (role: VmRole): VmSpec => ({
    role,
    cpus: p.vms[role].cpus,
    memoryMb: fixedMemoryMb(p.vms[role].memory_mb),
    accel,
    kernel: p.kernel,
    disk: join(p.dir, `${role}.qcow2`),
    sshPort: p.ports[role],
    mgmtMac: MACS[role].mgmt,
    linkMac: MACS[role].link,
    linkAddr: LINK_ADDRS[role],
    mtu: p.vms.link.mtu,
    link,
    serialLog: join(p.dir, `${role}.serial.log`),
    qmpSocket: join(p.dir, `${role}.qmp`),
    pidfile: join(p.dir, `${role}.pid`),
  });
  const dropTo = p.host.privileges ? privilegeDrop(p.host.privileges) : undefined;
  const tscKhz = accel === 'tcg' ? p.host.tscKhz : undefined;
  const specs = { server: { ...spec('server'), dropTo, tscKhz }, client: { ...spec('client'), dropTo, tscKhz } };
  const vm = (s: VmSpec) => ({ pidfile: s.pidfile, qmp: s.qmpSocket, serial: s.serialLog, sshPort: s.sshPort, disk: s.disk });
  const state: ClusterState = {
    owner: p.owner,
    labPid: p.labPid,
    phase: 'booting',
    created: p.created,
    accel,
    link,
    vms: { server: vm(specs.server), client: vm(specs.client) },
  };
  return {
    state,
    specs,
    steps: [
      `accel ${accel}${p.host.kvm && !p.host.kvm.ok ? ` (${p.host.kvm.why})` : ''}, link ${describeLink(link)}: ${choice.why}`,
      ...(dropTo ? [`QEMU drops root to '${dropTo.user}' once its devices are open (-${dropTo.flag})`] : []),
      ...(accel === 'tcg'
        ? [
            tscKhz
              ? `guest clock: the TSC at the host's ${(tscKhz / 1000).toFixed(3)} MHz (tsc_early_khz), not the emulated PIT's calibration`
              : "guest clock: the host's TSC frequency is unknown (no dmesg line, no tsc_known_freq): " +
                'the guest calibrates against the emulated PIT, which fails on a busy host (then 4 ms jiffies)',
          ]
        : []),
    ],
    warnings: accel === 'tcg' ? ['no usable KVM: TCG emulation, results are functional only, not performance-comparable'] : [],
  };
}

/** One lab VM: an SSH Host to drive it, its serial log and its address on the link. */
export class GuestVm {
  constructor(
    readonly role: VmRole,
    readonly host: SshHost,
    readonly serialLog: string,
    readonly linkIp: string,
  ) {}
}

/** The server and client VMs of one VM dir, booted or attached to. */
export class Cluster {
  private constructor(
    readonly dir: string,
    readonly state: ClusterState,
    readonly server: GuestVm,
    readonly client: GuestVm,
  ) {}

  static hostsFor(dir: string, s: ClusterState, keys: LabKeys): { server: GuestVm; client: GuestVm } {
    const w = linkBackendOf(s.link).hostWrapper(s.link);
    const wrapper = w.length ? w : undefined;
    const mk = (role: VmRole) =>
      new GuestVm(
        role,
        new SshHost({
          name: role,
          host: '127.0.0.1',
          port: s.vms[role].sshPort,
          user: 'root',
          identity: keys.identity,
          knownHosts: keys.knownHosts,
          hostKeyAlias: keys.hostAlias,
          wrapper,
          controlPath: sshControlPath(dir, role),
        }),
        s.vms[role].serial,
        LINK_ADDRS[role].split('/')[0]!,
      );
    return { server: mk('server'), client: mk('client') };
  }

  /** Attach to VMs a previous `up` left running in dir. */
  static async attach(dir: string, cacheRoot: string): Promise<Cluster> {
    const s = readState(dir);
    if (!s) throw new LabError(`no VMs in ${dir}`, ExitCode.usage, 'kflex-lab up');
    const dead = (Object.keys(s.vms) as VmRole[]).filter((r) => !qemuPid(s.vms[r].pidfile));
    if (dead.length)
      throw new LabError(`VM(s) ${dead.join(', ')} in ${dir} are not running (state ${s.phase})`, ExitCode.infra, 'kflex-lab down, then kflex-lab up');
    const keys = await labKeys(cacheRoot);
    const h = Cluster.hostsFor(dir, s, keys);
    return new Cluster(dir, s, h.server, h.client);
  }

  /** Probe the host, plan, and start: both VMs boot in parallel until SSH answers in each; torn down on failure. */
  static async up(inp: ClusterInputs): Promise<Cluster> {
    const { profile, dir, bus } = inp;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const prev = readState(dir);
    if (prev) {
      if (!isStale(prev) && (prev.owner === 'up' || pidAlive(prev.labPid)))
        throw new LabError(
          `VMs are already up in ${dir} (owner ${prev.owner}, pid ${prev.labPid})`,
          ExitCode.usage,
          'kflex-lab down (or use another set: --vm NAME)',
        );
      bus.emit({ type: 'step', scope: 'vms', message: `cleaning a stale VM run in ${dir}` });
      await teardownDir(dir);
    }
    const host: ClusterHostFacts = {
      kvm: profile.vms.accel === 'auto' ? await kvmProbe(inp.cacheRoot, inp.kernel) : undefined,
      links: linkAvailability(),
      privileges: await privilegeFacts(),
      tscKhz: await tscFacts(),
    };
    const [server, client, link] = (await freePorts(3)) as [number, number, number];
    const plan = planCluster({
      kernel: inp.kernel,
      dir,
      vms: profile.vms,
      owner: inp.owner,
      labPid: process.pid,
      created: new Date().toISOString(),
      host,
      ports: { server, client, link },
    });
    return Cluster.start(inp, plan);
  }

  /** The side effects of a plan: state.json first, then link, overlays, QEMUs, and the wait for SSH. */
  static async start(inp: Pick<ClusterInputs, 'baseImage' | 'cacheRoot' | 'dir' | 'bus' | 'profile'>, plan: ClusterPlan): Promise<Cluster> {
    const { dir, bus } = inp;
    const { state, specs } = plan;
    const step = (message: string) => bus.emit({ type: 'step', scope: 'vms', message });
    const keys = await labKeys(inp.cacheRoot);
    // Written before anything starts, so a lab killed at any later point leaves a trail to clean up.
    await writeState(dir, state);
    const h = Cluster.hostsFor(dir, state, keys);
    const cluster = new Cluster(dir, state, h.server, h.client);
    const link = linkBackendOf(state.link);
    try {
      for (const w of plan.warnings) bus.emit({ type: 'warn', scope: 'vms', message: w });
      for (const s of plan.steps) step(s);
      await link.setup(state.link, (l) => bus.emit({ type: 'line', stage: 'vms', line: l }));
      for (const spec of [specs.server, specs.client]) {
        // Each run boots a fresh overlay: the base image is never written.
        await rm(spec.disk, { force: true });
        await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', inp.baseImage, spec.disk]);
        await rm(spec.serialLog, { force: true });
      }
      const started = Date.now();
      // The server first: with the socket backend it listens and the client connects.
      for (const spec of [specs.server, specs.client]) await startQemu(spec, link.hostWrapper(state.link));
      step(`booting server (ssh 127.0.0.1:${state.vms.server.sshPort}) and client (ssh 127.0.0.1:${state.vms.client.sshPort})`);
      const timeoutMs = inp.profile.vms.boot_timeout_s * 1000;
      const secs = await Promise.all([
        waitForSsh(cluster.server, state.vms.server.pidfile, timeoutMs),
        waitForSsh(cluster.client, state.vms.client.pidfile, timeoutMs),
      ]);
      step(
        `ssh answers: server ${secs[0]!.toFixed(1)} s, client ${secs[1]!.toFixed(1)} s after start ` +
          `(both booted in parallel, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
      // sshd starts before the rest of the guest's boot (images/customize.sh): the link address comes from
      // kflex-link.service, which may still be running. One round trip each, both at once.
      await Promise.all([waitForLink(cluster.server), waitForLink(cluster.client)]);
      state.phase = 'ready';
      await writeState(dir, state);
      await writeFile(join(dir, 'ssh_config'), sshConfigText(state, keys, dir), { mode: 0o600 });
      return cluster;
    } catch (e) {
      await teardownDir(dir).catch(() => undefined);
      throw e;
    }
  }

  async down(): Promise<void> {
    await teardownDir(this.dir);
  }
}

/** The facts privilegeDrop decides on: this process's uid, QEMU's version, whether QEMU_USER exists. */
async function privilegeFacts(): Promise<NonNullable<ClusterHostFacts['privileges']>> {
  const euid = process.geteuid?.() ?? -1;
  if (euid !== 0) return { euid, userExists: false };
  const v = await run(['qemu-system-x86_64', '--version'], { allowFailure: true, timeoutMs: 30_000 });
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  return { euid, qemuVersion: parseQemuVersion(v.stdout), userExists: passwd.split('\n').some((l) => l.startsWith(`${QEMU_USER}:`)) };
}

/** The host's TSC frequency from its kernel log or /proc/cpuinfo (vm/clock.ts); undefined when neither says. */
async function tscFacts(): Promise<number | undefined> {
  const dmesg = await run(['dmesg'], { allowFailure: true, timeoutMs: 15_000 }).catch(() => ({ stdout: '' }));
  return hostTscKhz(dmesg.stdout, await readFile('/proc/cpuinfo', 'utf8').catch(() => ''));
}

async function startQemu(spec: VmSpec, wrapper: string[]): Promise<void> {
  const config = qemuConfig(spec);
  if (wrapper.length) {
    // node-qemu spawns only `binary args`, so a wrapped QEMU (e.g. inside the tap link's namespace) runs
    // from an argv built from the same config.
    await run([...wrapper, 'qemu-system-x86_64', ...buildArgs(config)], { timeoutMs: 60_000 });
    return;
  }
  const proc = new QemuProcess({ binary: 'qemu-system-x86_64', config });
  const stderr: string[] = [];
  proc.on('stderr', (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  await proc.start();
  // -daemonize: the parent exits once the VM runs; a non-zero exit means QEMU refused the configuration.
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 60_000)))]);
  clearTimeout(timer);
  if (code !== 0)
    throw new LabError(
      `qemu for ${spec.role} ${code === 'timeout' ? 'did not daemonize within 60 s' : `exited ${code}`}: ${stderr.join('').trim()}`,
      ExitCode.infra,
    );
}

/** The guest's end of the experiment link has its address (kflex-link.service ran), within 60 s. */
export const LINK_WAIT_SCRIPT = 'for i in $(seq 1 600); do ip -4 -o addr show dev "$1" | grep -q " inet $2/" && exit 0; sleep 0.1; done; exit 1';

async function waitForLink(vm: GuestVm): Promise<void> {
  const r = await vm.host.exec(['sh', '-c', LINK_WAIT_SCRIPT, 'link', LINK_IF, vm.linkIp], { allowFailure: true, timeoutMs: 90_000 });
  if (r.code === 0) return;
  const status = await vm.host.exec(['systemctl', 'status', '--no-pager', '-n', '10', 'kflex-link.service'], { allowFailure: true, timeoutMs: 30_000 });
  throw new LabError(
    `the ${vm.role} VM's ${LINK_IF} did not get ${vm.linkIp} within 60 s ` +
      `(kflex-link.service sets it from the kernel command line):\n${status.stdout
        .trim()
        .split('\n')
        .map((l) => `  | ${l}`)
        .join('\n')}`,
    ExitCode.infra,
  );
}

/** Poll SSH until it answers; fail early when QEMU dies, and with the serial log's tail on timeout. */
async function waitForSsh(vm: GuestVm, pidfile: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const tail = async () => `last serial lines:\n${(await readSerialTail(vm.serialLog, 50)).map((l) => `  | ${l}`).join('\n')}\n  serial log: ${vm.serialLog}`;
  // A connection the guest's ssh.socket has accepted waits for sshd to start (seconds under TCG): give it
  // that time instead of dropping it after 5 s and starting over with a new key exchange.
  const t = vm.host.target;
  const probe = new SshHost({ ...t, options: { ...t.options, ConnectTimeout: '20' } });
  try {
    await retry(
      async () => {
        const r = await probe.exec(['true'], { timeoutMs: 30_000, allowFailure: true }).catch((e: unknown) => ({ code: 255, stderr: String(e) }));
        return r.code === 0 ? { done: true, value: undefined } : { done: false, why: r.stderr.trim().split('\n').at(-1) };
      },
      { timeoutMs, intervalMs: 1000, what: `${vm.role} VM SSH`, abort: () => (qemuPid(pidfile) ? undefined : 'QEMU exited') },
    );
    return (Date.now() - started) / 1000;
  } catch (e) {
    if (e instanceof RetryAborted) throw new LabError(`${vm.role} VM exited during boot; ${await tail()}`, ExitCode.infra);
    if (e instanceof RetryTimeout)
      throw new LabError(
        `${vm.role} VM did not answer SSH within ${timeoutMs / 1000} s (vms.boot_timeout_s)${e.lastWhy ? `; ssh said: ${e.lastWhy}` : ''}; ${await tail()}`,
        ExitCode.infra,
      );
    throw e;
  }
}

/**
 * Pure: an ssh_config so users can `ssh -F <dir>/ssh_config server` (or Include it in ~/.ssh/config). With
 * the VM dir, their ssh shares the lab's connection to each VM (no new key exchange under emulation).
 */
export function sshConfigText(s: ClusterState, keys: LabKeys, dir?: string): string {
  const proxy = linkBackendOf(s.link).sshProxyCommand(s.link);
  const blocks = (Object.keys(s.vms) as VmRole[]).map((role) => {
    const control = dir ? sshControlPath(dir, role) : undefined;
    return [
      `Host ${role}`,
      '  HostName 127.0.0.1',
      `  Port ${s.vms[role].sshPort}`,
      '  User root',
      `  IdentityFile ${keys.identity}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${keys.knownHosts}`,
      `  HostKeyAlias ${keys.hostAlias}`,
      '  StrictHostKeyChecking yes',
      ...(proxy ? [`  ProxyCommand ${proxy}`] : []),
      ...(control ? ['  ControlMaster auto', `  ControlPath ${control}`, `  ControlPersist ${CONTROL_PERSIST_S}`] : []),
    ].join('\n');
  });
  return `${blocks.join('\n\n')}\n`;
}
