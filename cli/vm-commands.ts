import type { Command } from 'commander';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { ResolvedConfig } from '../core/config.js';
import type { StageOutput } from '../core/stage.js';
import { EventBus } from '../core/events.js';
import { attachView } from '../core/progress.js';
import { LabError, ExitCode } from '../core/errors.js';
import { sshArgv } from '../core/ssh.js';
import { Cluster } from '../vm/cluster.js';
import { checkNativeXdp, type XdpCheckResult } from '../vm/xdp-check.js';
import { readState, qemuPid, isStale, cleanStaleVms, teardownDir } from '../vm/state.js';
import { buildTargets, configFrom, interruption } from './common.js';

/**
 * VMs live in named directories under <cache>/vms, so any lab process can find stale ones and clean
 * them up (sockets, pid files, overlays, serial logs, ssh_config; 0700).
 */
export function vmDir(config: ResolvedConfig, name?: string): string {
  const n = name ?? process.env.KFLEX_LAB_VM ?? 'default';
  if (!/^[A-Za-z0-9._-]+$/.test(n)) throw new LabError(`--vm ${n}: a VM set name is letters, digits, '.', '_' or '-'`, ExitCode.usage);
  return join(config.cacheRoot, 'vms', n);
}

/** Boot server + client from the stage outputs and run the native-XDP check; the cluster is torn down on failure. */
export async function bootCluster(config: ResolvedConfig, outputs: Record<string, StageOutput>, dir: string, owner: 'up' | 'run', bus: EventBus): Promise<{ cluster: Cluster; xdp: XdpCheckResult }> {
  for (const d of await cleanStaleVms(config.cacheRoot)) bus.emit({ type: 'step', scope: 'vms', message: `cleaned a stale VM set (its lab process is gone): ${d}` });
  const cluster = await Cluster.up({
    kernel: join(outputs.kernel!.dir, 'bzImage'),
    baseImage: join(outputs.image!.dir, 'base.qcow2'),
    profile: config.profile,
    cacheRoot: config.cacheRoot,
    dir,
    owner,
    bus,
  });
  try {
    const xdp = await checkNativeXdp(cluster.server, cluster.client, join(outputs.llvm!.dir, 'xdp_probe.bpf.o'));
    bus.emit({ type: 'step', scope: 'xdp', message: `mode ${xdp.mode}, UDP port ${xdp.port}: sent ${xdp.sent}, counted ${xdp.counted}; other counters: ${xdp.other.map((o) => `${o.proto === 0xffff ? 'eth' : o.proto}/${o.port}=${o.count}`).join(' ') || 'none'}` });
    for (const w of xdp.warnings) bus.emit({ type: 'warn', scope: 'xdp', message: w });
    if (xdp.counted !== xdp.sent) throw new LabError(`native XDP check: sent ${xdp.sent} UDP packets to port ${xdp.port}, the probe counted ${xdp.counted}`, ExitCode.infra);
    return { cluster, xdp };
  } catch (e) {
    await cluster.down();
    throw e;
  }
}

export function registerVmCommands(program: Command): void {
  const dirOpt = ['--vm <name>', 'which set of VMs (default: $KFLEX_LAB_VM or "default"); each lives in <cache>/vms/<name>'] as const;

  program
    .command('up')
    .description('build what is missing, boot the server and client VMs (KVM, else TCG) on the experiment link, wait for SSH, check native XDP, print how to connect')
    .option(...dirOpt)
    .action(async (o: { vm?: string }, cmd: Command) => {
      const config = configFrom(cmd);
      const outputs = await buildTargets(config, ['llvm', 'kernel', 'image']);
      const bus = new EventBus();
      const detach = attachView(bus);
      const dir = vmDir(config, o.vm);
      // Ctrl-C or SIGTERM while booting: stop what was started instead of leaving it to the next command.
      const stop = teardownOnSignal(dir);
      try {
        const { cluster, xdp } = await bootCluster(config, outputs, dir, 'up', bus);
        stop();
        detach();
        const s = cluster.state;
        console.log(`VMs up in ${dir} (accel ${s.accel}, link ${s.link.backend})`);
        console.log(`native XDP check: mode ${xdp.mode}, sent ${xdp.sent}, counted ${xdp.counted}`);
        console.log(`  server: kflex-lab ssh server   | ssh -F ${join(dir, 'ssh_config')} server   (link ${cluster.server.linkIp})`);
        console.log(`  client: kflex-lab ssh client   | ssh -F ${join(dir, 'ssh_config')} client   (link ${cluster.client.linkIp})`);
        console.log('  stop:   kflex-lab down');
      } finally {
        stop();
        detach();
      }
    });

  program
    .command('down')
    .description('stop the VMs (QMP quit, then SIGTERM, then SIGKILL) and remove their overlays, taps, bridge and namespace')
    .option(...dirOpt)
    .action(async (o: { vm?: string }, cmd: Command) => {
      const config = configFrom(cmd);
      const dir = vmDir(config, o.vm);
      await reportCleaned(await cleanStaleVms(config.cacheRoot));
      if (!readState(dir)) {
        console.log(`no VMs in ${dir}`);
        return;
      }
      await teardownDir(dir, (m) => console.error(m));
      console.log(`VMs in ${dir} stopped and removed`);
    });

  program
    .command('status')
    .description('show the VMs of a VM directory: pids, SSH ports, link, accelerator, stale runs')
    .option(...dirOpt)
    .action(async (o: { vm?: string }, cmd: Command) => {
      const config = configFrom(cmd);
      const dir = vmDir(config, o.vm);
      await reportCleaned(await cleanStaleVms(config.cacheRoot));
      const s = readState(dir);
      if (!s) {
        console.log(`no VMs in ${dir}`);
        return;
      }
      console.log(`${dir}: ${s.phase}${isStale(s) ? ' (STALE: its lab process is gone; the next command cleans it)' : ''}, owner ${s.owner}, accel ${s.accel}, link ${s.link.backend}${s.link.netns ? ` (netns ${s.link.netns})` : ''}`);
      for (const [role, v] of Object.entries(s.vms)) console.log(`  ${role.padEnd(7)} pid ${qemuPid(v.pidfile) ?? 'not running'}  ssh 127.0.0.1:${v.sshPort}  serial ${v.serial}`);
    });

  program
    .command('ssh')
    .description('open an interactive shell on a VM (server or client) with the lab key and pinned host key')
    .argument('<vm>', 'server | client')
    .option(...dirOpt)
    .action(async (vm: string, o: { vm?: string }, cmd: Command) => {
      const config = configFrom(cmd);
      const cluster = await Cluster.attach(vmDir(config, o.vm), config.cacheRoot);
      const target = pick(cluster, vm).host.target;
      const argv = sshArgv(target, [], { tty: true });
      const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
      process.exitCode = r.status ?? ExitCode.infra;
    });

  program
    .command('exec')
    .description('run a command on a VM and stream its output, e.g. kflex-lab exec server -- ip -d link show')
    .argument('<vm>', 'server | client')
    .argument('<cmd...>', 'the command (after --)')
    .option(...dirOpt)
    .action(async (vm: string, argv: string[], o: { vm?: string }, cmd: Command) => {
      const config = configFrom(cmd);
      const cluster = await Cluster.attach(vmDir(config, o.vm), config.cacheRoot);
      const r = await pick(cluster, vm).host.exec(argv, { allowFailure: true, onLine: (l) => console.log(l) });
      process.exitCode = r.code === 0 ? 0 : ExitCode.checkFailed;
    });
}

/** Tear a VM dir down on SIGINT/SIGTERM, then exit 130/143; returns the function that removes the handlers. */
export function teardownOnSignal(dir: string, hint?: string): () => void {
  let fired = false;
  const handler = (sig: NodeJS.Signals) => {
    if (fired) return;
    fired = true;
    interruption.active = true;
    console.error(`\nkflex-lab: ${sig}: stopping the VMs in ${dir}${hint ? `; ${hint}` : ''}`);
    void teardownDir(dir).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

async function reportCleaned(dirs: string[]): Promise<void> {
  for (const d of dirs) console.error(`cleaned a stale VM set (its lab process is gone): ${d}`);
}

function pick(cluster: Cluster, vm: string) {
  if (vm === 'server') return cluster.server;
  if (vm === 'client') return cluster.client;
  throw new LabError(`unknown VM '${vm}': use server or client`, ExitCode.usage);
}
