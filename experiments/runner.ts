import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ARTIFACT_HEAPS, type Profile, type ExperimentSettings } from '../core/config.js';
import type { EventBus } from '../core/events.js';
import type { Host } from '../core/host.js';
import { LINK_IF, KFLEX_GUEST_DIR } from '../core/guest.js';
import type { Capabilities, CellStatus, Experiment, Params, ParamValue, VariantDef, CellContext, CellPhase } from './types.js';
import type { Metrics } from './parsers.js';
import type { Accel } from '../core/testbed.js';
import { resetHosts } from './server.js';
import { waitUntil } from '../core/retry.js';
import { LabError, ExitCode } from '../core/errors.js';
import { heapPlacement, heapVmMemoryMb } from './heaps.js';
import { EXPERIMENTS } from './index.js';

/** One point of the grid: experiment x variant x parameters x repetition. */
export interface ExperimentCell {
  experiment: Experiment;
  variant: VariantDef;
  params: Params;
  rep: number;
  settings: ExperimentSettings;
  /** runs/<exp>/<variant>/<params>/rep-<n>, relative to the run dir. */
  path: string;
  /** The KFlex heap (GiB) this cell's server allocates, after the profile's kflex.heap_gib. */
  heapGiB?: number;
}

export interface CellRecord {
  experiment: string;
  variant: string;
  params: Params;
  rep: number;
  status: CellStatus;
  reason?: string;
  metrics?: Metrics;
  deviations?: string[];
  started: string;
  seconds: number;
  /** Never ran because the testbed was gone: --resume runs it. */
  rerun?: boolean;
  /** The KFlex heap this cell's server allocates, against the artifact's size. */
  heap?: { gib: number; artifact_gib: number; scaled: boolean };
  /** Seconds in each phase of the cell (CELL_PHASES), in the order first entered. */
  phases?: Partial<Record<CellPhase, number>>;
  /** Everything but warm-up and measurement: what the harness costs per cell. */
  fixed_seconds?: number;
}

/** Marks of the phases a cell enters, turned into seconds per phase at the end. */
export function phaseClock(start: number) {
  const marks: Array<{ name: CellPhase; at: number }> = [];
  return {
    mark(name: CellPhase, at = Date.now()): void {
      // A mark placed after the fact (a server's ready time by the guest's clock) never goes before the last one.
      marks.push({ name, at: Math.max(at, marks.at(-1)?.at ?? start, start) });
    },
    seconds(end = Date.now()): { phases: Partial<Record<CellPhase, number>>; fixed_seconds: number } {
      const phases: Partial<Record<CellPhase, number>> = {};
      marks.forEach((m, i) => {
        const until = Math.max(m.at, marks[i + 1]?.at ?? end);
        phases[m.name] = Math.round(((phases[m.name] ?? 0) + (until - m.at) / 1000) * 1000) / 1000;
      });
      const total = (end - start) / 1000;
      return { phases, fixed_seconds: Math.round((total - (phases['warm-up'] ?? 0) - (phases.measurement ?? 0)) * 1000) / 1000 };
    },
  };
}

/** Apply `--quick`: fewer repetitions, shorter runs, the quick grid's values for the keys it names. */
export function effectiveSettings(s: ExperimentSettings, quick: boolean): ExperimentSettings {
  if (!quick) return s;
  return {
    ...s,
    repetitions: s.quick.repetitions ?? 1,
    duration_s: s.quick.duration_s ?? s.duration_s,
    grid: { ...s.grid, ...(s.quick.grid ?? {}) },
    warmup_s: 0,
  };
}

export function gridPoints(grid: Record<string, ParamValue[]>): Params[] {
  let points: Params[] = [{}];
  for (const [k, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

export function paramsSlug(p: Params): string {
  const s = Object.entries(p)
    .map(([k, v]) => `${k}=${String(v).replace(/[^A-Za-z0-9.]+/g, '-')}`)
    .join(',');
  return s || 'default';
}

/** Every cell of the profile's experiments (filtered by --only), in run order. */
export function planCells(profile: Profile, opts: { only?: string[]; quick?: boolean } = {}, experiments = EXPERIMENTS): ExperimentCell[] {
  const cells: ExperimentCell[] = [];
  for (const exp of experiments) {
    const raw = profile.experiments[exp.id];
    if (!raw?.enabled) continue;
    if (opts.only?.length && !opts.only.includes(exp.id)) continue;
    const settings = effectiveSettings(raw, !!opts.quick);
    for (const vid of settings.variants) {
      const variant = exp.variants.find((v) => v.id === vid);
      if (!variant) throw new Error(`experiments.${exp.id}.variants: unknown variant '${vid}'; known: ${exp.variants.map((v) => v.id).join(', ')}`);
      for (const params of gridPoints(settings.grid))
        for (let rep = 1; rep <= settings.repetitions; rep++)
          cells.push({
            experiment: exp,
            variant,
            params,
            rep,
            settings,
            path: join('runs', exp.id, vid, paramsSlug(params), `rep-${rep}`),
            heapGiB: effectiveHeapGiB(variant, profile),
          });
    }
  }
  return cells;
}

/** The heap a variant's server allocates under this profile (its kflex.heap_gib may scale the artifact's). */
export function effectiveHeapGiB(variant: VariantDef, profile: Pick<Profile, 'kflex'>): number | undefined {
  if (variant.heap) return profile.kflex.heap_gib[variant.heap];
  return variant.heapGiB;
}

/** Why a variant cannot run on these guests, or undefined when it can. Never a failure: a skip with its reason. */
export function unmetRequirement(variant: VariantDef, caps: Capabilities, heapGiB = variant.heapGiB): string | undefined {
  for (const r of variant.requires) {
    if (r === 'kflex-kernel' && !caps.kflexKernel) return caps.kflexKernelWhy;
    if (r === 'ffkx' && !caps.ffkx) return caps.ffkxWhy;
    if (r === 'native-xdp' && !caps.nativeXdp) return 'native XDP is not available on the server link NIC';
    if (r === 'bmc' && !caps.bmc) return caps.bmcWhy;
    if (r === 'memtier' && !caps.memtier)
      return (
        "memtier_benchmark is not in the client image (image.memtier's source was unreachable): " +
        'redis-benchmark cannot stand in, it blocks forever on its startup CONFIG GET, which ffkx ' +
        'never answers (its parser accepts only the offloaded commands)'
      );
  }
  if (heapGiB) return heapUnfit(heapGiB, caps);
  return undefined;
}

/** Why a heap of heapGiB cannot be used on this server, or undefined when it can: RAM first, then placement. */
export function heapUnfit(heapGiB: number, caps: Pick<Capabilities, 'serverMemoryMb' | 'la57'>): string | undefined {
  // Every heap map is allocated whole at map creation (ffkx's pools live inside it), plus the guest's own needs.
  const needMb = heapVmMemoryMb(heapGiB);
  if (caps.serverMemoryMb < needMb)
    return (
      `needs a ${heapGiB} GiB KFlex heap (allocated whole at map creation) + the guest, its ` +
      `struct pages and page tables (~${Math.ceil(needMb / 1024)} GiB); the server has ` +
      `${(caps.serverMemoryMb / 1024).toFixed(1)} GiB: raise vms.server.memory_mb, or scale the ` +
      `heaps down (a recorded deviation)`
    );
  if (!heapPlacement(heapGiB, caps.la57).fits)
    return (
      `a ${heapGiB} GiB heap cannot be placed without 5-level paging: libbpf maps it at ` +
      `roundup(1 << 48, size) and steps down at most 1024 times, and the server's kernel runs ` +
      `with 4-level paging (no la57 in /proc/cpuinfo: the CPU model or the kernel lacks LA57)`
    );
  return undefined;
}

/**
 * Everything the server is asked, in one shell (one SSH round trip): $1 the ffkx path, $2 the link NIC
 * ($3 another BTF file, for tests).
 * The KFlex heap map type is looked up in the BTF's string table (type names are NUL-separated strings
 * there), not in a text dump of the whole BTF, which takes seconds under TCG. Linux clears the la57 flag
 * when it runs with 4-level paging, so the flag means 5-level paging is active.
 */
export const SERVER_PROBE_SCRIPT = `echo "release=$(uname -r)"
btf="\${3:-/sys/kernel/btf/vmlinux}"
if [ -r "$btf" ]; then echo "heap=$(tr '\\000' '\\n' < "$btf" | grep -cx BPF_MAP_TYPE_HEAP)"; else echo heap=nobtf; fi
if [ -x "$1" ]; then echo ffkx=yes; else echo ffkx=no; fi
if grep -qw la57 /proc/cpuinfo; then echo la57=yes; else echo la57=no; fi
echo "ifindex=$(cat "/sys/class/net/$2/ifindex")"`;
export const CLIENT_PROBE_SCRIPT = 'if command -v memtier_benchmark >/dev/null; then echo memtier=yes; else echo memtier=no; fi';

/** key=value lines, as the probe scripts print them. */
export function parseProbeLines(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .split('\n')
      .map((l) => l.match(/^([a-z0-9_]+)=(.*)$/))
      .filter((m): m is RegExpMatchArray => !!m)
      .map((m) => [m[1]!, m[2]!.trim()]),
  );
}

/** Probe the guests once, each in one round trip and both at once: KFlex heap map type in the kernel's BTF, ffkx, memtier, LA57, link ifindex. */
export async function probeCapabilities(
  server: Host,
  client: Host,
  facts: { nativeXdp: boolean; serverMemoryMb: number; serverCpus: number; accel: 'kvm' | 'tcg' | 'native'; linkIf?: string },
): Promise<Capabilities> {
  const linkIf = facts.linkIf ?? LINK_IF;
  const [s, c] = await Promise.all([
    server.exec(['sh', '-c', SERVER_PROBE_SCRIPT, 'probe', `${KFLEX_GUEST_DIR}/ffkx`, linkIf], { allowFailure: true, timeoutMs: 120_000 }),
    client.exec(['sh', '-c', CLIENT_PROBE_SCRIPT], { allowFailure: true, timeoutMs: 60_000 }),
  ]);
  const sv = parseProbeLines(s.stdout);
  const cv = parseProbeLines(c.stdout);
  const release = sv.release ?? '';
  const ifindex = Number(sv.ifindex);
  if (!release || !Number.isInteger(ifindex) || ifindex <= 0 || !cv.memtier)
    throw new LabError(
      `capability probe: the ${!cv.memtier ? 'client' : 'server'} did not answer it (exit ` +
        `${!cv.memtier ? c.code : s.code}): ` +
        `${(!cv.memtier ? c.stderr : s.stderr).trim().split('\n').slice(-3).join(' / ') || 'no output'}` +
        `${release && !(ifindex > 0) ? `; no ifindex for ${linkIf}` : ''}`,
      ExitCode.infra,
    );
  const kflexKernel = (Number(sv.heap) || 0) > 0;
  const kflexKernelWhy =
    sv.heap === 'nobtf'
      ? `guest kernel ${release} has no BTF (/sys/kernel/btf/vmlinux): cannot probe for KFlex`
      : `guest kernel ${release} is not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF (the smoke profile builds Debian's kernel; use the paper profile)`;
  return {
    kernelRelease: release,
    kflexKernel,
    kflexKernelWhy,
    ffkx: sv.ffkx === 'yes',
    ffkxWhy: `${KFLEX_GUEST_DIR}/ffkx is not in the image (image.kflex is false in this profile)`,
    nativeXdp: facts.nativeXdp,
    serverMemoryMb: facts.serverMemoryMb,
    serverCpus: facts.serverCpus,
    memtier: cv.memtier === 'yes',
    la57: sv.la57 === 'yes',
    accel: facts.accel,
    linkIfindex: ifindex,
    bmc: false,
    bmcWhy: 'the BMC baseline is not built by this version of the lab (no BMC stage); see docs/ARCHITECTURE.md',
  };
}

export async function readCellRecord(runDir: string, path: string): Promise<CellRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(runDir, path, 'status.json'), 'utf8')) as CellRecord;
  } catch {
    return undefined;
  }
}

/**
 * How long a cell may take in all: twice its estimate plus two minutes, plus the time a KFlex server
 * needs to fill its heap before its ready line. Past it the cell fails and the run goes on.
 */
export function cellBoundSeconds(cell: Pick<ExperimentCell, 'experiment' | 'variant' | 'settings' | 'heapGiB'>, accel: Accel): number {
  const est = cell.experiment.estimateCellSeconds(cell.settings, accel);
  const heapFill = cell.heapGiB ? (accel === 'tcg' ? 1800 : 600) : 0;
  return Math.ceil(2 * est + 120 + heapFill);
}

/**
 * The kernel log of one cell, by /dev/kmsg sequence number rather than by line count: the printk ring
 * wraps on a busy run (a Zipfian ffkx-bench run logs ~1,240 records), and a wrap must be said, not hidden.
 * Records print as dmesg does ("[seconds] message"); a gap since `from` is reported on stderr.
 */
export const KMSG_SLICE_AWK =
  `BEGIN { first = -1 }
/^[0-9]/ {
  split($0, h, ";"); split(h[1], f, ",")
  if (f[2] + 0 <= from) next
  if (first < 0) first = f[2] + 0
  printf "[%12.6f] %s\\n", f[3] / 1e6, substr($0, length(h[1]) + 2)
}
END { if (first > from + 1) print "kflex-lab: kernel log records " from + 1 "-" first - 1 ` +
  `" were overwritten before they were read (the ring buffer wrapped)" > "/dev/stderr" }`;

/** The last kernel log sequence number now, or -1 when the log cannot be read. */
export async function kmsgSeq(host: Host): Promise<number> {
  const r = await host
    .exec(['sh', '-c', "dd if=/dev/kmsg iflag=nonblock bs=8192 2>/dev/null | awk -F'[,;]' '/^[0-9]/{s=$2} END{print s+0}'"], {
      allowFailure: true,
      timeoutMs: 60_000,
    })
    .catch(() => undefined);
  const n = Number(r?.stdout.trim());
  return r?.code === 0 && Number.isFinite(n) ? n : -1;
}

/** The kernel log records after sequence number `from`, formatted as dmesg prints them. */
export async function kmsgSince(host: Host, from: number): Promise<{ text: string; gap?: string }> {
  const r = await host.exec(['sh', '-c', 'dd if=/dev/kmsg iflag=nonblock bs=8192 2>/dev/null | awk -v from="$1" "$2"', 'kmsg', String(from), KMSG_SLICE_AWK], {
    allowFailure: true,
    timeoutMs: 60_000,
  });
  return { text: r.stdout, gap: r.stderr.trim() || undefined };
}

/** A variant that reads another cell's log needs that cell to have run (ok or failed) in this run first. */
export function missingInput(cell: ExperimentCell, records: CellRecord[]): string | undefined {
  const src = cell.variant.logOf;
  if (!src) return undefined;
  const producers = records.filter((r) => r.experiment === src.experiment && r.variant === src.variant);
  if (!producers.length)
    return `reads the kernel log of ${src.experiment}/${src.variant}, which is not in this run (add --only ${src.experiment} ${cell.experiment.id})`;
  if (producers.every((r) => r.status === 'skipped'))
    return `reads the kernel log of ${src.experiment}/${src.variant}, which was skipped: ${producers[0]!.reason}`;
  return undefined;
}

/** What the cells run on: the testbed's two hosts and link, and how to tell that it is gone. */
export interface CellEnv {
  runDir: string;
  server: Host;
  client: Host;
  serverIp: string;
  linkIf: string;
  caps: Capabilities;
  bus: EventBus;
  resume?: boolean;
  /** undefined while the testbed is alive, else why it is gone; polled during every cell. */
  health?: () => Promise<string | undefined>;
  /** How often health is polled (ms). */
  healthIntervalMs?: number;
}

/** Whether resume must run this cell again: it failed, or never ran because its testbed was gone. */
export function needsRun(prev: CellRecord | undefined): boolean {
  return !prev || prev.status === 'failed' || !!prev.rerun;
}

/** health()'s reason if the testbed is gone now or within `ms`, else undefined. */
async function lostWithin(health: () => Promise<string | undefined>, ms: number): Promise<string | undefined> {
  let why: string | undefined;
  await waitUntil(
    async () => {
      why = await health().catch(() => undefined);
      return !!why;
    },
    ms,
    200,
  );
  return why;
}

/** Resolve with the reason as soon as health() reports the testbed gone; `stop()` ends the polling. */
function watchHealth(health: () => Promise<string | undefined>, intervalMs: number): { lost: Promise<string>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const lost = new Promise<string>((resolve) => {
    const tick = async () => {
      if (stopped) return;
      const why = await health().catch(() => undefined);
      if (why) return resolve(why);
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    timer = setTimeout(tick, intervalMs);
  });
  return {
    lost,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * Run the cells one by one. A failed cell keeps its logs and the run goes on; with resume, cells already
 * ok or skipped are kept. When the testbed dies the running cell fails with the reason, the rest are
 * skipped with it (and marked for --resume), and `lost` says why.
 */
export async function runCells(cells: ExperimentCell[], env: CellEnv): Promise<{ records: CellRecord[]; lost?: string }> {
  const records: CellRecord[] = [];
  let lost: string | undefined;
  let i = 0;
  for (const cell of cells) {
    i++;
    const dir = join(env.runDir, cell.path);
    const event = (r: CellRecord | (Omit<CellRecord, 'status'> & { status: 'kept' }), kept?: CellRecord) => {
      const metric = cell.experiment.headline;
      const value = (kept ?? (r as CellRecord)).metrics?.[metric];
      env.bus.emit({
        type: 'cell',
        index: i,
        total: cells.length,
        experiment: cell.experiment.id,
        variant: cell.variant.id,
        params: paramsSlug(cell.params),
        rep: cell.rep,
        status: r.status,
        headline: value === undefined ? undefined : { metric, value },
        reason: r.reason,
        seconds: r.seconds,
      });
    };
    if (env.resume) {
      const prev = await readCellRecord(env.runDir, cell.path);
      if (prev && !needsRun(prev)) {
        records.push(prev);
        event({ ...prev, status: 'kept' }, prev);
        continue;
      }
    }
    await mkdir(dir, { recursive: true });
    const started = Date.now();
    // A KFlex cell records its heap, and whether it is the artifact's size or a scaled one (a deviation).
    const artifactHeap = cell.variant.heap ? ARTIFACT_HEAPS[cell.variant.heap] : cell.variant.heapGiB;
    const heap = cell.heapGiB
      ? { heap: { gib: cell.heapGiB, artifact_gib: artifactHeap ?? cell.heapGiB, scaled: !!artifactHeap && cell.heapGiB !== artifactHeap } }
      : {};
    const base = { experiment: cell.experiment.id, variant: cell.variant.id, params: cell.params, rep: cell.rep, started: new Date().toISOString(), ...heap };
    let record: CellRecord;
    const skip = lost
      ? `not run: the testbed was lost during an earlier cell (${lost.split('\n')[0]}); finish with --resume`
      : (unmetRequirement(cell.variant, env.caps, cell.heapGiB) ?? missingInput(cell, records));
    if (skip) {
      record = { ...base, status: 'skipped', reason: skip, seconds: 0, ...(lost ? { rerun: true } : {}) };
    } else {
      env.bus.emit({
        type: 'cell-start',
        index: i,
        total: cells.length,
        experiment: cell.experiment.id,
        variant: cell.variant.id,
        params: paramsSlug(cell.params),
        rep: cell.rep,
      });
      const watch = env.health ? watchHealth(env.health, env.healthIntervalMs ?? 1000) : undefined;
      const dead = watch?.lost.then((why) => ({ dead: why })) ?? new Promise<never>(() => {});
      const boundS = cellBoundSeconds(cell, env.caps.accel);
      let boundTimer: NodeJS.Timeout | undefined;
      const overdue = new Promise<{ overdue: true }>((resolve) => {
        boundTimer = setTimeout(() => resolve({ overdue: true }), boundS * 1000);
      });
      const clock = phaseClock(started);
      clock.mark('server-start');
      try {
        const logFrom = await kmsgSeq(env.server);
        const ctx = cellContext(cell, dir, env, boundS * 1000, clock.mark);
        const work = cell.experiment.runCell(ctx, cell.variant).then(
          (out) => ({ out }),
          (e: unknown) => ({ error: e as Error }),
        );
        const r = await Promise.race([work, dead, overdue]);
        if ('overdue' in r) {
          record = {
            ...base,
            status: 'failed',
            reason: `exceeded its bound of ${boundS} s (2 x its estimate + 120 s${cell.heapGiB ? ' + the heap fill' : ''}); its processes were stopped`,
            seconds: (Date.now() - started) / 1000,
          };
          await resetHosts(env.server, env.client, env.linkIf);
        } else if ('dead' in r) {
          lost = r.dead;
          record = { ...base, status: 'failed', reason: `testbed lost during this cell: ${r.dead}`, seconds: (Date.now() - started) / 1000 };
        } else if ('error' in r) {
          // A cell can fail because its machine just died: say so rather than quote a broken pipe. An SSH
          // failure can beat the process's exit by a moment, so those get a short look before they count.
          const sshLost = /exit(ed)? 255|Connection (refused|reset|closed)|closed by remote/i.test(r.error.message);
          const why = env.health ? await lostWithin(env.health, sshLost ? 3000 : 0) : undefined;
          if (why) lost = why;
          record = {
            ...base,
            status: 'failed',
            reason: why ? `testbed lost during this cell: ${why}\n(the cell said: ${r.error.message.split('\n')[0]})` : r.error.message,
            seconds: (Date.now() - started) / 1000,
          };
        } else {
          for (const [name, content] of Object.entries(r.out.files ?? {})) await writeFile(join(dir, name), content);
          await writeFile(join(dir, 'metrics.json'), `${JSON.stringify(r.out.metrics, null, 2)}\n`);
          record = { ...base, status: 'ok', metrics: r.out.metrics, deviations: r.out.deviations, seconds: (Date.now() - started) / 1000 };
        }
        if (!lost) {
          clock.mark('collection');
          // The server's kernel log of this cell (experiment 5 reads experiment 4's).
          // Without a starting sequence number a slice would hold the whole boot log (and claim a wrap).
          if (logFrom < 0) await writeFile(join(dir, 'kernel.log'), 'kflex-lab: the kernel log could not be read at the start of this cell: not sliced\n');
          else {
            const slice = await kmsgSince(env.server, logFrom);
            await writeFile(join(dir, 'kernel.log'), slice.gap ? `${slice.gap}\n${slice.text}` : slice.text);
            if (slice.gap) record.deviations = [...(record.deviations ?? []), slice.gap];
          }
        }
      } catch (e) {
        record = { ...base, status: 'failed', reason: (e as Error).message, seconds: (Date.now() - started) / 1000 };
      } finally {
        watch?.stop();
        clearTimeout(boundTimer);
      }
      const end = Date.now();
      record = { ...record, seconds: (end - started) / 1000, ...clock.seconds(end) };
      if (lost) env.bus.emit({ type: 'testbed-lost', why: lost });
    }
    await writeFile(join(dir, 'status.json'), `${JSON.stringify(record, null, 2)}\n`);
    records.push(record);
    event(record);
  }
  return { records, lost };
}

function cellContext(cell: ExperimentCell, dir: string, env: CellEnv, boundMs: number, phase: CellContext['phase']): CellContext {
  return {
    phase,
    boundMs,
    server: env.server,
    client: env.client,
    serverIp: env.serverIp,
    linkIf: env.linkIf,
    params: cell.params,
    settings: cell.settings,
    rep: cell.rep,
    cellDir: dir,
    caps: env.caps,
    runDir: env.runDir,
    log: (line) => env.bus.emit({ type: 'line', stage: 'experiments', line }),
    async exec(host, name, argv, opts = {}) {
      // The exact command, on which host, is kept beside its output.
      await writeFile(
        join(dir, `${name}.cmd`),
        `${host.name}$ ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}\n`,
      );
      const r = await host.exec(argv, { ...opts, allowFailure: true });
      await writeFile(join(dir, `${name}.stdout`), r.stdout);
      await writeFile(join(dir, `${name}.stderr`), r.stderr);
      if (r.code !== 0 && !opts.allowFailure) throw new Error(`${name} on ${host.name} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' / ')}`);
      return r;
    },
  };
}

export interface SummaryRow {
  experiment: string;
  variant: string;
  params: string;
  metric: string;
  n_ok: number;
  n_failed: number;
  n_skipped: number;
  median?: number;
  min?: number;
  max?: number;
  cv?: number;
  reason?: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Coefficient of variation (sample standard deviation / mean); 0 for a single value. */
export function coefficientOfVariation(xs: number[]): number {
  if (xs.length < 2) return 0;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return mean === 0 ? 0 : sd / mean;
}

/** One row per (experiment, variant, parameters, metric), over the good repetitions. */
export function summarize(records: CellRecord[]): SummaryRow[] {
  const groups = new Map<string, CellRecord[]>();
  for (const r of records) {
    const k = `${r.experiment}\u0000${r.variant}\u0000${paramsSlug(r.params)}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const rows: SummaryRow[] = [];
  for (const [k, rs] of groups) {
    const [experiment, variant, params] = k.split('\u0000') as [string, string, string];
    const ok = rs.filter((r) => r.status === 'ok');
    const counts = { n_ok: ok.length, n_failed: rs.filter((r) => r.status === 'failed').length, n_skipped: rs.filter((r) => r.status === 'skipped').length };
    const metrics = [...new Set(ok.flatMap((r) => Object.keys(r.metrics ?? {})))];
    if (!metrics.length) {
      rows.push({ experiment, variant, params, metric: '-', ...counts, reason: rs.find((r) => r.reason)?.reason?.split('\n')[0] });
      continue;
    }
    for (const metric of metrics) {
      const xs = ok.map((r) => r.metrics?.[metric]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      rows.push({
        experiment,
        variant,
        params,
        metric,
        ...counts,
        median: median(xs),
        min: Math.min(...xs),
        max: Math.max(...xs),
        cv: coefficientOfVariation(xs),
      });
    }
  }
  return rows;
}

export function summaryCsv(rows: SummaryRow[]): string {
  const cols: Array<keyof SummaryRow> = ['experiment', 'variant', 'params', 'metric', 'n_ok', 'n_failed', 'n_skipped', 'median', 'min', 'max', 'cv', 'reason'];
  const cell = (v: unknown) => (v === undefined ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return `${[cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n')}\n`;
}

export async function writeSummary(runDir: string, records: CellRecord[]): Promise<SummaryRow[]> {
  const rows = summarize(records);
  await writeFile(join(runDir, 'summary.json'), `${JSON.stringify({ cells: records.length, rows }, null, 2)}\n`);
  await writeFile(join(runDir, 'summary.csv'), summaryCsv(rows));
  await writeFile(join(runDir, 'cells.json'), `${JSON.stringify(records, null, 2)}\n`);
  return rows;
}
