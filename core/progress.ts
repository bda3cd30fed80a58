import type { EventBus, LabEvent } from './events.js';
import { fmtSeconds } from './duration.js';

type LogUpdate = typeof import('log-update')['logUpdateStderr'];

const stamp = () => new Date().toISOString().slice(11, 19);

/** Plain timestamped lines: for logs, pipes and CI. Output lines of builds are not echoed (they are in the log). */
export function plainView(bus: EventBus, write: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): () => void {
  return bus.on((e) => {
    const msg = describe(e);
    if (msg) write(`[${stamp()}] ${msg}`);
  });
}

/** Interactive view: one live line per running stage with elapsed time and its last log line. */
export function ttyView(bus: EventBus): () => void {
  const active = new Map<string, { started: number; last: string }>();
  // log-update is only needed on a terminal: loaded here, not at start; until it is, events print as plain lines.
  let logUpdate: LogUpdate | undefined;
  void import('log-update').then((m) => (logUpdate = m.logUpdateStderr));
  const render = () => {
    if (!logUpdate) return;
    const cols = process.stderr.columns ?? 100;
    logUpdate(
      [...active.entries()]
        .map(([s, a]) => `  ${s.padEnd(8)} ${fmtSeconds((Date.now() - a.started) / 1000).padStart(6)}  ${a.last}`.slice(0, cols - 1))
        .join('\n'),
    );
  };
  const timer = setInterval(render, 250);
  timer.unref();
  const off = bus.on((e) => {
    if (e.type === 'stage-start') active.set(e.stage, { started: Date.now(), last: '' });
    if (e.type === 'line') {
      const a = active.get(e.stage);
      if (a) a.last = e.line.trim();
      return;
    }
    if (e.type === 'stage-done' || e.type === 'stage-failed' || e.type === 'stage-cached') active.delete(e.stage);
    const msg = describe(e);
    if (msg) {
      logUpdate?.clear();
      process.stderr.write(`[${stamp()}] ${msg}\n`);
    }
    render();
  });
  return () => {
    clearInterval(timer);
    logUpdate?.clear();
    off();
  };
}

export function describe(e: LabEvent): string | undefined {
  switch (e.type) {
    case 'stage-start':
      return `${e.stage}: building (${e.fingerprint}), log ${e.logPath}`;
    case 'stage-cached':
      return `${e.stage}: cached (${e.fingerprint})`;
    case 'stage-done':
      return `${e.stage}: done in ${fmtSeconds(e.seconds)}`;
    case 'stage-failed':
      return (
        `${e.stage}: FAILED after ${fmtSeconds(e.seconds)}: ` +
        `${e.error.split('\n')[0]}\n${e.tail.map((l) => `    | ${l}`).join('\n')}\n    log: ${e.logPath}`
      );
    case 'step':
      return `${e.scope}: ${e.message}`;
    case 'warn':
      return `${e.scope}: WARNING: ${e.message}`;
    case 'line':
      return undefined;
    case 'run-start':
      return (
        `run ${e.runDir} (profile ${e.profile}): ${e.cells} cells in ${e.experiments.length} ` +
        `experiments${e.quick ? ' (--quick)' : ''}${e.resume ? ', resuming' : ''}; estimate on ` +
        `${e.estimate.cpus} CPUs: stages up to ~${Math.round(e.estimate.stagesMin)} min when not ` +
        `cached, experiments ~${Math.ceil(e.estimate.experimentsMin)} min; disk ` +
        `~${e.estimate.diskGb} GiB`
      );
    case 'accel':
      return e.accel === 'native' ? `accel: real machines, no emulation (${e.why})` : `accel: the VMs will run under ${e.accel.toUpperCase()} (${e.why})`;
    case 'testbed-up':
      return `testbed: ${e.kind} up in ${fmtSeconds(e.seconds)}, accel ${e.accel}, link ${e.link}, native XDP ${e.nativeXdp ? 'verified' : 'not verified'}`;
    case 'capabilities':
      return `server kernel ${e.kernelRelease}: ${capabilityLine(e)}`;
    case 'cell-start':
      return `[${e.index}/${e.total}] ${e.experiment}/${e.variant} ${e.params} rep ${e.rep}: running`;
    case 'cell':
      return (
        `[${e.index}/${e.total}] ${e.experiment}/${e.variant} ${e.params} rep ${e.rep}: ` +
        `${e.status}${e.headline ? ` ${e.headline.metric}=${e.headline.value}` : ''}${e.reason ? ` (${e.reason.split('\n')[0]})` : ''}`
      );
    case 'testbed-lost':
      return `TESTBED LOST: ${e.why}`;
    case 'testbed-down':
      return `testbed: ${e.kind} stopped`;
    case 'run-done':
      return (
        `run ${e.nothingToRun ? 'had nothing left to run' : 'done'}: ${e.counts.ok} ok, ` +
        `${e.counts.failed} failed, ${e.counts.skipped} skipped in ${fmtSeconds(e.seconds)}; exit ${e.exitCode}`
      );
  }
}

export function attachView(bus: EventBus): () => void {
  return process.stderr.isTTY && process.env.CI !== 'true' ? ttyView(bus) : plainView(bus);
}

/** The probed capabilities in one line: BTF names, then programs (by their last path part), then LA57. */
export function capabilityLine(e: { btf?: Record<string, boolean>; programs: Record<string, boolean>; la57?: boolean }): string {
  const yn = (b: boolean) => (b ? 'yes' : 'no');
  const btf = e.btf ? Object.entries(e.btf).map(([k, v]) => `${k} ${yn(v)}`) : ['no BTF'];
  const progs = Object.entries(e.programs).map(([k, v]) => `${k.replace(/^(server|client):(.*\/)?/, '')} ${yn(v)}`);
  return [...btf, ...progs, ...(e.la57 === undefined ? [] : [`LA57 ${yn(e.la57)}`])].join(', ');
}
