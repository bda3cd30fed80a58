import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Profile, ExperimentSettings } from '../core/config.js';
import type { EventBus } from '../core/events.js';
import type { Host } from '../core/host.js';
import { LINK_IF, KFLEX_GUEST_DIR } from '../core/guest.js';
import type { Capabilities, CellStatus, Experiment, Params, ParamValue, VariantDef, CellContext } from './types.js';
import type { Metrics } from './parsers.js';
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
}

/** Apply `--quick`: fewer repetitions, shorter runs, the quick grid's values for the keys it names. */
export function effectiveSettings(s: ExperimentSettings, quick: boolean): ExperimentSettings {
  if (!quick) return s;
  return { ...s, repetitions: s.quick.repetitions ?? 1, duration_s: s.quick.duration_s ?? s.duration_s, grid: { ...s.grid, ...(s.quick.grid ?? {}) }, warmup_s: 0 };
}

export function gridPoints(grid: Record<string, ParamValue[]>): Params[] {
  let points: Params[] = [{}];
  for (const [k, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

export function paramsSlug(p: Params): string {
  const s = Object.entries(p).map(([k, v]) => `${k}=${String(v).replace(/[^A-Za-z0-9.]+/g, '-')}`).join(',');
  return s || 'default';
}

/** Every cell of the profile's experiments (filtered by --only), in run order. */
export function planCells(profile: Profile, opts: { only?: string[]; quick?: boolean } = {}, experiments = EXPERIMENTS): ExperimentCell[] {
  const cells: ExperimentCell[] = [];
  for (const exp of experiments) {
    const raw = profile.experiments[exp.id];
    if (!raw || !raw.enabled) continue;
    if (opts.only?.length && !opts.only.includes(exp.id)) continue;
    const settings = effectiveSettings(raw, !!opts.quick);
    for (const vid of settings.variants) {
      const variant = exp.variants.find((v) => v.id === vid);
      if (!variant) throw new Error(`experiments.${exp.id}.variants: unknown variant '${vid}'; known: ${exp.variants.map((v) => v.id).join(', ')}`);
      for (const params of gridPoints(settings.grid))
        for (let rep = 1; rep <= settings.repetitions; rep++)
          cells.push({ experiment: exp, variant, params, rep, settings, path: join('runs', exp.id, vid, paramsSlug(params), `rep-${rep}`) });
    }
  }
  return cells;
}

/** Why a variant cannot run on these guests, or undefined when it can. Never a failure: a skip with its reason. */
export function unmetRequirement(variant: VariantDef, caps: Capabilities): string | undefined {
  for (const r of variant.requires) {
    if (r === 'kflex-kernel' && !caps.kflexKernel) return caps.kflexKernelWhy;
    if (r === 'ffkx' && !caps.ffkx) return caps.ffkxWhy;
    if (r === 'native-xdp' && !caps.nativeXdp) return 'native XDP is not available on the server link NIC';
    if (r === 'bmc' && !caps.bmc) return caps.bmcWhy;
  }
  if (variant.heapGiB) {
    // Every heap map is allocated eagerly at full size, plus ~6 GB of allocator pools.
    const needMb = (variant.heapGiB + 6) * 1024;
    if (caps.serverMemoryMb < needMb)
      return `needs ${variant.heapGiB} GiB of KFlex heap + ~6 GB of pools (~${Math.ceil(needMb / 1024)} GiB); the server VM has ${(caps.serverMemoryMb / 1024).toFixed(1)} GiB: raise vms.server.memory_mb (the lab does not patch ffkx's heap sizes)`;
  }
  return undefined;
}

/** Probe the guests once: KFlex heap map type in the kernel's BTF, ffkx installed, memtier, link ifindex. */
export async function probeCapabilities(server: Host, client: Host, facts: { nativeXdp: boolean; serverMemoryMb: number; serverCpus: number; accel: 'kvm' | 'tcg' }): Promise<Capabilities> {
  const release = (await server.exec(['uname', '-r'])).stdout.trim();
  const btf = await server.exec(['sh', '-c', 'test -r /sys/kernel/btf/vmlinux || { echo nobtf; exit 0; }; bpftool btf dump file /sys/kernel/btf/vmlinux | grep -c "BPF_MAP_TYPE_HEAP" || true'], { allowFailure: true, timeoutMs: 120_000 });
  const heapHits = Number(btf.stdout.trim()) || 0;
  const kflexKernel = heapHits > 0;
  const kflexKernelWhy = btf.stdout.includes('nobtf')
    ? `guest kernel ${release} has no BTF (/sys/kernel/btf/vmlinux): cannot probe for KFlex`
    : `guest kernel ${release} is not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF (the smoke profile builds Debian's kernel; use the paper profile)`;
  const ffkx = await server.exec(['test', '-x', `${KFLEX_GUEST_DIR}/ffkx`], { allowFailure: true });
  const memtier = await client.exec(['sh', '-c', 'command -v memtier_benchmark'], { allowFailure: true });
  const ifindex = Number((await server.exec(['cat', `/sys/class/net/${LINK_IF}/ifindex`])).stdout.trim());
  return {
    kernelRelease: release,
    kflexKernel,
    kflexKernelWhy,
    ffkx: ffkx.code === 0,
    ffkxWhy: `${KFLEX_GUEST_DIR}/ffkx is not in the image (image.kflex is false in this profile)`,
    nativeXdp: facts.nativeXdp,
    serverMemoryMb: facts.serverMemoryMb,
    serverCpus: facts.serverCpus,
    memtier: memtier.code === 0,
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
 * Run the cells one by one. A failed cell keeps its logs and the run goes on; with resume, cells
 * already ok or skipped are kept. Returns every cell's record.
 */
export async function runCells(
  cells: ExperimentCell[],
  env: { runDir: string; server: Host; client: Host; serverIp: string; caps: Capabilities; bus: EventBus; resume?: boolean },
): Promise<CellRecord[]> {
  const records: CellRecord[] = [];
  const say = (message: string) => env.bus.emit({ type: 'step', scope: 'experiments', message });
  let i = 0;
  for (const cell of cells) {
    i++;
    const dir = join(env.runDir, cell.path);
    const label = `[${i}/${cells.length}] ${cell.experiment.id}/${cell.variant.id} ${paramsSlug(cell.params)} rep ${cell.rep}`;
    if (env.resume) {
      const prev = await readCellRecord(env.runDir, cell.path);
      if (prev && prev.status !== 'failed') {
        records.push(prev);
        say(`${label}: kept (${prev.status})`);
        continue;
      }
    }
    await mkdir(dir, { recursive: true });
    const started = Date.now();
    const base = { experiment: cell.experiment.id, variant: cell.variant.id, params: cell.params, rep: cell.rep, started: new Date().toISOString() };
    let record: CellRecord;
    const skip = unmetRequirement(cell.variant, env.caps);
    if (skip) {
      record = { ...base, status: 'skipped', reason: skip, seconds: 0 };
    } else {
      const dmesgBefore = Number((await env.server.exec(['sh', '-c', 'dmesg | wc -l'], { allowFailure: true })).stdout.trim()) || 0;
      const ctx = cellContext(cell, dir, env);
      try {
        const out = await cell.experiment.runCell(ctx, cell.variant);
        for (const [name, content] of Object.entries(out.files ?? {})) await writeFile(join(dir, name), content);
        await writeFile(join(dir, 'metrics.json'), JSON.stringify(out.metrics, null, 2) + '\n');
        record = { ...base, status: 'ok', metrics: out.metrics, deviations: out.deviations, seconds: (Date.now() - started) / 1000 };
      } catch (e) {
        record = { ...base, status: 'failed', reason: (e as Error).message, seconds: (Date.now() - started) / 1000 };
      }
      // The guests' kernel log slice of this cell (experiment 5 reads experiment 4's).
      const slice = await env.server.exec(['sh', '-c', 'dmesg | tail -n +"$1"', 'slice', String(dmesgBefore + 1)], { allowFailure: true });
      await writeFile(join(dir, 'kernel.log'), slice.stdout);
    }
    await writeFile(join(dir, 'status.json'), JSON.stringify(record, null, 2) + '\n');
    records.push(record);
    const headline = record.metrics?.[cell.experiment.headline];
    say(`${label}: ${record.status}${headline !== undefined ? ` ${cell.experiment.headline}=${headline}` : ''}${record.reason ? ` (${record.reason.split('\n')[0]})` : ''}`);
  }
  return records;
}

function cellContext(cell: ExperimentCell, dir: string, env: Parameters<typeof runCells>[1]): CellContext {
  return {
    server: env.server,
    client: env.client,
    serverIp: env.serverIp,
    linkIf: LINK_IF,
    params: cell.params,
    settings: cell.settings,
    rep: cell.rep,
    cellDir: dir,
    caps: env.caps,
    runDir: env.runDir,
    log: (line) => env.bus.emit({ type: 'line', stage: 'experiments', line }),
    async exec(host, name, argv, opts = {}) {
      // The exact command, on which host, is kept beside its output.
      await writeFile(join(dir, `${name}.cmd`), `${host.name}$ ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}\n`);
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
      rows.push({ experiment, variant, params, metric, ...counts, median: median(xs), min: Math.min(...xs), max: Math.max(...xs), cv: coefficientOfVariation(xs) });
    }
  }
  return rows;
}

export function summaryCsv(rows: SummaryRow[]): string {
  const cols: Array<keyof SummaryRow> = ['experiment', 'variant', 'params', 'metric', 'n_ok', 'n_failed', 'n_skipped', 'median', 'min', 'max', 'cv', 'reason'];
  const cell = (v: unknown) => (v === undefined ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

export async function writeSummary(runDir: string, records: CellRecord[]): Promise<SummaryRow[]> {
  const rows = summarize(records);
  await writeFile(join(runDir, 'summary.json'), JSON.stringify({ cells: records.length, rows }, null, 2) + '\n');
  await writeFile(join(runDir, 'summary.csv'), summaryCsv(rows));
  await writeFile(join(runDir, 'cells.json'), JSON.stringify(records, null, 2) + '\n');
  return rows;
}

