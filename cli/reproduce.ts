import { join, basename } from 'node:path';
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import type { StageOutput } from '../core/stage.js';
import { cpus } from 'node:os';
import type { ResolvedConfig } from '../core/config.js';
import { EventBus } from '../core/events.js';
import { attachView, fmtSeconds } from '../core/progress.js';
import { LabError, ExitCode } from '../core/errors.js';
import { runDoctor } from '../core/doctor.js';
import { createRunDir, hostFacts, buildManifest, writeManifest, amendManifest, readManifest } from '../core/rundir.js';
import { writeBundle } from '../core/bundle.js';
import { planCells, probeCapabilities, runCells, writeSummary, type CellRecord } from '../experiments/runner.js';
import { EXPERIMENTS } from '../experiments/index.js';
import { writeReport, verdictTable } from '../report/report.js';
import { buildTargets } from './common.js';
import { bootCluster, teardownOnSignal } from './vm-commands.js';

export interface ExperimentRunOptions {
  only?: string[];
  quick?: boolean;
  /** An existing run directory to finish (only missing or failed cells run). */
  resume?: string;
  report?: boolean;
  bundle?: boolean;
}

/** Raw logs into the run dir: the guests' serial consoles and each stage's build log. */
async function keepLogs(runDir: string, vmDir: string, outputs: Record<string, StageOutput>): Promise<void> {
  const logs = join(runDir, 'logs');
  await mkdir(logs, { recursive: true });
  for (const role of ['server', 'client']) await copyFile(join(vmDir, `${role}.serial.log`), join(logs, `${role}.serial.log`)).catch(() => undefined);
  for (const [id, out] of Object.entries(outputs)) await copyFile(join(out.dir, 'build.log'), join(logs, `${id}.build.log`)).catch(() => undefined);
}

/** Minutes the experiments of a selection take on this host kind (for the preamble and `plan`). */
export function estimateExperimentMinutes(config: ResolvedConfig, opts: ExperimentRunOptions, accel: 'kvm' | 'tcg'): number {
  // Without KFlex in the image every KFlex cell is skipped at once: it costs nothing.
  const cells = planCells(config.profile, opts).filter((c) => config.profile.image.kflex || !c.variant.requires.includes('ffkx'));
  return cells.reduce((a, c) => a + c.experiment.estimateCellSeconds(c.settings, accel), 0) / 60;
}

/**
 * The whole pipeline: doctor, stages, VMs + native-XDP check, experiments, teardown, report, bundle.
 * Ctrl-C at any point tears the VMs down and leaves a run that --resume finishes.
 */
export async function runExperiments(config: ResolvedConfig, opts: ExperimentRunOptions): Promise<{ runDir: string; records: CellRecord[]; exitCode: number }> {
  const bus = new EventBus();
  const say = (message: string) => bus.emit({ type: 'step', scope: 'lab', message });
  const started = Date.now();
  const runDir = opts.resume ?? (await createRunDir(config.profileName));
  if (opts.resume && !existsSync(join(opts.resume, 'manifest.json'))) throw new LabError(`--resume ${opts.resume}: not a run directory (no manifest.json)`, ExitCode.usage);
  const cells = planCells(config.profile, opts);
  if (!cells.length) throw new LabError(`no experiment selected (--only ${opts.only?.join(' ')}); known: ${EXPERIMENTS.map((e) => e.id).join(', ')}`, ExitCode.usage);

  const checks = await runDoctor(config.profile, { cacheDir: config.cacheRoot });
  const hard = checks.filter((c) => c.level === 'fail');
  if (hard.length) throw new LabError(`doctor: ${hard.map((c) => `${c.name}: ${c.detail}`).join('; ')}; run 'kflex-lab doctor' for the fixes`, ExitCode.infra);
  const accelGuess = checks.find((c) => c.name === 'kvm')?.level === 'ok' ? 'kvm' : 'tcg';
  const p = config.profile;
  console.error(
    `kflex-lab: profile ${config.profileName} -> ${runDir}\n` +
      `  ${cells.length} cells in ${new Set(cells.map((c) => c.experiment.id)).size} experiments${opts.quick ? ' (--quick)' : ''}; VMs under ${accelGuess.toUpperCase()}\n` +
      `  estimate on ${cpus().length} CPUs: stages up to ~${Math.round((p.estimates.minutes.kernel ?? 0) + (p.estimates.minutes.image ?? 0))} min when not cached, experiments ~${Math.ceil(estimateExperimentMinutes(config, opts, accelGuess))} min; disk ~${p.estimates.disk_gb} GiB`,
  );
  const detach = attachView(bus);
  const vmDir = join(config.cacheRoot, 'vms', basename(runDir));
  const stopHandlers = teardownOnSignal(vmDir, `finish this run later with: kflex-lab reproduce --resume ${runDir}`);
  try {
    // The manifest exists from the start, so even a run interrupted while building can be resumed.
    if (!opts.resume) await writeManifest(runDir, buildManifest(config, await hostFacts(), {}));
    const outputs = await buildTargets(config, ['llvm', 'kernel', 'image']);
    await amendManifest(runDir, (m) => {
      m.stages = buildManifest(config, m.host, outputs).stages;
    });
    const { cluster, xdp } = await bootCluster(config, outputs, vmDir, 'run', bus);
    let records: CellRecord[];
    try {
      await amendManifest(runDir, (m) => {
        m.host.accel = cluster.state.accel;
        m.link = `${cluster.state.link.backend}${cluster.state.link.queues ? ` (${cluster.state.link.queues} queues${cluster.state.link.vhost ? ', vhost-net' : ''})` : ''}`;
        m.xdp_check = xdp;
      });
      const caps = await probeCapabilities(cluster.server.host, cluster.client.host, { nativeXdp: xdp.mode === 'driver', serverMemoryMb: p.vms.server.memory_mb, serverCpus: p.vms.server.cpus, accel: cluster.state.accel });
      await amendManifest(runDir, (m) => {
        m.capabilities = caps;
      });
      say(`guest kernel ${caps.kernelRelease}: KFlex ${caps.kflexKernel ? 'yes' : 'no'}, ffkx ${caps.ffkx ? 'yes' : 'no'}, memtier ${caps.memtier ? 'yes' : 'no'}`);
      records = await runCells(cells, { runDir, server: cluster.server.host, client: cluster.client.host, serverIp: cluster.server.linkIp, caps, bus, resume: !!opts.resume });
    } finally {
      await cluster.down();
      say('VMs stopped');
      await keepLogs(runDir, vmDir, outputs);
    }
    const rows = await writeSummary(runDir, records);
    const failed = records.filter((r) => r.status === 'failed').length;
    if (opts.report !== false) {
      const manifest = await readManifest(runDir);
      const { verdicts } = await writeReport({ runDir, manifest, rows, records }, Object.fromEntries(EXPERIMENTS.map((e) => [e.id, e.headline])));
      detach();
      console.log(`\nclaims:\n${verdictTable(verdicts)}`);
      console.log(`\nreport: ${join(runDir, 'report.html')} (and report.md)`);
    }
    if (opts.bundle !== false) console.log(`bundle: ${await writeBundle(runDir)}`);
    const counts = ['ok', 'failed', 'skipped'].map((s) => `${records.filter((r) => r.status === s).length} ${s}`).join(', ');
    console.log(`cells: ${counts}; ${fmtSeconds((Date.now() - started) / 1000)} in all`);
    return { runDir, records, exitCode: failed ? ExitCode.checkFailed : ExitCode.ok };
  } finally {
    detach();
    stopHandlers();
  }
}
