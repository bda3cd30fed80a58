import type { Command } from 'commander';
import { ExitCode } from '../core/errors.js';
import { configFrom, globalOpts } from './common.js';
import { printChecks } from './checks.js';

// The hosts verbs' code loads when one runs, not at every start of the CLI.
const hostsLab = () => import('../lab/hosts.js');
const cloudlabLab = () => import('../lab/cloudlab.js');

const testbedOpt = [
  '--testbed <file>',
  'hosts.yaml: server and client as OpenSSH destinations, their link NIC (see README, "Bare metal / your own machines"); ' +
    "default: the profile's testbed: section (e.g. --profile paper-cloudlab)",
] as const;

/** What --undo stopped (the lab's own processes still running) and removed, per host. */
function printUndo(r: Array<{ host: string; stopped: string[]; removed: string[]; failed: string[] }>): void {
  for (const h of r)
    console.log(
      `${h.host}: ${h.stopped.length ? `stopped the lab's ${h.stopped.join(', ')}; ` : ''}` +
        `removed ${h.removed.length ? h.removed.join(' ') : 'nothing'}${h.failed.length ? `; could not remove ${h.failed.join(' ')}` : ''}`,
    );
}

export function registerHostsCommands(program: Command): void {
  const hosts = program.command('hosts').description('your own machines as the testbed, over OpenSSH: check them, prepare them; then reproduce --testbed FILE');
  registerCloudlabCommands(hosts);

  hosts
    .command('check')
    .description(
      'read-only doctor over SSH: kernel, KFlex heap map in BTF, la57, RAM vs the heaps, CPUs, ' +
        "the link NIC's driver and native XDP (the lab's probe, attached in driver mode and " +
        'detached), the binaries the experiments need, clock offset; one install line per host',
    )
    .option(...testbedOpt)
    .option('--json', 'machine-readable output')
    .action(async (o: { testbed?: string; json?: boolean }, cmd: Command) => {
      const config = configFrom(cmd);
      const r = await (await hostsLab()).hostsCheck(config, o.testbed, { eventsFile: globalOpts(cmd).events });
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else {
        printChecks(r.checks);
        const lines = Object.entries(r.install);
        const prepare = `kflex-lab hosts prepare ${o.testbed ? `--testbed ${o.testbed}` : `--profile ${config.profileName}`}`;
        if (lines.length) console.log(`\nto install what is missing (or: ${prepare}):\n${lines.map(([h, l]) => `  ${h}: ${l}`).join('\n')}`);
      }
      if (!r.ok) process.exitCode = ExitCode.checkFailed;
    });

  hosts
    .command('prepare')
    .description(
      "install what the experiments need with each host's package manager, copy the kflex " +
        "stage's build where the host runs its suite; every change is recorded (--list) and can be " +
        'undone (--undo)',
    )
    .option(...testbedOpt)
    .option('--dry-run', 'print what would be done, change nothing')
    .option('--list', 'print what prepare installed on each host (from <cache>/hosts/<name>/installed.json)')
    .option('--undo', 'remove what prepare installed (packages it added, files it copied)')
    .option('--json', 'machine-readable output')
    .action(async (o: { testbed?: string; dryRun?: boolean; list?: boolean; undo?: boolean; json?: boolean }, cmd: Command) => {
      const config = configFrom(cmd);
      const say = (l: string) => console.error(l);
      const lab = await hostsLab();
      if (o.list) {
        const records = lab.hostsPrepared(config, o.testbed);
        if (o.json) return console.log(JSON.stringify(records, null, 2));
        for (const r of records) {
          console.log(`${r.role} (${r.destination}): ${r.entries.length ? '' : 'nothing recorded'}${r.entries.length ? r.path : ''}`);
          for (const e of r.entries) console.log(`  ${e.at}  ${e.kind === 'apt' ? `apt: ${e.installed.join(' ')}` : `file: ${e.path}`}`);
        }
        return;
      }
      if (o.undo) {
        const r = await lab.hostsUndo(config, o.testbed, say);
        if (o.json) console.log(JSON.stringify(r, null, 2));
        else printUndo(r);
        if (r.some((h) => h.failed.length)) process.exitCode = ExitCode.checkFailed;
        return;
      }
      const r = await lab.hostsPrepare(config, o.testbed, { dryRun: o.dryRun, log: say });
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else {
        for (const [role, why] of Object.entries(r.unreachable)) console.log(`${role}: unreachable: ${why}`);
        if (!r.steps.length && !Object.keys(r.unreachable).length) console.log('nothing to do: both hosts have what the experiments need');
        for (const s of r.steps) {
          const done = r.outcomes.find((x) => x.step === s);
          console.log(
            `${s.host.padEnd(6)} ${s.kind.padEnd(10)} ` +
              `${s.detail}${done ? `\n${''.padEnd(18)}-> ${done.ok ? 'done' : 'FAILED'}: ${done.detail}` : o.dryRun && s.kind !== 'note' ? ' (dry run)' : ''}`,
          );
        }
        for (const [role, p] of Object.entries(r.records)) console.log(`${role}: recorded in ${p} (kflex-lab hosts prepare --list / --undo)`);
      }
      if (Object.keys(r.unreachable).length || r.outcomes.some((x) => !x.ok)) process.exitCode = ExitCode.checkFailed;
    });
}

/** CloudLab in, hosts.yaml out: the profile to book, and the booked experiment's manifest as a testbed file. */
function registerCloudlabCommands(hosts: Command): void {
  hosts
    .command('cloudlab-profile')
    .description(
      'write a geni-lib profile.py for a repository-based CloudLab profile: two raw nodes (server, client), ' +
        'one link with fixed addresses (10.0.0.1, 10.0.0.2), a startup script that installs what hosts prepare would',
    )
    .option('-o, --out <file>', 'write it here (default: standard output)')
    .option(
      '--hardware-type <type>',
      "the profile's default hardware type (default: the lab profile's testbed.cloudlab.hardware_type, else c6420: Intel X710 NIC, as the paper's testbed)",
    )
    .option('--nodes <n>', "the profile's default node count (default 2; more are spare clients)", (v) => Number(v))
    .option('--image <urn>', "the profile's default OS image URN (default Ubuntu 24.04, emulab-ops//UBUNTU24-64-STD)")
    .action(async (o: { out?: string; hardwareType?: string; nodes?: number; image?: string }, cmd: Command) => {
      // The profile's testbed.cloudlab.hardware_type (e.g. --profile paper-cloudlab) is the default when given.
      const t = configFrom(cmd).profile.testbed;
      const hardwareType = o.hardwareType ?? (t?.kind === 'hosts' ? t.cloudlab?.hardware_type : undefined);
      const text = (await cloudlabLab()).writeCloudlabProfile({ out: o.out, hardwareType, nodeCount: o.nodes, image: o.image });
      if (o.out) console.error(`wrote ${o.out}: put it at the top of a git repository and create a CloudLab profile from that repository`);
      else process.stdout.write(text);
    });

  hosts
    .command('from-manifest')
    .description(
      "turn a CloudLab experiment's manifest (GENI RSpec v3, the Manifest tab) into hosts.yaml on standard output: " +
        "each node's SSH destination and login, its link NIC by MAC and address (the NIC's name is resolved on the host by hosts check)",
    )
    .argument('<manifest>', 'the manifest XML file')
    .option('--server <node>', 'client_id of the server node (default: the node named server, or the first of two)')
    .option('--client <node>', 'client_id of the client node (default: the node named client, or the second of two)')
    .option('--link <name>', 'client_id of the link to use when several join the two nodes')
    .option('--user <name>', 'your login name (a manifest lists one login per project member; default: $USER when it is among them)')
    .action(async (file: string, o: { server?: string; client?: string; link?: string; user?: string }) => {
      const text = (await cloudlabLab()).hostsFromManifest(file, { ...o, localUser: process.env.USER });
      process.stdout.write(text);
    });
}
