import { mkdir, chmod, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { QemuProcess, buildArgs } from 'node-qemu';
import type { Profile } from '../core/config.js';
import type { EventBus } from '../core/events.js';
import { run } from '../core/exec.js';
import { SshHost } from '../core/ssh.js';
import { labKeys, type LabKeys } from '../core/keys.js';
import { kvmUsable } from '../core/doctor.js';
import { LabError, ExitCode } from '../core/errors.js';
import { pidAlive } from '../core/stage.js';
import { qemuConfig, LINK_ADDRS, MACS, type VmSpec, type VmRole, type Accel } from './spec.js';
import { chooseLink, hostLinkFacts, setupTapLink, tapNames } from './link.js';
import { readState, writeState, teardownDir, freePort, qemuPid, isStale, readSerialTail, type ClusterState } from './state.js';

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

/** One lab VM: its spec and an SSH Host to drive it. */
export class GuestVm {
  constructor(readonly role: VmRole, readonly host: SshHost, readonly serialLog: string, readonly linkIp: string) {}
}
export class ServerVm extends GuestVm {}
export class ClientVm extends GuestVm {}

/** The server and client VMs of one VM dir, booted or attached to. */
export class Cluster {
  private constructor(readonly dir: string, readonly state: ClusterState, readonly server: ServerVm, readonly client: ClientVm) {}

  static hostsFor(dir: string, s: ClusterState, keys: LabKeys): { server: ServerVm; client: ClientVm } {
    const wrapper = s.link.netns ? ['ip', 'netns', 'exec', s.link.netns] : undefined;
    const mk = (role: VmRole) =>
      new SshHost({ name: role, host: '127.0.0.1', port: s.vms[role].sshPort, user: 'root', identity: keys.identity, knownHosts: keys.knownHosts, hostKeyAlias: keys.hostAlias, wrapper });
    return {
      server: new ServerVm('server', mk('server'), s.vms.server.serial, LINK_ADDRS.server.split('/')[0]!),
      client: new ClientVm('client', mk('client'), s.vms.client.serial, LINK_ADDRS.client.split('/')[0]!),
    };
  }

  /** Attach to VMs a previous `up` left running in dir. */
  static async attach(dir: string, cacheRoot: string): Promise<Cluster> {
    const s = readState(dir);
    if (!s) throw new LabError(`no VMs in ${dir}; run 'kflex-lab up' first`, ExitCode.usage);
    const dead = (Object.keys(s.vms) as VmRole[]).filter((r) => !qemuPid(s.vms[r].pidfile));
    if (dead.length) throw new LabError(`VM(s) ${dead.join(', ')} in ${dir} are not running (state ${s.phase}); run 'kflex-lab down' then 'kflex-lab up'`, ExitCode.infra);
    const keys = await labKeys(cacheRoot);
    const h = Cluster.hostsFor(dir, s, keys);
    return new Cluster(dir, s, h.server, h.client);
  }

  /** Boot both VMs in parallel and wait until SSH answers in each; tears everything down on failure. */
  static async up(inp: ClusterInputs): Promise<Cluster> {
    const { profile, dir, bus } = inp;
    const step = (message: string) => bus.emit({ type: 'step', scope: 'vms', message });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const prev = readState(dir);
    if (prev) {
      if (!isStale(prev) && (prev.owner === 'up' || pidAlive(prev.labPid)))
        throw new LabError(`VMs are already up in ${dir} (owner ${prev.owner}, pid ${prev.labPid}); run 'kflex-lab down' first`, ExitCode.usage);
      step(`cleaning a stale VM run in ${dir}`);
      await teardownDir(dir);
    }
    const keys = await labKeys(inp.cacheRoot);
    const accel: Accel = profile.vms.accel === 'auto' ? ((await kvmUsable(inp.kernel)).ok ? 'kvm' : 'tcg') : profile.vms.accel;
    if (accel === 'tcg') bus.emit({ type: 'warn', scope: 'vms', message: 'no usable KVM: TCG emulation, results are functional only, not performance-comparable' });
    const link = chooseLink(profile.vms.link.backend, { ...hostLinkFacts(), ipTool: true });
    const tag = String(process.pid % 100000);
    const queues = link.backend === 'tap' ? Math.max(profile.vms.server.cpus, profile.vms.client.cpus) : 1;
    const linkPort = link.backend === 'socket' ? await freePort() : undefined;
    const names = tapNames(tag);
    const state: ClusterState = {
      owner: inp.owner,
      labPid: process.pid,
      phase: 'booting',
      created: new Date().toISOString(),
      accel,
      link: link.backend === 'tap' ? { backend: 'tap', netns: names.netns, bridge: names.bridge, taps: [...names.taps], queues, vhost: link.vhost } : { backend: 'socket', port: linkPort },
      vms: {} as ClusterState['vms'],
    };
    const specs: VmSpec[] = [];
    for (const role of ['server', 'client'] as const) {
      const size = profile.vms[role];
      const spec: VmSpec = {
        role, cpus: size.cpus, memoryMb: size.memory_mb, accel, kernel: inp.kernel,
        disk: join(dir, `${role}.qcow2`), sshPort: await freePort(), mgmtMac: MACS[role].mgmt, linkMac: MACS[role].link,
        linkAddr: LINK_ADDRS[role], mtu: profile.vms.link.mtu,
        link: link.backend === 'tap' ? { kind: 'tap', ifname: names.taps[role === 'server' ? 0 : 1], queues, vhost: link.vhost } : { kind: 'socket', role: role === 'server' ? 'listen' : 'connect', port: linkPort! },
        serialLog: join(dir, `${role}.serial.log`), qmpSocket: join(dir, `${role}.qmp`), pidfile: join(dir, `${role}.pid`),
      };
      state.vms[role] = { pidfile: spec.pidfile, qmp: spec.qmpSocket, serial: spec.serialLog, sshPort: spec.sshPort, disk: spec.disk };
      specs.push(spec);
    }
    // Written before anything starts, so a lab killed at any later point leaves a trail to clean up.
    await writeState(dir, state);
    const h = Cluster.hostsFor(dir, state, keys);
    const cluster = new Cluster(dir, state, h.server, h.client);
    try {
      step(`accel ${accel}, link ${link.why}${link.backend === 'tap' ? `, ${queues} queue(s)` : ''}`);
      if (link.backend === 'tap') await setupTapLink(tag, queues, profile.vms.link.mtu, (l) => bus.emit({ type: 'line', stage: 'vms', line: l }));
      for (const spec of specs) {
        // Each run boots a fresh overlay: the base image is never written.
        await rm(spec.disk, { force: true });
        await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', inp.baseImage, spec.disk]);
        await rm(spec.serialLog, { force: true });
      }
      const started = Date.now();
      // The server first: with the socket backend it listens and the client connects.
      for (const spec of specs) await startQemu(spec, state.link.netns);
      step(`booting server (ssh 127.0.0.1:${state.vms.server.sshPort}) and client (ssh 127.0.0.1:${state.vms.client.sshPort})`);
      const timeoutMs = profile.vms.boot_timeout_s * 1000;
      const secs = await Promise.all([waitForSsh(cluster.server, state.vms.server.pidfile, timeoutMs), waitForSsh(cluster.client, state.vms.client.pidfile, timeoutMs)]);
      step(`ssh answers: server ${secs[0]!.toFixed(1)} s, client ${secs[1]!.toFixed(1)} s after start (both booted in parallel, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      state.phase = 'ready';
      await writeState(dir, state);
      await writeSshConfig(dir, state, keys);
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

async function startQemu(spec: VmSpec, netns?: string): Promise<void> {
  const config = qemuConfig(spec);
  if (netns) {
    // With the tap backend QEMU must open its taps inside the lab's namespace; node-qemu spawns only
    // `binary args`, so the netns prefix goes on an argv built from the same config.
    await run(['ip', 'netns', 'exec', netns, 'qemu-system-x86_64', ...buildArgs(config)], { timeoutMs: 60_000 });
    return;
  }
  const proc = new QemuProcess({ binary: 'qemu-system-x86_64', config });
  const stderr: string[] = [];
  proc.on('stderr', (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  await proc.start();
  // -daemonize: the parent exits once the VM runs; a non-zero exit means QEMU refused the configuration.
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
  if (code !== 0) throw new LabError(`qemu for ${spec.role} ${code === 'timeout' ? 'did not daemonize within 60 s' : `exited ${code}`}: ${stderr.join('').trim()}`, ExitCode.infra);
}

/** Poll SSH until it answers; fail early when QEMU dies, and with the serial log's tail on timeout. */
async function waitForSsh(vm: GuestVm, pidfile: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (!existsSync(pidfile) || !qemuPid(pidfile)) {
      throw new LabError(`${vm.role} VM exited during boot; last serial lines:\n${(await readSerialTail(vm.serialLog, 50)).map((l) => '  | ' + l).join('\n')}\n  serial log: ${vm.serialLog}`, ExitCode.infra);
    }
    const r = await vm.host.exec(['true'], { timeoutMs: 15_000, allowFailure: true }).catch(() => ({ code: 255 }));
    if (r.code === 0) return (Date.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new LabError(`${vm.role} VM did not answer SSH within ${timeoutMs / 1000} s (vms.boot_timeout_s); last serial lines:\n${(await readSerialTail(vm.serialLog, 50)).map((l) => '  | ' + l).join('\n')}\n  serial log: ${vm.serialLog}`, ExitCode.infra);
}

/** An ssh_config so users can `ssh -F <dir>/ssh_config server` (or Include it in ~/.ssh/config). */
async function writeSshConfig(dir: string, s: ClusterState, keys: LabKeys): Promise<void> {
  const blocks = (Object.keys(s.vms) as VmRole[]).map((role) =>
    [
      `Host ${role}`,
      '  HostName 127.0.0.1',
      `  Port ${s.vms[role].sshPort}`,
      '  User root',
      `  IdentityFile ${keys.identity}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${keys.knownHosts}`,
      `  HostKeyAlias ${keys.hostAlias}`,
      '  StrictHostKeyChecking yes',
      ...(s.link.netns ? [`  ProxyCommand ip netns exec ${s.link.netns} nc 127.0.0.1 %p`] : []),
    ].join('\n'),
  );
  await writeFile(join(dir, 'ssh_config'), blocks.join('\n\n') + '\n', { mode: 0o600 });
}
