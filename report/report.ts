import { readFile, writeFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { Manifest, Deviation } from '../core/rundir.js';
import type { SummaryRow, CellRecord } from '../experiments/runner.js';
import { loadClaims, judgeClaims, type ClaimVerdict } from './claims.js';

export interface ReportInputs {
  runDir: string;
  manifest: Manifest;
  rows: SummaryRow[];
  records: CellRecord[];
}

const fmt = (x: number | undefined, digits = 3) => (x === undefined ? '–' : Math.abs(x) >= 1000 ? Math.round(x).toLocaleString('en-US') : Number(x.toPrecision(digits)).toString());

function sideText(s: ClaimVerdict['sides'][number]): string {
  // The reason a side did not run is given once, in the verdict column.
  if (s.median === undefined) return `${s.variant}: not run`;
  return `${s.variant}: ${fmt(s.median)} (min ${fmt(s.min)}, max ${fmt(s.max)}, CV ${((s.cv ?? 0) * 100).toFixed(1)}%, n=${s.n})`;
}

function verdictText(v: ClaimVerdict): string {
  return v.reason && v.verdict !== 'reproduced' ? `${v.verdict} (${v.reason})` : v.verdict;
}

/** One line for a deviation: what the artifact does, what the lab did, why, and what it affects. */
export function deviationText(d: Deviation | string): string {
  return typeof d === 'string' ? d : `${d.topic} (${d.affects}): artifact: ${d.artifact}; lab: ${d.lab}; why: ${d.why}`;
}

/** The run's recorded deviations, then the cells that did not run or failed, so nothing differs unseen. */
export function deviations(m: Manifest, records: CellRecord[]): string[] {
  const out = (m.deviations ?? []).map(deviationText);
  // Runs written before deviations were recorded say only TCG in the host facts.
  if (!m.deviations?.length && (m.host as { accel?: string }).accel === 'tcg') out.unshift('VMs ran under TCG (no KVM): every number is functional only, not performance-comparable with the paper.');
  const skipped = new Map<string, string>();
  for (const r of records.filter((x) => x.status === 'skipped')) skipped.set(`${r.experiment}/${r.variant}`, r.reason ?? '');
  for (const [k, why] of skipped) out.push(`skipped ${k}: ${why}`);
  const failed = records.filter((r) => r.status === 'failed');
  for (const r of failed) out.push(`failed ${r.experiment}/${r.variant} rep ${r.rep}: ${(r.reason ?? '').split('\n')[0]}`);
  return out;
}

/** One Vega-Lite chart per experiment, rendered to SVG in Node (no browser, no network). */
async function chartFor(experiment: string, headline: string, rows: SummaryRow[]): Promise<string | undefined> {
  let values: Array<Record<string, unknown>>;
  let spec: Record<string, unknown>;
  if (experiment === 'datastructures') {
    values = rows.filter((r) => r.metric.endsWith('.ns_per_op') && r.median !== undefined).map((r) => ({ benchmark: r.metric.replace('.ns_per_op', ''), ns: r.median }));
    spec = { mark: 'bar', encoding: { y: { field: 'benchmark', type: 'nominal', sort: null }, x: { field: 'ns', type: 'quantitative', title: 'ns per op (median)' } } };
  } else if (experiment === 'guards') {
    const r = rows.find((x) => x.metric === 'measured_elided');
    const e = rows.find((x) => x.metric === 'expected_elided');
    if (!r || !e) return undefined;
    values = [{ what: 'expected (seed)', elided: e.median }, { what: 'measured', elided: r.median }];
    spec = { mark: 'bar', encoding: { x: { field: 'what', type: 'nominal' }, y: { field: 'elided', type: 'quantitative', title: 'guards elided' } } };
  } else {
    values = rows.filter((r) => r.metric === headline && r.median !== undefined).map((r) => ({ variant: r.variant, params: r.params, median: r.median, min: r.min, max: r.max }));
    spec = {
      layer: [
        { mark: 'bar', encoding: { x: { field: 'variant', type: 'nominal' }, xOffset: { field: 'params' }, color: { field: 'params', type: 'nominal' }, y: { field: 'median', type: 'quantitative', title: `${headline} (median; rule: min-max)`, scale: { zero: true, nice: true, domainMax: Math.max(...values.map((v) => Number(v.max))) * 1.1 } } } },
        { mark: { type: 'rule', strokeWidth: 2 }, encoding: { x: { field: 'variant', type: 'nominal' }, xOffset: { field: 'params' }, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
      ],
    };
  }
  if (!values.length) return undefined;
  const compiled = vl.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 420, height: experiment === 'datastructures' ? Math.max(120, values.length * 14) : 220, title: experiment, data: { values }, ...spec } as vl.TopLevelSpec).spec;
  return new vega.View(vega.parse(compiled), { renderer: 'none' }).toSVG();
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export async function writeReport(inp: ReportInputs, headlines: Record<string, string>): Promise<{ md: string; html: string; verdicts: ClaimVerdict[] }> {
  const m = inp.manifest;
  const verdicts = judgeClaims(loadClaims(), inp.rows);
  const devs = deviations(m, inp.records);
  const host = m.host as unknown as Record<string, unknown>;
  const stages = Object.entries(m.stages ?? {});
  const kernel = stages.find(([k]) => k === 'kernel')?.[1].manifest as Record<string, unknown> | undefined;
  const llvm = stages.find(([k]) => k === 'llvm')?.[1].manifest as Record<string, unknown> | undefined;
  const provenance: Array<[string, string]> = [
    ['run', basename(inp.runDir)],
    ['profile', `${m.profile}${Object.keys(m.overrides ?? {}).length ? ` (overrides: ${Object.entries(m.overrides).map(([k, v]) => `${k} <- ${v}`).join('; ')})` : ''}`],
    ['lab commit', String(host.lab_commit ?? 'unknown')],
    ['host', `${host.cpu_model}, ${host.cores} CPUs, ${host.ram_gb} GiB, Linux ${host.kernel}`],
    ['accelerator', String(host.accel)],
    ['QEMU', String(host.qemu ?? 'unknown')],
    ['link', String((m as Record<string, unknown>).link ?? 'unknown')],
    ['kernel', kernel ? `${kernel.release} from ${(kernel.source as Record<string, unknown>)?.origin} ${(kernel.source as Record<string, unknown>)?.commit ?? ''}; config sha256 ${String(kernel.config_sha256).slice(0, 16)}…` : 'not built'],
    ['LLVM', llvm ? `${llvm.clang} ${llvm.clang_version} (${llvm.how})` : 'unknown'],
    ['sources', Object.entries(((m.config as { sources?: Record<string, Record<string, string>> }).sources) ?? {}).map(([k, s]) => `${k}: ${s.kind} ${s.url ?? s.package ?? s.path ?? ''} ${s.commit ?? s.ref ?? s.sha256 ?? ''}`.trim()).join('; ')],
  ];
  const charts: Array<[string, string | undefined]> = [];
  for (const exp of [...new Set(inp.rows.map((r) => r.experiment))]) charts.push([exp, await chartFor(exp, headlines[exp] ?? '', inp.rows.filter((r) => r.experiment === exp))]);

  const md = [
    `# kflex-lab report: ${basename(inp.runDir)}`,
    '',
    '## Provenance',
    '',
    ...provenance.map(([k, v]) => `- **${k}**: ${v}`),
    '',
    '## Claims',
    '',
    '| claim | paper value | measured | verdict |',
    '|---|---|---|---|',
    ...verdicts.map((v) => `| ${v.claim.id}: ${v.claim.wording} | ${v.claim.paper_value ?? 'not recorded'}${v.claim.paper_value !== null ? ` (${v.claim.paper_source})` : ''} | ${v.measured !== undefined ? `${fmt(v.measured)} — ` : ''}${v.sides.map(sideText).join('; ')} | ${verdictText(v)} |`),
    '',
    '## Deviations',
    '',
    ...(devs.length ? devs.map((d) => `- ${d}`) : ['- none']),
    '',
    '## Summary',
    '',
    'See summary.csv for every metric; the headline metrics:',
    '',
    '| experiment | variant | params | metric | median | min | max | CV | ok/failed/skipped |',
    '|---|---|---|---|---|---|---|---|---|',
    ...inp.rows.filter((r) => r.metric === headlines[r.experiment] || r.metric === '-').map((r) => `| ${r.experiment} | ${r.variant} | ${r.params} | ${r.metric} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.cv === undefined ? '–' : (r.cv * 100).toFixed(1) + '%'} | ${r.n_ok}/${r.n_failed}/${r.n_skipped} |`),
    '',
  ].join('\n');

  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kflex-lab report ${esc(basename(inp.runDir))}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.reproduced{color:#176b2c;font-weight:600}.deviates{color:#a15c00;font-weight:600}.notrun{color:#666}
.chart{display:inline-block;margin:0.5em 1em 1em 0;vertical-align:top}dt{font-weight:600}dd{margin:0 0 .4em 1em}</style></head>
<body><h1>kflex-lab report: ${esc(basename(inp.runDir))}</h1>
<h2>Provenance</h2><dl>${provenance.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>
<h2>Claims</h2>
<table id="claims"><thead><tr><th>claim</th><th>paper value</th><th>measured</th><th>verdict</th></tr></thead><tbody>
${verdicts.map((v) => `<tr data-claim="${esc(v.claim.id)}"><td><b>${esc(v.claim.id)}</b><br>${esc(v.claim.wording)}</td><td>${v.claim.paper_value ?? 'not recorded'}${v.claim.paper_value !== null ? `<br><small>${esc(v.claim.paper_source)}</small>` : ''}</td><td>${v.measured !== undefined ? `<b>${esc(fmt(v.measured))}</b><br>` : ''}${v.sides.map((s) => esc(sideText(s))).join('<br>')}</td><td class="${v.verdict === 'not run' ? 'notrun' : v.verdict}">${esc(verdictText(v))}</td></tr>`).join('\n')}
</tbody></table>
<h2>Charts</h2>
${charts.map(([exp, svg]) => `<figure class="chart" data-experiment="${esc(exp)}">${svg ?? `<p>${esc(exp)}: no data to chart (see the claims table for why)</p>`}<figcaption>${esc(exp)}</figcaption></figure>`).join('\n')}
<h2>Deviations</h2><ul id="deviations">${(devs.length ? devs : ['none']).map((d) => `<li>${esc(d)}</li>`).join('')}</ul>
<p>Raw data: <code>summary.csv</code>, <code>summary.json</code>, <code>runs/</code>, <code>manifest.json</code> beside this file.</p>
</body></html>
`;
  await writeFile(join(inp.runDir, 'report.md'), md);
  await writeFile(join(inp.runDir, 'report.html'), html);
  return { md, html, verdicts };
}

export async function readRunForReport(runDir: string): Promise<{ manifest: Manifest; rows: SummaryRow[]; records: CellRecord[] }> {
  const manifest = JSON.parse(await readFile(join(runDir, 'manifest.json'), 'utf8')) as Manifest;
  const summary = JSON.parse(await readFile(join(runDir, 'summary.json'), 'utf8')) as { rows: SummaryRow[] };
  const records = JSON.parse(await readFile(join(runDir, 'cells.json'), 'utf8').catch(() => '[]')) as CellRecord[];
  return { manifest, rows: summary.rows, records };
}

export function verdictTable(verdicts: ClaimVerdict[]): string {
  const w = Math.max(...verdicts.map((v) => v.claim.id.length));
  return verdicts.map((v) => `  ${v.claim.id.padEnd(w)}  ${v.measured !== undefined ? fmt(v.measured).padStart(8) : '       –'}  ${verdictText(v)}`).join('\n');
}
