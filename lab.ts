// kflex-lab: the CLI. It parses arguments, calls one entry of lab/, prints, and maps errors to exit codes.
import { Command, Option } from 'commander';
import { rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { configFrom, globalOpts } from './cli/common.js';
import { LabError, ExitCode } from './core/errors.js';
import { fmtSeconds } from './core/duration.js';
import { printChecks } from './cli/checks.js';
import { interruption } from './lab/signals.js';
import { registerVmCommands } from './cli/vm-commands.js';
import { registerExperimentCommands } from './cli/experiment-commands.js';
import { registerHostsCommands } from './cli/hosts-commands.js';
import { registerLabCommands } from './cli/lab-commands.js';

const program = new Command('kflex-lab');
program
  .description(
    "Reproduce the KFlex paper (SOSP '24) end to end: LLVM, the KFlex kernel, a Debian guest " +
      "image, a server VM and a client VM on a virtio-net link with XDP, the artifact's " +
      "experiments beside their baselines, and a report that sets each number beside the paper's claim.",
  )
  .addHelpText(
    'after',
    `
Quick start:
  kflex-lab doctor                      what this host has and lacks, with the fix
  kflex-lab plan --profile smoke        what would run, what is cached, time and disk estimates
  kflex-lab reproduce --profile smoke   everything, from bare box to results/<run>.tar.gz
  kflex-lab up && kflex-lab ssh server  boot the VMs and log in (students: edit bpf/, rerun up)

Configuration: lab.yaml (profiles 'paper' (default) and 'smoke'); override with --config FILE,
--set path=value, KFLEX_LAB__PATH__TO__FIELD=value, and --source NAME=/local/path.
Cache: $KFLEX_LAB_CACHE or ~/.cache/kflex-lab. Results: ./results (or $KFLEX_LAB_RESULTS).
Exit codes: 0 ok, 1 an experiment or check failed, 2 usage or configuration error,
            3 infrastructure failure (build, boot, network).`,
  )
  .option('-p, --profile <name>', 'profile in lab.yaml (default: default_profile, i.e. paper)')
  .option('-c, --config <file>', 'another lab.yaml')
  .option('--set <path=value>', 'override a profile field, e.g. vms.server.memory_mb=4096 (repeatable)', collect, [])
  .option('--source <name=path>', 'use a local tree or file for a source, e.g. kflex=/src/KFlex (repeatable)', collect, [])
  .option('--events <file>', 'also write every lab event (stages, testbed, cells, run end) as JSON lines to this file')
  .showHelpAfterError()
  // Usage errors (unknown verb, missing argument) exit 2, as documented; help exits 0.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : ExitCode.usage))
  .configureHelp({ sortSubcommands: false, helpWidth: 110 });

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

program
  .command('doctor')
  .description(
    'check this host: KVM or TCG, QEMU, mmdebstrap, clang >= the profile minimum with BPF, ' +
      'kernel build tools, disk, RAM, tap/vhost, cgroup v2; prints one apt-get line for what is missing',
  )
  .action(async (_o, cmd: Command) => {
    const config = configFrom(cmd);
    // Each verb loads what it needs when it runs: --help and a cached build start in a fraction of a second.
    const [{ doctor }, { aptLine }] = await Promise.all([import('./lab/doctor.js'), import('./core/doctor.js')]);
    const checks = await doctor(config);
    printChecks(checks);
    const apt = aptLine(checks);
    if (apt) console.log(`\nto install what is missing:\n  ${apt}`);
    if (checks.some((c) => c.level === 'fail')) process.exitCode = ExitCode.checkFailed;
  });

program
  .command('plan')
  .description('print the resolved configuration, the stage graph with what is cached, and time/disk estimates for this host')
  .option('--json', 'machine-readable output')
  .option('--assume-host <spec>', 'judge the cells for a described host instead of this one, e.g. ram=256G,cpus=64,la57,kvm')
  .action(async (o: { json?: boolean; assumeHost?: string }, cmd: Command) => {
    const config = configFrom(cmd);
    const { planRun } = await import('./lab/plan.js');
    const planned = await planRun(config, { assumeHost: o.assumeHost, kvm: o.assumeHost ? undefined : await kvmLikely() });
    const { planJson, planText } = await import('./cli/plan.js');
    console.log(o.json ? planJson(config, planned) : planText(config, planned));
  });

/** Whether /dev/kvm is there to try (plan does not boot anything; reproduce probes with the real kernel). */
async function kvmLikely(): Promise<boolean> {
  return existsSync('/dev/kvm');
}

program
  .command('build')
  .description('build a stage and what it depends on (llvm, kernel, kflex, bmc, image, or all); finished stages come from the cache')
  .argument('<stage>', 'llvm | kernel | kflex | bmc | image | all')
  .addOption(new Option('--force <stage...>', 'rebuild these stages even when cached (or all)'))
  .option('--configure-only', "kernel only: configure and verify the profile's kernel source (base + fragments + olddefconfig), compile nothing, cache nothing")
  .option(
    '--deb',
    'kernel only: also package it as Debian packages (make bindeb-pkg, same source and ' +
      'verified config) to boot on your own hosts; prints them and the steps to install and boot them',
  )
  .action(async (stage: string, o: { force?: string[]; configureOnly?: boolean; deb?: boolean }, cmd: Command) => {
    const started = Date.now();
    if (o.deb) {
      if (stage !== 'kernel' || o.configureOnly)
        throw new LabError(`--deb packages the kernel stage: use it as 'build kernel --deb', without --configure-only`, ExitCode.usage);
      const config = configFrom(cmd);
      const { buildKernelDebs } = await import('./lab/plan.js');
      const { debs: d, steps } = await buildKernelDebs(config, o.force ?? []);
      console.log(`Debian packages of kernel ${d.release} (profile ${config.profileName}) in ${d.dir}:`);
      for (const p of d.packages) console.log(`  ${p.role.padEnd(9)} ${p.file}  ${(p.bytes / 1e6).toFixed(1)} MB  sha256 ${p.sha256}`);
      console.log(['', ...steps].join('\n'));
      console.error(`packaged in ${fmtSeconds((Date.now() - started) / 1000)}`);
      return;
    }
    if (o.configureOnly) {
      if (stage !== 'kernel') throw new LabError(`--configure-only applies to the kernel stage, not ${stage}`, ExitCode.usage);
      const { configureKernelOnly } = await import('./lab/plan.js');
      const r = await configureKernelOnly(configFrom(cmd));
      console.log(`kernel ${r.release} from ${r.source}: configuration verified, ${r.options} options from ${r.fragments} fragments`);
      for (const [f, opts] of Object.entries(r.versionGuarded)) console.log(`  ${f}: not asked of ${r.version} (version guards): ${opts.join(' ')}`);
      console.error(`configured in ${fmtSeconds((Date.now() - started) / 1000)}`);
      return;
    }
    const { build } = await import('./lab/plan.js');
    const outputs = await build(configFrom(cmd), stage, o.force ?? [], globalOpts(cmd).events);
    for (const [id, out] of Object.entries(outputs)) console.log(`${id.padEnd(7)} ${out.dir}`);
    console.error(`built in ${fmtSeconds((Date.now() - started) / 1000)}`);
  });

program
  .command('list')
  .description('list profiles, stages and experiments')
  .action(async (_o, cmd: Command) => {
    const g = globalOpts(cmd);
    const { catalog } = await import('./lab/catalog.js');
    const c = await catalog(configFrom(cmd), g.config ? resolve(g.config) : undefined);
    console.log('profiles:');
    for (const p of c.profiles) console.log(`  ${p.name.padEnd(8)} ${p.extends ? `(extends ${p.extends}) ` : ''}${p.description.slice(0, 100)}…`);
    console.log('stages:');
    for (const s of c.stages) console.log(`  ${s.id.padEnd(8)} ${s.description}`);
    console.log('experiments:');
    for (const e of c.experiments) console.log(`  ${e.id.padEnd(15)} ${e.title} — variants: ${e.variants.join(', ')}`);
  });

registerVmCommands(program);
registerExperimentCommands(program);
registerHostsCommands(program);
registerLabCommands(program);

program
  .command('bundle')
  .description('pack a run directory (default: the latest) as <run>.tar.gz with SHA256SUMS inside')
  .argument('[run]', 'run directory')
  .action(async (run?: string) => {
    const [{ latestRun, resultsRoot }, { writeBundle }] = await Promise.all([import('./core/rundir.js'), import('./core/bundle.js')]);
    const dir = run ? resolve(run) : await latestRun();
    if (!dir || !existsSync(dir)) throw new LabError(`no run directory ${run ?? `under ${resultsRoot()}`}`, ExitCode.usage);
    console.log(await writeBundle(dir));
  });

program
  .command('verify')
  .description("check a bundle: every file against its SHA256SUMS line (lines pointing outside the bundle are refused); prints the tarball's own sha256")
  .argument('<bundle>', '<run>.tar.gz')
  .action(async (bundle: string) => {
    const { verifyBundle } = await import('./core/bundle.js');
    const r = await verifyBundle(resolve(bundle));
    for (const o of r.outside) console.log(`OUTSIDE  ${o} (points outside the bundle; refused, not read)`);
    for (const b of r.bad) console.log(`BAD      ${b}`);
    for (const m of r.missing) console.log(`MISSING  ${m}`);
    console.log(`${r.files} files listed, ${r.bad.length} bad, ${r.missing.length} missing, ${r.outside.length} outside the bundle`);
    // Last, so it is easy to find: the one line an evaluator pastes into a review.
    console.log(r.sha256Line);
    if (r.bad.length || r.missing.length || r.outside.length) process.exitCode = ExitCode.checkFailed;
  });

program
  .command('clean')
  .description('remove stale VM sets (whose lab process died) and LLVM build scratch; --all also stops every VM set and removes the whole cache')
  .option('--all', 'stop every VM set and remove the cache (stage outputs, keys) too')
  .action(async (o: { all?: boolean }, cmd: Command) => {
    const config = configFrom(cmd);
    // Without --all only stale VM sets go (their lab process died); with --all every VM set is stopped.
    const { cleanVms } = await import('./lab/vms.js');
    const cleaned = await cleanVms(config, { all: !!o.all });
    console.log(`VM sets cleaned: ${cleaned.length}${cleaned.length ? ` (${cleaned.join(', ')})` : ''}`);
    if (o.all) {
      await rm(config.cacheRoot, { recursive: true, force: true });
      console.log(`removed ${config.cacheRoot}`);
    } else {
      await rm(join(config.cacheRoot, 'llvm-work'), { recursive: true, force: true });
      console.log(`kept stage outputs in ${config.cacheRoot} (use --all to remove them)`);
    }
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  // A signal handler is tearing the VMs down and will exit with 130/143; the interrupted work's error waits.
  if (interruption.active) return;
  if (e instanceof LabError) {
    console.error(`kflex-lab: ${e.message}`);
    if (e.hint) console.error(`  fix: ${e.hint}`);
    process.exit(e.exitCode);
  }
  console.error(e);
  process.exit(ExitCode.infra);
});
