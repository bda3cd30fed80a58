import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LabError, ExitCode } from '../core/errors.js';
import { latestRun, resultsRoot } from '../core/rundir.js';
import { parseMemcaslap, parseRedisBenchmarkCsv, parseMemtier, parseGbenchJson, parseGuardLines, compareGuards } from '../experiments/parsers.js';
import { EXPERIMENTS, experimentById } from '../experiments/index.js';
import { writeReport, readRunForReport, verdictTable } from '../report/report.js';
import { configFrom } from './common.js';
import { runExperiments } from './reproduce.js';

export function registerExperimentCommands(program: Command): void {
  program
    .command('reproduce')
    .description('everything from a bare box: doctor, stages (cached ones skipped), VMs + native-XDP check, every experiment beside its baselines, teardown, report and bundle')
    .option('--only <experiment...>', `run only these experiments (${EXPERIMENTS.map((e) => e.id).join(', ')})`)
    .option('--quick', "fewer repetitions and shorter runs (each experiment's quick: settings)")
    .option('--resume <run>', 'finish a run directory: only missing or failed cells run')
    .action(async (o: { only?: string[]; quick?: boolean; resume?: string }, cmd: Command) => {
      const config = configFrom(cmd);
      const r = await runExperiments(config, { only: o.only, quick: o.quick, resume: o.resume ? resolve(o.resume) : undefined });
      process.exitCode = r.exitCode;
    });

  program
    .command('run')
    .description('run some experiments (with their baselines) on fresh VMs; like reproduce --only, without the bundle')
    .argument('<experiment...>', EXPERIMENTS.map((e) => e.id).join(' | '))
    .option('--quick', 'fewer repetitions and shorter runs')
    .action(async (ids: string[], o: { quick?: boolean }, cmd: Command) => {
      for (const id of ids) if (!experimentById(id)) throw new LabError(`unknown experiment '${id}'; known: ${EXPERIMENTS.map((e) => e.id).join(', ')}`, ExitCode.usage);
      const config = configFrom(cmd);
      const r = await runExperiments(config, { only: ids, quick: o.quick, bundle: false });
      process.exitCode = r.exitCode;
    });

  program
    .command('report')
    .description('write report.html and report.md for a run (default: the latest) from its summary and manifest')
    .argument('[run]', 'run directory')
    .action(async (run?: string) => {
      const dir = run ? resolve(run) : await latestRun();
      if (!dir) throw new LabError(`no run directory under ${resultsRoot()}`, ExitCode.usage);
      const inp = await readRunForReport(dir);
      const { verdicts } = await writeReport({ runDir: dir, ...inp }, Object.fromEntries(EXPERIMENTS.map((e) => [e.id, e.headline])));
      console.log(verdictTable(verdicts));
      console.log(`${dir}/report.html`);
    });

  program
    .command('parse')
    .description('print the metrics of a client output you captured by hand, as JSON (the parsers the experiments use)')
    .argument('<kind>', 'memcaslap | redis-benchmark | memtier | gbench | guards')
    .argument('<file>', 'the captured output (redis-benchmark: run with --csv)')
    .action(async (kind: string, file: string) => {
      const parsers: Record<string, (t: string) => unknown> = {
        memcaslap: parseMemcaslap,
        'redis-benchmark': parseRedisBenchmarkCsv,
        memtier: parseMemtier,
        gbench: parseGbenchJson,
        guards: (t) => compareGuards(parseGuardLines(t)),
      };
      const parse = parsers[kind];
      if (!parse) throw new LabError(`unknown parser '${kind}'; known: ${Object.keys(parsers).join(', ')}`, ExitCode.usage);
      const text = await readFile(file, 'utf8').catch((e: Error) => {
        throw new LabError(`cannot read ${file}: ${e.message}`, ExitCode.usage);
      });
      console.log(JSON.stringify(parse(text), null, 2));
    });
}
