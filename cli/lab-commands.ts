import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { ResolvedConfig } from '../core/config.js';
import { ExitCode, LabError } from '../core/errors.js';
import { labConfig } from '../lab/config.js';
import type { CheckResult, ClassLine } from '../lab/exercises.js';
import { globalOpts } from './common.js';

// lab/exercises.js (the VMs, the graders) loads when a lab verb runs.
const labs = () => import('../lab/exercises.js');

/** The labs run on the smoke profile unless --profile says otherwise (the paper profile needs the KFlex kernel). */
function labConfigFrom(cmd: Command): ResolvedConfig {
  const o = globalOpts(cmd);
  return labConfig({ file: o.config, profile: o.profile ?? 'smoke', set: o.set, sources: o.source });
}

const indent = (text: string, prefix = '  | ') =>
  text
    .split('\n')
    .map((l) => `${prefix}${l}`)
    .join('\n');

/** A check's verdict for a person: each test with what was expected and seen, or why it stopped. */
export function printCheck(r: CheckResult): void {
  console.log(`exercise ${r.exercise} (${r.slug}), seed ${r.seed}`);
  if (r.stage === 'compile') console.log(`${r.message}:\n${indent(r.log ?? '')}`);
  else if (r.log && r.stage === 'graded') console.log(`compiler warnings:\n${indent(r.log)}`);
  if (r.stage === 'load' && r.log) console.log(`the verifier's log:\n${indent(r.log)}`);
  if (r.stage !== 'graded' && r.stage !== 'compile') console.log(r.message);
  for (const t of r.tests) console.log(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: expected ${t.expected}, saw ${t.seen}`);
  if (r.recovered) console.log(`note: ${r.recovered}`);
  const failed = r.tests.filter((t) => !t.pass).length;
  const why = r.stage === 'graded' ? `${failed} of ${r.tests.length} tests failed` : `stopped at: ${r.stage}`;
  const phases = Object.entries(r.phases ?? {})
    .filter(([k]) => !k.includes('.'))
    .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
    .join(', ');
  console.log(`verdict: ${r.pass ? 'PASS' : `FAIL (${why})`} in ${r.seconds.toFixed(1)} s${phases ? ` (${phases})` : ''}`);
}

/** One instructor's line: student, exercise, verdict, test, and why it failed. */
function classLine(l: ClassLine): string {
  const why = l.pass ? '' : `: ${l.message ?? `expected ${l.expected}, saw ${l.seen}`}`;
  return `${l.student.padEnd(16)} ${String(l.exercise).padStart(2)}  ${l.pass ? 'PASS' : 'FAIL'}  ${l.test}${why}`;
}

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('student labs: graded kernel-extension exercises run in the VMs (list, start N, check N, reset N)')
    .addHelpText(
      'after',
      `
  kflex-lab lab list               the exercises, and which you have started
  kflex-lab lab start 1            copy exercise 1's starter into ./kflex-labs/1-proto-count and print the task
  kflex-lab lab check 1            build it in the server VM, load it, drive traffic, print each test (VMs come up if needed)
  kflex-lab lab check 1 --json     the same as one JSON object (for autograders)
  kflex-lab lab check --all DIR --json   instructors: DIR/<student>/<n>-<slug>/, one JSON line per student and test
  kflex-lab lab reset 1            the starter file again (yours is kept as .bak)
The labs use the smoke profile unless --profile says otherwise; exercises 5 and 6 need its 7.x kernel.`,
    );
  registerList(lab);
  registerStart(lab);
  registerCheck(lab);
  registerReset(lab);
}

const vmOpt = ['--vm <name>', 'which set of VMs (default: $KFLEX_LAB_VM or "default")'] as const;
const dirOpt = ['--dir <folder>', "the exercise's working folder (default: ./kflex-labs/<n>-<slug>)"] as const;

function registerList(lab: Command): void {
  lab
    .command('list')
    .description('the exercises, in order, and whether each is started here')
    .action(async () => {
      const { listExercises } = await labs();
      for (const e of listExercises())
        console.log(
          `${String(e.n).padStart(2)}  ${`${e.n}-${e.slug}`.padEnd(20)} ${e.title}${e.needs ? `  [needs ${e.needs}]` : ''}${e.started ? '  (started)' : ''}`,
        );
    });
}

function registerStart(lab: Command): void {
  lab
    .command('start')
    .description("copy an exercise's starter files into a working folder and print its task")
    .argument('<n>', 'exercise number (or slug)')
    .option(...dirOpt)
    .action(async (n: string, o: { dir?: string }) => {
      const { startExercise } = await labs();
      const r = await startExercise(n, { dir: o.dir && resolve(o.dir) });
      console.log(`exercise ${r.exercise.n}: ${r.exercise.title}\n\n${r.task}\n`);
      console.log(`${r.created ? 'edit' : 'already started, keep editing'}: ${r.file}   (the whole task: ${r.dir}/README.md)`);
      if (r.header) console.log(`the lab's header (read it, do not copy it): ${r.header}`);
      console.log(`then:  npx kflex-lab lab check ${r.exercise.n}`);
    });
}

function registerCheck(lab: Command): void {
  lab
    .command('check')
    .description('build your program in the server VM, load it, drive traffic or test runs from the client VM, print pass/fail per test')
    .argument('[n]', 'exercise number (or slug)')
    .option(...dirOpt)
    .option(...vmOpt)
    .option('--json', 'print the result as JSON (one object; with --all, one line per student and test)')
    .option('--all <folder>', 'instructors: check every <student>/<n>-<slug>/ under the folder, one submission at a time')
    .option('--seed <n>', "the grader's random inputs (a check prints its seed; the same seed asks the same)", (v) => Number(v))
    .action(async (n: string | undefined, o: { dir?: string; vm?: string; json?: boolean; all?: string; seed?: number }, cmd: Command) => {
      const { checkExercise, checkClass } = await labs();
      const config = labConfigFrom(cmd);
      const log = (m: string) => console.error(`kflex-lab lab: ${m}`);
      if (o.all) {
        const lines = await checkClass(config, resolve(o.all), {
          vm: o.vm,
          log,
          ...(n ? { only: n } : {}),
          onLine: (l) => console.log(o.json ? JSON.stringify(l) : classLine(l)),
        });
        process.exitCode = lines.every((l) => l.pass) ? 0 : ExitCode.checkFailed;
        return;
      }
      if (!n) throw new LabError('lab check needs an exercise number (or --all FOLDER)', ExitCode.usage);
      const r = await checkExercise(config, n, { vm: o.vm, log, dir: o.dir && resolve(o.dir), ...(o.seed !== undefined ? { seed: o.seed } : {}) });
      if (o.json) console.log(JSON.stringify(r));
      else printCheck(r);
      process.exitCode = r.pass ? 0 : ExitCode.checkFailed;
    });
}

function registerReset(lab: Command): void {
  lab
    .command('reset')
    .description("put the exercise's starter file back (yours is kept beside it as <file>.<time>.bak)")
    .argument('<n>', 'exercise number (or slug)')
    .option(...dirOpt)
    .action(async (n: string, o: { dir?: string }) => {
      const { resetExercise } = await labs();
      const r = await resetExercise(n, { dir: o.dir && resolve(o.dir) });
      console.log(`${r.file}: the starter again${r.backup ? ` (yours: ${r.backup})` : ''}`);
    });
}
