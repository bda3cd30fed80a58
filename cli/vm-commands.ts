import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { ExitCode } from '../core/errors.js';
import { sshArgv } from '../core/ssh.js';
import { configFrom, globalOpts } from './common.js';

// lab/vms.js (QEMU, the link, the testbed) loads when a VM verb runs, not for --help or a build.
const vms = () => import('../lab/vms.js');

export function registerVmCommands(program: Command): void {
  const dirOpt = ['--vm <name>', 'which set of VMs (default: $KFLEX_LAB_VM or "default"); each lives in <cache>/vms/<name>'] as const;
  const cleaned = (dirs: string[]) => {
    for (const d of dirs) console.error(`cleaned a stale VM set (its lab process is gone): ${d}`);
  };

  program
    .command('up')
    .description(
      'build what is missing, boot the server and client VMs (KVM, else TCG) on the experiment link, wait for SSH, check native XDP, print how to connect',
    )
    .option(...dirOpt)
    .action(async (o: { vm?: string }, cmd: Command) => {
      const { up } = await vms();
      const r = await up(configFrom(cmd), { vm: o.vm, eventsFile: globalOpts(cmd).events });
      console.log(`VMs up in ${r.dir} (accel ${r.accel}, link ${r.link})`);
      console.log(`native XDP check: mode ${r.xdp.mode}, sent ${r.xdp.sent}, counted ${r.xdp.counted}`);
      console.log(`  server: kflex-lab ssh server   | ssh -F ${r.sshConfig} server   (link ${r.server.linkIp})`);
      console.log(`  client: kflex-lab ssh client   | ssh -F ${r.sshConfig} client   (link ${r.client.linkIp})`);
      console.log('  stop:   kflex-lab down');
    });

  program
    .command('down')
    .description('stop the VMs (QMP quit, then SIGTERM, then SIGKILL) and remove their overlays, taps, bridge and namespace')
    .option(...dirOpt)
    .action(async (o: { vm?: string }, cmd: Command) => {
      const { down } = await vms();
      const r = await down(configFrom(cmd), { vm: o.vm, log: (m) => console.error(m) });
      cleaned(r.staleCleaned);
      console.log(r.stopped ? `VMs in ${r.dir} stopped and removed` : `no VMs in ${r.dir}`);
    });

  program
    .command('status')
    .description('show the VMs of a VM directory: pids, SSH ports, link, accelerator, stale runs')
    .option(...dirOpt)
    .action(async (o: { vm?: string }, cmd: Command) => {
      const { status } = await vms();
      const r = await status(configFrom(cmd), { vm: o.vm });
      cleaned(r.staleCleaned);
      const s = r.state;
      if (!s) return console.log(`no VMs in ${r.dir}`);
      console.log(
        `${r.dir}: ${s.phase}${s.stale ? ' (STALE: its lab process is gone; the next command cleans it)' : ''}, ` +
          `owner ${s.owner}, accel ${s.accel}, link ` +
          `${s.link}${s.resources.length ? ` (${s.resources.join(', ')})` : ''}`,
      );
      for (const v of s.vms) console.log(`  ${v.role.padEnd(7)} pid ${v.pid ?? 'not running'}  ssh 127.0.0.1:${v.sshPort}  serial ${v.serial}`);
    });

  program
    .command('ssh')
    .description('open an interactive shell on a VM (server or client) with the lab key and pinned host key')
    .argument('<vm>', 'server | client')
    .option(...dirOpt)
    .action(async (vm: string, o: { vm?: string }, cmd: Command) => {
      const { guest } = await vms();
      const host = await guest(configFrom(cmd), { vm: o.vm }, vm);
      const argv = sshArgv(host.target, [], { tty: true });
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
      const { guest } = await vms();
      const host = await guest(configFrom(cmd), { vm: o.vm }, vm);
      const r = await host.exec(argv, { allowFailure: true, onLine: (l) => console.log(l) });
      process.exitCode = r.code === 0 ? 0 : ExitCode.checkFailed;
    });
}
