import type { ExperimentView } from '../experiments/types.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { readManifest, type Manifest, type Deviation, type StageRecord } from '../core/rundir.js';
import type { Source } from '../core/config.js';
import type { SummaryRow } from '../experiments/summary.js';
import type { CellRecord } from '../experiments/cells.js';
import { loadClaims, judgeClaims, type ClaimVerdict } from './claims.js';
import { experimentChart, timelineChart, type Chart } from './charts.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import {
  acceleratorFacts,
  badgeEvidence,
  claimRows,
  deviationRows,
  fmt,
  inForce,
  timeline,
  verdictCounts,
  verdictText,
  measuredText,
  type BadgeEvidence,
  type ClaimRow,
  type TimedEvent,
  type TimelineItem,
  type VerdictCounts,
} from './model.js';

export interface ReportInputs {
  runDir: string;
  manifest: Manifest;
  rows: SummaryRow[];
  records: CellRecord[];
  /** The run's events.jsonl; read from the run directory when not given. */
  events?: TimedEvent[];
}

export type { ReportModel } from './types.js';
import type { ReportModel } from './types.js';

/** One line for a deviation: what the artifact does, what the lab did, why, and what it affects. */
export function deviationText(d: Deviation | string): string {
  return typeof d === 'string' ? d : `${d.topic} (${d.affects}): artifact: ${d.artifact}; lab: ${d.lab}; why: ${d.why}`;
}

/** The run's deviations, then the cells that did not run or failed, one line each. */
export function deviations(m: Manifest, records: CellRecord[]): string[] {
  return deviationRows(m, records).map(deviationText);
}

function provenance(runDir: string, m: Manifest, events: TimedEvent[] | undefined): Array<[string, string]> {
  const host = m.host;
  const out: Array<[string, string]> = [
    ['run', `${basename(runDir)} (created ${m.created})`],
    [
      'profile',
      `${m.profile}${
        Object.keys(m.overrides ?? {}).length
          ? ` (overrides: ${Object.entries(m.overrides)
              .map(([k, v]) => `${k} <- ${v}`)
              .join('; ')})`
          : ''
      }; config ${m.config_file}`,
    ],
    ['lab commit', host.lab_commit ?? 'unknown'],
    ['host', `${host.cpu_model}, ${host.cores} CPUs, ${host.ram_gb} GiB, Linux ${host.kernel}, Node ${host.node ?? '?'}`],
    ['accelerator', host.accel],
    ['QEMU', host.qemu ?? 'unknown'],
    ['testbed', m.testbed ? JSON.stringify(Object.fromEntries(Object.entries(m.testbed).filter(([k]) => k !== 'xdp_check'))) : 'never came up'],
    ['link', m.link ?? 'unknown'],
    ['native XDP check', m.xdp_check ? JSON.stringify(m.xdp_check) : 'not run'],
    ['server memory', m.server_memory ? JSON.stringify(m.server_memory) : 'not recorded'],
    ['guest capabilities', m.capabilities ? JSON.stringify(m.capabilities) : 'not probed'],
  ];
  for (const [id, s] of Object.entries(m.stages ?? {})) {
    const sm: StageRecord = s.manifest ?? {};
    const src = sm.source;
    const what =
      id === 'kernel'
        ? `${sm.release} from ${src?.origin ?? '?'}${src?.commit ? ` commit ${src.commit}` : ''}${src?.sha256 ? ` sha256 ${src.sha256}` : ''}; ` +
          `${sm.base} + ${sm.fragments?.join(', ') ?? ''}; config sha256 ${sm.config_sha256}; ${sm.gcc ?? ''}`
        : id === 'llvm'
          ? `${sm.clang} ${sm.clang_version} (${sm.how})`
          : id === 'image'
            ? `${sm.suite}, ${sm.mmdebstrap}, mirror ${sm.mirror}, image sha256 ${sm.image_sha256} (${sm.image_bytes} bytes); ` +
              `memtier ${JSON.stringify(sm.memtier)}`
            : id === 'kflex'
              ? `${src?.origin ?? '?'} commit ${src?.commit ?? '?'}; heaps ${JSON.stringify(sm.heaps)}`
              : JSON.stringify(Object.fromEntries(Object.entries(sm).filter(([k]) => k !== 'packages')));
    out.push([`stage ${id}`, `fingerprint ${s.fingerprint}; built ${sm.built_at ?? '?'} in ${fmt(Number(sm.build_seconds))} s; ${what}`]);
  }
  out.push([
    'sources',
    Object.entries(m.config?.sources ?? {})
      .map(([k, s]) => `${k}: ${sourceLine(s)}`.trim())
      .join('; '),
  ]);
  out.push(['events', events ? `${events.length} in events.jsonl` : 'no events.jsonl (the run predates it)']);
  return out;
}

/** A source in provenance: its kind, where it is (url, package or path), and its pin (commit, ref or digest). */
function sourceLine(s: Source): string {
  const where = s.kind === 'debian-package' ? s.package : s.kind === 'path' ? s.path : s.url;
  const pin = s.kind === 'git' ? (s.commit ?? s.ref) : s.kind === 'tarball' ? s.sha256 : undefined;
  return `${s.kind} ${where} ${pin ?? ''}`;
}

/** The anchor of a claim's chart: its experiment, or experiment-variant when the experiment has a chart per variant. */
export function chartId(exp: string, claim: { variant?: string } | undefined): string {
  return claim?.variant ? `${exp}-${claim.variant}` : exp;
}

/** The tables cells stated: the last ok repetition's per experiment and variant. */
function cellTables(records: CellRecord[]): ReportModel['tables'] {
  const last = new Map<string, ReportModel['tables'][number]>();
  for (const r of records)
    if (r.status === 'ok' && r.table) last.set(`${r.experiment}/${r.variant}`, { experiment: r.experiment, variant: r.variant, ...r.table });
  return [...last.values()];
}

/** Build the report's content (no I/O): verdicts, badge evidence, claims, charts, timeline, deviations. */
export async function buildReport(inp: ReportInputs, views: Record<string, ExperimentView>): Promise<ReportModel> {
  const m = inp.manifest;
  const claims = loadClaims();
  const verdicts = judgeClaims(claims, inp.rows, inp.records);
  // Every claim's experiment has a figure (a claims row links to it), even one this run did not include.
  const experiments = [...new Set([...claims.map((c) => c.experiment), ...inp.records.map((r) => r.experiment), ...inp.rows.map((r) => r.experiment)])];
  const charts: Chart[] = [];
  for (const exp of experiments) {
    // An experiment whose claims each judge one variant (datastructures: kflex, arena) gets a chart per claim.
    const own = claims.filter((c) => c.experiment === exp);
    const perVariant = own.length > 1 && own.every((c) => c.variant);
    for (const claim of perVariant ? own : [own[0]]) {
      const records = inp.records.filter((r) => r.experiment === exp && (!perVariant || r.variant === claim!.variant));
      const chart = await experimentChart(exp, views[exp], claim, records);
      charts.push(perVariant ? { ...chart, experiment: chartId(exp, claim) } : chart);
    }
  }
  const tl = timeline(m, inp.records, inp.events);
  return {
    run: basename(inp.runDir),
    manifest: m,
    verdicts,
    counts: verdictCounts(verdicts),
    accel: acceleratorFacts(m),
    inForce: inForce(m),
    badges: badgeEvidence(m, inp.records, verdicts, inp.events),
    claims: claimRows(verdicts, inp.rows, inp.records, m, views),
    charts,
    tables: cellTables(inp.records),
    timeline: { ...(await timelineChart(tl.items, tl.origin)), items: tl.items, note: tl.note },
    deviations: deviationRows(m, inp.records),
    provenance: provenance(inp.runDir, m, inp.events),
  };
}

/** events.jsonl of a run directory, or undefined when the run has none (runs before it was kept). */
export async function readEvents(runDir: string): Promise<TimedEvent[] | undefined> {
  const text = await readFile(join(runDir, 'events.jsonl'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const out: TimedEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as TimedEvent);
    } catch {
      // A line cut by a killed run is not worth failing the report for.
    }
  }
  return out;
}

export async function writeReport(inp: ReportInputs, views: Record<string, ExperimentView>): Promise<{ md: string; html: string; verdicts: ClaimVerdict[] }> {
  const events = inp.events ?? (await readEvents(inp.runDir));
  const model = await buildReport({ ...inp, events }, views);
  const md = renderMarkdown(model);
  const html = renderHtml(model);
  await writeFile(join(inp.runDir, 'report.md'), md);
  await writeFile(join(inp.runDir, 'report.html'), html);
  return { md, html, verdicts: model.verdicts };
}

export { verdictText };

export async function readRunForReport(runDir: string): Promise<{ manifest: Manifest; rows: SummaryRow[]; records: CellRecord[] }> {
  const manifest = await readManifest(runDir);
  const summary = JSON.parse(await readFile(join(runDir, 'summary.json'), 'utf8')) as { rows: SummaryRow[] };
  const records = JSON.parse(await readFile(join(runDir, 'cells.json'), 'utf8').catch(() => '[]')) as CellRecord[];
  return { manifest, rows: summary.rows, records };
}

export function verdictTable(verdicts: ClaimVerdict[]): string {
  const w = Math.max(...verdicts.map((v) => v.claim.id.length));
  const measured = verdicts.map((v) => (v.measured !== undefined ? measuredText(v) : '–'));
  const mw = Math.max(8, ...measured.map((m) => m.length));
  return verdicts.map((v, i) => `  ${v.claim.id.padEnd(w)}  ${measured[i]!.padStart(mw)}  ${verdictText(v)}`).join('\n');
}
