import type { Command } from 'commander';
import { resolve } from 'node:path';
import { LabError, ExitCode } from '../core/errors.js';
import { fmtSeconds } from '../core/duration.js';
import type { ReproduceResult } from '../lab/run.js';
import { EXPERIMENT_IDS, experimentKnown, parseCapture, reportRun, PARSERS, verdictTable } from '../lab/catalog.js';

import { configFrom, globalOpts } from './common.js';

async function printResult(r: ReproduceResult): Promise<void> {
  if (r.verdicts) console.log(`\nclaims:\n${await verdictTable(r.verdicts)}`);
  if (r.report) console.log(`\nreport: ${r.report} (and report.md)`);
  if (r.bundle) console.log(`bundle: ${r.bundle}`);
  if (r.lost) console.log(`testbed lost: ${r.lost.split('\n')[0]}\nfinish the cells it could not run with: ${r.resumeCommand}`);
  const c = r.counts;
  console.log(`cells: ${c.ok} ok, ${c.failed} failed, ${c.skipped} skipped${r.nothingToRun ? ' (nothing left to run)' : ''}; ${fmtSeconds(r.seconds)} in all`);
}

const TESTBED_OPT = ['--testbed <hosts.yaml>', "run on your own two machines over SSH instead of the lab's VMs (see kflex-lab hosts check)"] as const;
const onHosts = (file?: string) => (file ? { testbed: 'hosts', testbedFile: resolve(file) } : {});

export function registerExperimentCommands(program: Command): void {
  program
    .command('reproduce')
    .description(
      'everything from a bare box: doctor, stages (cached ones skipped), VMs + native-XDP check, ' +
        'every experiment beside its baselines, teardown, report and bundle',
    )
    .option('--only <experiment...>', `run only these experiments (${EXPERIMENT_IDS.join(', ')})`)
    .option('--quick', "fewer repetitions and shorter runs (each experiment's quick: settings)")
    .option('--resume <run>', 'finish a run directory: only missing or failed cells run (nothing boots when none is left)')
    .option('--anyway', 'go on although no claim can be judged on this host (by default such a run stops before any build, naming a profile that would)')
    .option(...TESTBED_OPT)
    .action(async (o: { only?: string[]; quick?: boolean; resume?: string; testbed?: string; anyway?: boolean }, cmd: Command) => {
      for (const id of o.only ?? [])
        if (!experimentKnown(id)) throw new LabError(`--only ${id}: unknown experiment; known: ${EXPERIMENT_IDS.join(', ')}`, ExitCode.usage);
      const { reproduce } = await import('../lab/run.js');
      const r = await reproduce(configFrom(cmd), {
        only: o.only,
        quick: o.quick,
        resume: o.resume ? resolve(o.resume) : undefined,
        eventsFile: globalOpts(cmd).events,
        anyway: o.anyway,
        ...onHosts(o.testbed),
      });
      await printResult(r);
      process.exitCode = r.exitCode;
    });

  program
    .command('run')
    .description('run some experiments (with their baselines) on fresh VMs; like reproduce --only, without the bundle')
    .argument('<experiment...>', EXPERIMENT_IDS.join(' | '))
    .option('--quick', 'fewer repetitions and shorter runs')
    .option(...TESTBED_OPT)
    .action(async (ids: string[], o: { quick?: boolean; testbed?: string }, cmd: Command) => {
      for (const id of ids) if (!experimentKnown(id)) throw new LabError(`unknown experiment '${id}'; known: ${EXPERIMENT_IDS.join(', ')}`, ExitCode.usage);
      const { reproduce } = await import('../lab/run.js');
      const r = await reproduce(configFrom(cmd), { only: ids, quick: o.quick, bundle: false, eventsFile: globalOpts(cmd).events, ...onHosts(o.testbed) });
      await printResult(r);
      process.exitCode = r.exitCode;
    });

  program
    .command('report')
    .description('write report.html and report.md for a run (default: the latest) from its summary and manifest')
    .argument('[run]', 'run directory')
    .action(async (run?: string) => {
      const r = await reportRun(run ? resolve(run) : undefined);
      console.log(r.table);
      console.log(r.html);
    });

  program
    .command('parse')
    .description(
      'print the metrics of a client output you captured by hand, as JSON (the parsers the experiments use); exits 1 when the file holds no such output',
    )
    .argument('<kind>', Object.keys(PARSERS).join(' | '))
    .argument('<file>', 'the captured output')
    .action(async (kind: string, file: string) => {
      console.log(JSON.stringify(await parseCapture(kind, file), null, 2));
    });
}
