import type { ReportModel } from './types.js';
import type { EvidenceItem } from './model.js';
import { verdictText } from './model.js';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const MARK = { met: '✓', unmet: '✗', info: '•' };
const itemClass = (i: EvidenceItem) => (i.ok === null ? 'info' : i.ok ? 'met' : 'unmet');
const verdictClass = (v: string) => (v === 'not run' ? 'notrun' : v);

const CSS =
  `
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;max-width:1240px;margin:0 auto;padding:12px 20px 40px;color:#1d1d1f}
h1{font-size:21px;margin:4px 0 0}h2{font-size:17px;margin:22px 0 8px}h3{font-size:14px;margin:0 0 4px}
.sub{color:#555;margin:2px 0 10px;font-size:12.5px}
.banner{background:#fff4ce;border:1px solid #e0b400;border-left:6px solid #e0b400;padding:7px 12px;margin:6px 0 10px;font-weight:600}
#summary{display:grid;grid-template-columns:minmax(300px,1fr) 2fr;gap:16px;align-items:start}
.counts{display:flex;gap:8px}.count{flex:1;border-radius:6px;padding:6px 8px;text-align:center;background:#f4f4f4}
.count b{display:block;font-size:26px;line-height:1.1}.count.reproduced{background:#e3f4e6;color:#176b2c}
.count.deviates{background:#fdebd3;color:#8a4d00}.count.inconclusive{background:#e6eefa;color:#1f4f8a}.count.notrun{background:#ececec;color:#444}
.of{color:#555;font-size:12.5px;margin-top:4px}
#in-force h2,#badges h2{margin:0 0 4px;font-size:15px}#in-force ul{margin:0;padding-left:18px;font-size:12.5px}
#badges{margin-top:12px}#badges .note{color:#555;font-weight:400;font-size:12.5px}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}
.badge{border:1px solid #d5d5d5;border-radius:6px;padding:8px 10px;font-size:12.5px;line-height:1.35}
.badge .tally{float:right;font-weight:400;color:#555}.badge .asks{color:#555;margin:0 0 4px;font-style:italic}
.badge ul{list-style:none;margin:0;padding:0}.badge li{margin:2px 0;padding-left:16px;text-indent:-16px;overflow-wrap:anywhere}
li.met::before{content:"${MARK.met} ";color:#176b2c;font-weight:700}li.unmet::before{content:"${MARK.unmet} ";color:#b3261e;font-weight:700}
li.info::before{content:"${MARK.info} ";color:#666}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid #d0d0d0;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}#claims td{font-size:13px}.reproduced{color:#176b2c;font-weight:600}.deviates{color:#a15c00;font-weight:600}.notrun{color:#666}
.inconclusive{color:#1f4f8a;font-weight:600}
.flag{display:inline-block;background:#e8e0ff;color:#3d2a87;border-radius:3px;padding:0 4px;font-size:11.5px;margin-top:2px}
.logs a{margin-right:6px;white-space:nowrap}.logs a.skipped{color:#777}.logs a.failed{color:#b3261e}
.chart{display:inline-block;margin:6px 18px 14px 0;vertical-align:top}.chart figcaption{font-size:12px;color:#555}
#deviations{table-layout:fixed}#deviations td{font-size:12.5px;overflow-wrap:anywhere}#deviations th:nth-child(1){width:11%}` +
  `#deviations th:nth-child(5){width:14%}dl{font-size:12.5px}dt{font-weight:600}dd{margin:0 0 .35em 1em;overflow-wrap:anywhere}
`;

/** A value that lists one line per parameter point. */
const lines = (s: string) => esc(s).replace(/\n/g, '<br>');

function evidence(items: EvidenceItem[]): string {
  return `<ul>${items.map((i) => `<li class="${itemClass(i)}">${esc(i.text)}</li>`).join('')}</ul>`;
}

function summary(r: ReportModel): string {
  const total = r.verdicts.length;
  return (
    `<section id="summary" aria-label="summary">
<div>${r.accel.banner ? `<div class="banner" id="accel-banner" role="note">${esc(r.accel.banner)}</div>` : ''}
<div class="counts" id="verdict-counts"><div class="count reproduced"><b>${r.counts.reproduced}</b>reproduced</div>` +
    `<div class="count deviates"><b>${r.counts.deviates}</b>deviate</div>` +
    `<div class="count inconclusive"><b>${r.counts.inconclusive}</b>inconclusive</div>` +
    `<div class="count notrun"><b>${r.counts.notRun}</b>not run</div></div>
<div class="of">of ${total} claims · accelerator <b>${esc(r.accel.accel)}</b> · profile ${esc(r.manifest.profile)}</div></div>
<div id="in-force"><h2>Scale-downs and substitutions in force</h2>${
      r.inForce.length
        ? `<ul>${r.inForce.map((d) => `<li data-topic="${esc(d.topic)}"><b>${esc(d.topic)}</b> (${esc(d.affects)}): ${esc(d.lab)}</li>`).join('')}</ul>`
        : "<p>none: the artifact's heaps, loads and clients</p>"
    }</div>
</section>`
  );
}

function badges(r: ReportModel): string {
  return (
    `<section id="badges" aria-label="ACM badge evidence">` +
    `<h2>ACM badge evidence <span class="note">— the lab states the evidence; the evaluator decides each badge</span></h2><div class="cards">
${r.badges
  .map((b) => {
    return (
      `<article class="badge" data-badge="${b.badge}"><h3>${b.badge}<span class="tally">${esc(b.tally)}</span></h3>` +
      `<p class="asks">asks: ${esc(b.asks)}</p>${evidence(b.items)}</article>`
    );
  })
  .join('\n')}
</div></section>`
  );
}

function claims(r: ReportModel): string {
  const rows = r.claims.map((c) => {
    const v = c.verdict;
    const heap = c.scaledHeap.length
      ? `<br><span class="flag" title="${esc(c.scaledHeap.map((d) => `${d.lab} (${d.why})`).join('; '))}">scaled heap</span>`
      : '';
    const flags = c.flags.map((f) => `<br><span class="flag" title="${esc(`${f.deviation.lab} (${f.deviation.why})`)}">${esc(f.label)}</span>`).join('');
    const logs = c.cells.length
      ? c.cells.map((l) => `<a class="${esc(l.status)}" href="${esc(l.href)}" title="${esc(`${l.label}: ${l.status}`)}">${esc(l.label)}</a>`).join(' ')
      : 'no cells';
    return (
      `<tr data-claim="${esc(v.claim.id)}"${c.scaledHeap.length ? ' data-scaled-heap="true"' : ''}>` +
      `<td><b>${esc(v.claim.id)}</b>${heap}${flags}<br>${esc(v.claim.wording)}</td>` +
      `<td>${v.claim.paper_value ?? 'not recorded'}${v.claim.paper_value !== null ? `<br><small>${esc(v.claim.paper_source)}</small>` : ''}</td>` +
      `<td>${lines(c.kflex)}</td><td>${lines(c.baseline)}</td><td>${lines(c.ratio)}</td>` +
      `<td class="${verdictClass(v.verdict)}">${esc(verdictText(v))}</td><td class="logs"><a href="#chart-${esc(c.chart)}">chart</a><br>${logs}</td></tr>`
    );
  });
  return (
    `<section id="claims-section"><h2>Claims</h2>
<table id="claims"><thead><tr><th>claim</th><th>paper value</th><th>KFlex</th><th>baseline</th>` +
    `<th>ratio [95% interval]</th><th>verdict</th><th>chart, raw logs</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`
  );
}

function charts(r: ReportModel): string {
  const fig = (id: string, svg: string | undefined, empty: string | undefined, caption: string, attrs = '') =>
    `<figure class="chart" id="chart-${esc(id)}" data-experiment="${esc(id)}"${attrs}>` +
    `${svg ?? `<p class="notrun">${esc(id)}: ${esc(empty ?? 'no data')}</p>`}<figcaption>${esc(caption)}</figcaption></figure>`;
  const t = r.timeline;
  const figures = r.charts
    .map((c) => fig(c.experiment, c.svg, c.empty, `${c.experiment}: ${c.dots} repetition${c.dots === 1 ? '' : 's'} drawn as dots`, ` data-dots="${c.dots}"`))
    .join('\n');
  const marks = (kind: string) => t.items.filter((i) => i.kind === kind).length;
  const counts = `${marks('stage')} stages, ${marks('testbed')} testbed boot, ${marks('cell')} cells`;
  const timelineCaption = `${t.items.length} marks: ${counts}${t.note ? ` (${t.note})` : ''}`;
  return `<section id="charts"><h2>Charts</h2>
${figures}
<h2>Run timeline</h2>
${fig('timeline', t.svg, t.empty, timelineCaption, ` data-marks="${t.items.length}"`)}
</section>`;
}

function deviations(r: ReportModel): string {
  const shown = r.deviations.length ? r.deviations : [{ topic: 'none', artifact: '', lab: '', why: '', affects: '' }];
  const rows = shown.map(
    (d) =>
      `<tr data-topic="${esc(d.topic)}"><td>${esc(d.topic)}</td><td>${esc(d.artifact)}</td>` +
      `<td>${esc(d.lab)}</td><td>${esc(d.why)}</td><td>${esc(d.affects)}</td></tr>`,
  );
  return `<section id="deviations-section"><h2>Deviations</h2>
<table id="deviations"><thead><tr><th>topic</th><th>artifact</th><th>lab</th><th>why</th><th>affects</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

/** The tables cells stated (the mechanism probe's, say), as they stated them. */
function tables(r: ReportModel): string {
  if (!r.tables.length) return '';
  const one = (t: ReportModel['tables'][number]) =>
    `<h3 id="table-${esc(t.experiment)}">${esc(t.title)} <small>(${esc(t.experiment)}/${esc(t.variant)})</small></h3>` +
    `<table class="cell-table" data-experiment="${esc(t.experiment)}"><thead><tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>` +
    t.rows.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n') +
    '</tbody></table>';
  return `<section id="tables"><h2>Tables</h2>${r.tables.map(one).join('\n')}</section>`;
}

function provenance(r: ReportModel): string {
  return (
    `<section id="provenance"><h2>Provenance</h2><dl>${r.provenance.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>
<p>Raw data beside this file: <a href="manifest.json">manifest.json</a>, <a href="cells.json">cells.json</a>, <a href="summary.csv">summary.csv</a>, ` +
    `<a href="summary.json">summary.json</a>, <a href="runs/">runs/</a> (every cell's commands, outputs and logs), <a href="logs/">logs/</a>.</p></section>`
  );
}

/** One self-contained page (inline CSS and SVG, no script, nothing fetched): summary and badges first. */
export function renderHtml(r: ReportModel): string {
  return (
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>kflex-lab report ${esc(r.run)}</title>
<style>${CSS}</style></head>
<body><header><h1>kflex-lab report: ${esc(r.run)}</h1>` +
    `<p class="sub">KFlex (SOSP '24) reproduced by kflex-lab · created ${esc(r.manifest.created)} · ` +
    `lab commit ${esc(r.manifest.host.lab_commit ?? 'unknown')}</p></header>
${summary(r)}
${badges(r)}
${claims(r)}
${tables(r)}
${charts(r)}
${deviations(r)}
${provenance(r)}
</body></html>
`
  );
}
