import { EXPERIMENTS } from '../experiments/index.js';
import { join } from 'node:path';
import type { ResolvedConfig } from '../core/config.js';
import type { Host } from '../core/host.js';
import type { Accel, VmAccel } from '../core/accel.js';
import type { SshTarget } from '../core/ssh.js';
import { LabError, ExitCode } from '../core/errors.js';
import { EventBus, recordEvents } from '../core/events.js';
import { attachView } from '../core/progress.js';
import { VmTestbed } from '../vm/testbed.js';
import { describeLink, linkHostResources } from '../vm/link/index.js';
import { readState, qemuPid, isStale, cleanStaleVms, teardownDir } from '../vm/state.js';
import { onInterrupt } from './signals.js';
import { buildTargets, testbedArtifacts } from './stages.js';
import { TESTBEDS } from './testbeds.js';
import { sizeServer, sizedConfig, thisHost } from './sizing.js';
import { planCells } from '../experiments/cells.js';

/**
 * VMs live in named directories under <cache>/vms, so any lab process can find stale ones and clean them
 * up (sockets, pid files, overlays, serial logs, ssh_config; 0700).
 */
export function vmDir(config: ResolvedConfig, name?: string): string {
  const n = name ?? process.env.KFLEX_LAB_VM ?? 'default';
  if (!/^[A-Za-z0-9._-]+$/.test(n)) throw new LabError(`--vm ${n}: a VM set name is letters, digits, '.', '_' or '-'`, ExitCode.usage);
  return join(config.cacheRoot, 'vms', n);
}

export interface UpResult {
  dir: string;
  accel: Accel;
  link: string;
  xdp: { mode: string; sent: number; counted: number };
  server: { linkIp: string };
  client: { linkIp: string };
  sshConfig: string;
}

/** Build what is missing, boot the VMs (they stay until `down`), prove native XDP; Ctrl-C while booting stops them. */
export async function up(config: ResolvedConfig, o: { vm?: string; eventsFile?: string }): Promise<UpResult> {
  const bus = new EventBus();
  const detach = [attachView(bus), ...(o.eventsFile ? [recordEvents(bus, o.eventsFile)] : [])];
  const dir = vmDir(config, o.vm);
  const stop = onInterrupt(async (sig) => {
    bus.emit({ type: 'warn', scope: 'vms', message: `${sig}: stopping the VMs in ${dir}` });
    await teardownDir(dir);
  });
  try {
    const provider = TESTBEDS.vm!;
    const t0 = Date.now();
    const outputs = await buildTargets(config, provider.targets, bus);
    const artifacts = testbedArtifacts(outputs);
    const accel = await provider.accel(config, artifacts);
    bus.emit({ type: 'accel', ...accel });
    const sizing = sizeServer(config.profile, thisHost(accel.accel === 'kvm'), planCells(config.profile, {}, EXPERIMENTS));
    if (config.profile.vms.server.memory_mb === 'auto')
      bus.emit({ type: 'step', scope: 'vms', message: `server VM: ${(sizing.memoryMb / 1024).toFixed(1)} GiB (${sizing.why})` });
    const t = (await provider.up({ config: sizedConfig(config, sizing.memoryMb), artifacts, accel: accel.accel, dir, owner: 'up', bus })) as VmTestbed;
    bus.emit({ type: 'testbed-up', kind: t.kind, accel: t.accel, link: t.link.describe, nativeXdp: t.link.nativeXdp, seconds: (Date.now() - t0) / 1000 });
    const x = t.xdp!;
    return {
      dir,
      accel: t.accel,
      link: t.link.describe,
      xdp: { mode: x.mode, sent: x.sent, counted: x.counted },
      server: { linkIp: t.link.serverIp },
      client: { linkIp: t.link.clientIp },
      sshConfig: join(dir, 'ssh_config'),
    };
  } finally {
    stop();
    for (const d of detach) d();
  }
}

/** Stop a VM set; returns false when there was none. Stale sets elsewhere are cleaned on the way. */
export async function down(
  config: ResolvedConfig,
  o: { vm?: string; log?: (m: string) => void },
): Promise<{ dir: string; stopped: boolean; staleCleaned: string[] }> {
  const dir = vmDir(config, o.vm);
  const staleCleaned = await cleanStaleVms(config.cacheRoot);
  if (!readState(dir)) return { dir, stopped: false, staleCleaned };
  await teardownDir(dir, o.log);
  return { dir, stopped: true, staleCleaned };
}

export interface VmStatus {
  dir: string;
  staleCleaned: string[];
  state?: {
    phase: string;
    stale: boolean;
    owner: string;
    accel: VmAccel;
    link: string;
    resources: string[];
    vms: Array<{ role: string; pid?: number; sshPort: number; serial: string }>;
  };
}

export async function status(config: ResolvedConfig, o: { vm?: string }): Promise<VmStatus> {
  const dir = vmDir(config, o.vm);
  const staleCleaned = await cleanStaleVms(config.cacheRoot);
  const s = readState(dir);
  if (!s) return { dir, staleCleaned };
  return {
    dir,
    staleCleaned,
    state: {
      phase: s.phase,
      stale: isStale(s),
      owner: s.owner,
      accel: s.accel,
      link: describeLink(s.link),
      resources: linkHostResources(s.link),
      vms: Object.entries(s.vms).map(([role, v]) => ({ role, pid: qemuPid(v.pidfile), sshPort: v.sshPort, serial: v.serial })),
    },
  };
}

/** One VM of a running set, to run a command on or log into. */
export async function guest(config: ResolvedConfig, o: { vm?: string }, role: string): Promise<Host & { target: SshTarget }> {
  if (role !== 'server' && role !== 'client') throw new LabError(`unknown VM '${role}': use server or client`, ExitCode.usage);
  const t = await VmTestbed.attach(vmDir(config, o.vm), config.cacheRoot, config.profile);
  return role === 'server' ? t.cluster.server.host : t.cluster.client.host;
}

/** Stale VM sets (their lab process died), or every set with all. */
export async function cleanVms(config: ResolvedConfig, o: { all: boolean }): Promise<string[]> {
  return cleanStaleVms(config.cacheRoot, o);
}
