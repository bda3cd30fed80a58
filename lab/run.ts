import { copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import type { ResolvedConfig } from '../core/config.js';
import type { StageOutput } from '../core/stage.js';
import type { Testbed } from '../core/testbed.js';
import type { Accel } from '../core/accel.js';
import { shellLine } from '../core/shell.js';
import { EventBus, recordEvents, type CellCounts } from '../core/events.js';
import { attachView } from '../core/progress.js';
import { LabError, ExitCode } from '../core/errors.js';
import { doctor } from './doctor.js';
import { createRunDir, hostFacts, buildManifest, writeManifest, readManifest, type Manifest, type RunRequest } from '../core/rundir.js';
import { writeBundle } from '../core/bundle.js';
import { awaitReapers } from '../core/reaping.js';
import { planCells, readCellRecord, needsRun, type CellRecord, type ExperimentCell } from '../experiments/cells.js';
import { FFKX, probeCapabilities } from '../experiments/requirements.js';
import { runCells } from '../experiments/runner.js';
import { writeSummary } from '../experiments/summary.js';
import { EXPERIMENTS, experimentViews } from '../experiments/index.js';
import type { ClaimVerdict } from '../report/claims.js';
import { onInterrupt, interruption } from './signals.js';
import { runDeviations } from './deviations.js';
import { sizeServer, sizedConfig, thisHost } from './sizing.js';
import { preflight } from './preflight.js';
import { buildTargets, testbedArtifacts } from './stages.js';
import { TESTBEDS, chooseTestbed, runVmDir, type TestbedProvider } from './testbeds.js';

export interface ReproduceOptions {
  only?: string[];
  quick?: boolean;
  /** An existing run directory to finish: only missing or failed cells run. */
  resume?: string;
  report?: boolean;
  bundle?: boolean;
  /** Every event as a JSON line in this file. */
  eventsFile?: string;
  /** The kind of testbed (default: the lab's VMs). */
  testbed?: string;
  /** The testbed's description file (hosts.yaml for the hosts testbed). */
  testbedFile?: string;
  /** Go on although no claim can be judged on this host (the preflight would stop the run). */
  anyway?: boolean;
}

export interface ReproduceResult {
  runDir: string;
  records: CellRecord[];
  counts: CellCounts;
  verdicts?: ClaimVerdict[];
  report?: string;
  bundle?: string;
  /** Why the testbed was lost during the cells, if it was. */
  lost?: string;
  nothingToRun?: boolean;
  /** The command that finishes this run (same profile, selection and overrides). */
  resumeCommand: string;
  exitCode: number;
  seconds: number;
}

export function runRequest(config: ResolvedConfig, opts: ReproduceOptions): RunRequest {
  return {
    profile: config.profileName,
    quick: !!opts.quick,
    only: [...(opts.only ?? [])].sort(),
    overrides: Object.values(config.overrides).sort(),
    testbed: opts.testbedFile,
  };
}

/** The command that finishes a run: the same profile, selection and overrides, with --resume. */
export function resumeCommand(req: RunRequest, runDir: string): string {
  const parts = ['kflex-lab', 'reproduce', '--profile', req.profile, ...(req.quick ? ['--quick'] : []), ...(req.only.length ? ['--only', ...req.only] : [])];
  for (const o of req.overrides) if (o.startsWith('--set ')) parts.push('--set', o.slice(6));
  if (req.testbed) parts.push('--testbed', req.testbed);
  return shellLine([...parts, '--resume', runDir]);
}

/** Why a resume asks for something else than the run it finishes, or undefined when it asks the same. */
export function resumeMismatch(recorded: RunRequest, now: RunRequest): string | undefined {
  const diff: string[] = [];
  if (recorded.profile !== now.profile) diff.push(`profile ${recorded.profile} (now ${now.profile})`);
  if (recorded.quick !== now.quick) diff.push(recorded.quick ? '--quick (now without)' : 'no --quick (now with it)');
  if (recorded.only.join() !== now.only.join()) diff.push(`--only ${recorded.only.join(' ') || '(all)'} (now ${now.only.join(' ') || 'all'})`);
  if (recorded.overrides.join('\n') !== now.overrides.join('\n'))
    diff.push(`overrides ${recorded.overrides.join('; ') || '(none)'} (now ${now.overrides.join('; ') || 'none'})`);
  return diff.length ? diff.join(', ') : undefined;
}

/** Minutes the experiments of a selection take on this host kind (for the preamble and `plan`). */
export function estimateExperimentMinutes(config: ResolvedConfig, cells: ExperimentCell[], accel: Accel): number {
  // Without KFlex in the image every KFlex cell is skipped at once: it costs nothing.
  const run = cells.filter((c) => config.profile.image.kflex || !c.variant.requires.includes(FFKX));
  return run.reduce((a, c) => a + c.experiment.estimateCellSeconds(c.settings, accel, c.variant), 0) / 60;
}

export function countCells(records: CellRecord[]): CellCounts {
  const n = (s: CellRecord['status']) => records.filter((r) => r.status === s).length;
  return { ok: n('ok'), failed: n('failed'), skipped: n('skipped') };
}

/**
 * One run of the lab: one event bus, the manifest in memory (written at checkpoints, never read back to be
 * amended), the run directory, and the testbed it must tear down whatever happens.
 */
export class LabRun {
  readonly bus = new EventBus();
  readonly started = Date.now();
  private readonly detachers: Array<() => void> = [];
  private testbed?: Testbed;
  /** The accelerator the testbed runs on, once decided. */
  accel?: Accel;
  /** The cells this run plans (for the deviations of their loads). */
  cells: ExperimentCell[] = [];
  /** The testbed's description file (hosts.yaml), handed to its provider. */
  testbedFile?: string;

  private constructor(
    readonly config: ResolvedConfig,
    readonly runDir: string,
    readonly manifest: Manifest,
  ) {}

  /** A new run directory, or the one to resume (its manifest is read once, here). */
  static async open(config: ResolvedConfig, opts: { resume?: string; eventsFile?: string; view?: boolean }): Promise<LabRun> {
    let runDir: string;
    let manifest: Manifest;
    if (opts.resume) {
      if (!existsSync(join(opts.resume, 'manifest.json')))
        throw new LabError(`--resume ${opts.resume}: not a run directory (no manifest.json)`, ExitCode.usage);
      runDir = opts.resume;
      manifest = await readManifest(runDir);
    } else {
      runDir = await createRunDir(config.profileName);
      manifest = buildManifest(config, await hostFacts(), {});
    }
    const run = new LabRun(config, runDir, manifest);
    if (opts.view !== false) run.detachers.push(attachView(run.bus));
    if (opts.eventsFile) run.detachers.push(recordEvents(run.bus, opts.eventsFile));
    // The run keeps its own record of what happened when (the report's timeline reads it; a resume appends).
    run.detachers.push(recordEvents(run.bus, join(runDir, 'events.jsonl')));
    return run;
  }

  say(message: string): void {
    this.bus.emit({ type: 'step', scope: 'lab', message });
  }

  async checkpoint(): Promise<void> {
    await writeManifest(this.runDir, this.manifest);
  }

  recordStages(outputs: Record<string, StageOutput>): void {
    this.manifest.stages = buildManifest(this.config, this.manifest.host, outputs).stages;
  }

  async bringUp(provider: TestbedProvider, outputs: Record<string, StageOutput>, accel: Accel, config = this.config): Promise<Testbed> {
    const t0 = Date.now();
    this.testbed = await provider.up({
      config,
      artifacts: testbedArtifacts(outputs),
      accel,
      dir: runVmDir(this.config, this.runDir),
      owner: 'run',
      bus: this.bus,
      testbedFile: this.testbedFile,
    });
    const t = this.testbed;
    this.manifest.host.accel = t.accel === 'native' ? 'unknown' : t.accel;
    this.manifest.testbed = t.facts;
    this.manifest.link = t.link.describe;
    this.manifest.xdp_check = t.link.xdpCheck;
    this.bus.emit({ type: 'testbed-up', kind: t.kind, accel: t.accel, link: t.link.describe, nativeXdp: t.link.nativeXdp, seconds: (Date.now() - t0) / 1000 });
    await this.checkpoint();
    return t;
  }

  /** Stop the testbed (if up) and keep its raw logs; safe to call twice and from a signal handler. */
  async tearDown(outputs: Record<string, StageOutput> = {}): Promise<void> {
    const t = this.testbed;
    this.testbed = undefined;
    if (t) {
      await t.down();
      this.bus.emit({ type: 'testbed-down', kind: t.kind });
    }
    const logs = join(this.runDir, 'logs');
    await mkdir(logs, { recursive: true });
    for (const [name, path] of Object.entries(t?.logs() ?? {})) await copyFile(path, join(logs, name)).catch(() => undefined);
    for (const [id, out] of Object.entries(outputs)) await copyFile(join(out.dir, 'build.log'), join(logs, `${id}.build.log`)).catch(() => undefined);
  }

  /** Summary, report and bundle from the records; the end of every run that got as far as its cells. */
  async finish(records: CellRecord[], opts: ReproduceOptions, extra: { lost?: string; nothingToRun?: boolean } = {}): Promise<ReproduceResult> {
    // Interrupted: the signal handler tears down and exits; a report or tarball begun now would be cut off.
    if (interruption.active) return new Promise<never>(() => {});
    const rows = await writeSummary(this.runDir, records);
    const xdpWarnings = this.manifest.xdp_check?.warnings;
    this.manifest.deviations = runDeviations(this.config, { accel: this.accel, cells: this.cells, records, xdpWarnings });
    const counts = countCells(records);
    let verdicts: ClaimVerdict[] | undefined;
    let report: string | undefined;
    let bundle: string | undefined;
    await this.checkpoint();
    if (opts.report !== false) {
      // Loaded here: the report renders charts with Vega, which nothing before the report needs.
      const { writeReport } = await import('../report/report.js');
      verdicts = (await writeReport({ runDir: this.runDir, manifest: this.manifest, rows, records }, experimentViews())).verdicts;
      report = join(this.runDir, 'report.html');
    }
    if (opts.bundle !== false) bundle = await writeBundle(this.runDir);
    const exitCode = counts.failed || extra.lost ? ExitCode.checkFailed : ExitCode.ok;
    const seconds = (Date.now() - this.started) / 1000;
    this.bus.emit({
      type: 'run-done',
      runDir: this.runDir,
      counts,
      exitCode,
      seconds,
      report,
      bundle,
      nothingToRun: extra.nothingToRun,
      verdicts: verdicts?.map((v) => ({ claim: v.claim.id, verdict: v.verdict, reason: v.reason })),
    });
    const req = this.manifest.request ?? {
      profile: this.manifest.profile,
      quick: !!opts.quick,
      only: opts.only ?? [],
      overrides: [],
    };
    return { runDir: this.runDir, records, counts, verdicts, report, bundle, exitCode, seconds, resumeCommand: resumeCommand(req, this.runDir), ...extra };
  }

  close(): void {
    for (const d of this.detachers.splice(0)) d();
  }
}

/** The cells a resume must still run (all of them for a new run). */
async function pendingCells(cells: ExperimentCell[], runDir: string, resume: boolean): Promise<{ pending: ExperimentCell[]; kept: CellRecord[] }> {
  if (!resume) return { pending: cells, kept: [] };
  const pending: ExperimentCell[] = [];
  const kept: CellRecord[] = [];
  for (const c of cells) {
    const prev = await readCellRecord(runDir, c.path);
    if (needsRun(prev)) pending.push(c);
    else kept.push(prev!);
  }
  return { pending, kept };
}

/** Open (or reopen, for --resume) the run directory: a resume must ask what its run asked. */
async function openRun(config: ResolvedConfig, opts: ReproduceOptions, cells: ExperimentCell[]): Promise<{ run: LabRun; request: RunRequest }> {
  const request = runRequest(config, opts);
  const run = await LabRun.open(config, { resume: opts.resume, eventsFile: opts.eventsFile });
  if (opts.resume) {
    // Runs written before requests were recorded only say their profile.
    const recorded = run.manifest.request ?? { ...request, profile: run.manifest.profile };
    const why = resumeMismatch(recorded, request);
    if (why) {
      run.close();
      throw new LabError(`--resume ${run.runDir}: that run was asked for with ${why}`, ExitCode.usage, resumeCommand(recorded, run.runDir));
    }
  } else run.manifest.request = request;
  run.cells = cells;
  run.testbedFile = opts.testbedFile;
  if (opts.resume) run.accel = run.manifest.host.accel === 'unknown' ? undefined : run.manifest.host.accel;
  return { run, request };
}

/** The doctor's hard failures for this testbed stop the run before anything builds. */
async function doctorGate(config: ResolvedConfig, provider: TestbedProvider): Promise<void> {
  const checks = await doctor(config);
  const hard = checks.filter((c) => c.level === 'fail' && (!provider.doctor || provider.doctor.includes(c.name)));
  if (hard.length)
    throw new LabError(
      `doctor: ${hard.map((c) => `${c.name}: ${c.detail}`).join('; ')}`,
      ExitCode.infra,
      'kflex-lab doctor (prints the fix for each, and one apt-get line)',
    );
}

/** vms.server.memory_mb: auto is decided here, once, from this host and the heaps this run will need. */
function sizeForRun(run: LabRun, config: ResolvedConfig, provider: TestbedProvider, pending: ExperimentCell[], accel: Accel): ResolvedConfig {
  if (provider.kind !== 'vm') return config;
  const sizing = sizeServer(config.profile, thisHost(accel === 'kvm'), pending);
  run.manifest.server_memory = sizing;
  if (config.profile.vms.server.memory_mb === 'auto') run.say(`server VM: ${(sizing.memoryMb / 1024).toFixed(1)} GiB (${sizing.why})`);
  return sizedConfig(config, sizing.memoryMb);
}

function emitRunStart(run: LabRun, config: ResolvedConfig, opts: ReproduceOptions, pending: ExperimentCell[], accel: Accel): void {
  const p = config.profile;
  run.bus.emit({
    type: 'run-start',
    runDir: run.runDir,
    profile: config.profileName,
    cells: pending.length,
    experiments: [...new Set(pending.map((c) => c.experiment.id))],
    quick: !!opts.quick,
    resume: !!opts.resume,
    estimate: {
      stagesMin: (p.estimates.minutes.kernel ?? 0) + (p.estimates.minutes.image ?? 0),
      experimentsMin: estimateExperimentMinutes(config, pending, accel),
      diskGb: p.estimates.disk_gb,
      cpus: cpus().length,
    },
  });
}

/** Testbed up, capabilities probed once, every cell, testbed down (whatever happened). */
async function runOnTestbed(
  run: LabRun,
  provider: TestbedProvider,
  outputs: Record<string, StageOutput>,
  accel: Accel,
  sized: ResolvedConfig,
  cells: ExperimentCell[],
  resume: boolean,
): Promise<{ records: CellRecord[]; lost?: string }> {
  try {
    const t = await run.bringUp(provider, outputs, accel, sized);
    const caps = await probeCapabilities(t.server, t.client, EXPERIMENTS, {
      nativeXdp: t.link.nativeXdp,
      serverMemoryMb: t.serverMemoryMb,
      serverCpus: t.serverCpus,
      accel: t.accel,
      linkIf: t.link.serverIf,
    });
    run.manifest.capabilities = caps;
    await run.checkpoint();
    run.bus.emit({ type: 'capabilities', kernelRelease: caps.kernelRelease, btf: caps.btf, programs: caps.programs, la57: caps.la57 });
    return await runCells(cells, {
      runDir: run.runDir,
      server: t.server,
      client: t.client,
      serverIp: t.link.serverIp,
      linkIf: t.link.serverIf,
      caps,
      bus: run.bus,
      resume,
      health: () => t.health(),
      objects: testbedArtifacts(outputs).bpfObjects,
    });
  } finally {
    await run.tearDown(outputs);
  }
}

/**
 * The whole pipeline: doctor -> preflight (which cells this host runs, and whether any claim can be judged)
 * -> stages -> testbed up (with its native-XDP check) -> capability probe -> cells -> testbed down ->
 * summary, report, bundle. Ctrl-C, SIGTERM or a lost testbed at any point still leave nothing running and a
 * run that --resume finishes.
 */
export async function reproduce(config: ResolvedConfig, opts: ReproduceOptions): Promise<ReproduceResult> {
  const cells = planCells(config.profile, opts, EXPERIMENTS);
  if (!cells.length)
    throw new LabError(`no experiment selected (--only ${opts.only?.join(' ')}); known: ${EXPERIMENTS.map((e) => e.id).join(', ')}`, ExitCode.usage);
  // --testbed FILE, else the profile's testbed: section, else the VMs.
  const chosen = opts.testbed && opts.testbed !== 'hosts' ? { kind: opts.testbed } : chooseTestbed(config, opts.testbedFile);
  opts = { ...opts, testbed: chosen.kind, testbedFile: 'file' in chosen ? chosen.file : undefined };
  const provider = TESTBEDS[chosen.kind];
  if (!provider) throw new LabError(`unknown testbed '${opts.testbed}'; known: ${Object.keys(TESTBEDS).join(', ')}`, ExitCode.usage);
  const { run, request } = await openRun(config, opts, cells);
  let outputs: Record<string, StageOutput> = {};
  const stopSignals = onInterrupt(async (sig) => {
    run.bus.emit({ type: 'warn', scope: 'lab', message: `${sig}: stopping the testbed; finish this run later with: ${resumeCommand(request, run.runDir)}` });
    await run.tearDown(outputs);
    run.close();
  });
  try {
    // A killed run's reaper may still be tearing its testbed down: wait for it (bounded) or refuse, never race it.
    if (opts.resume) await awaitReapers(runVmDir(config, run.runDir), { say: (m) => run.say(m) });
    const { pending, kept } = await pendingCells(cells, run.runDir, !!opts.resume);
    if (opts.resume && !pending.length) {
      run.say(`nothing left to run in ${run.runDir}: all ${kept.length} cells are done (ok or skipped); nothing booted`);
      return await run.finish(kept, opts, { nothingToRun: true });
    }
    await doctorGate(config, provider);
    if (provider.kind === 'vm' && !opts.resume) preflight(config, pending, thisHost(await kvmLikely()), { anyway: opts.anyway, say: (l) => run.say(l) });
    // The manifest exists from the start, so even a run interrupted while building can be resumed.
    await run.checkpoint();
    run.say(`profile ${config.profileName} -> ${run.runDir}`);
    outputs = await buildTargets(config, provider.targets, run.bus);
    run.recordStages(outputs);
    await run.checkpoint();
    const accel = await provider.accel(config, testbedArtifacts(outputs));
    run.accel = accel.accel;
    run.bus.emit({ type: 'accel', ...accel });
    const sized = sizeForRun(run, config, provider, pending, accel.accel);
    emitRunStart(run, config, opts, pending, accel.accel);
    const { records, lost } = await runOnTestbed(run, provider, outputs, accel.accel, sized, cells, !!opts.resume);
    return await run.finish(records, opts, { lost });
  } finally {
    stopSignals();
    run.close();
  }
}

/** Whether /dev/kvm is there to try: the preflight assumes KVM from it (the run probes with the real kernel). */
async function kvmLikely(): Promise<boolean> {
  return existsSync('/dev/kvm');
}
