import type { ReportModel } from './types.js';
import { fmt, type TimelineItem } from './model.js';

/** A table cell: no pipe or line break may end the cell early. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, '; ');
const box = (ok: boolean | null) => (ok === null ? '-' : ok ? '- [x]' : '- [ ]');

/** Where the time went, in one line per kind of mark. */
export function timelineLines(items: TimelineItem[]): string[] {
  const sum = (xs: TimelineItem[]) => xs.reduce((a, i) => a + i.seconds, 0);
  const stages = items.filter((i) => i.kind === 'stage');
  const boots = items.filter((i) => i.kind === 'testbed');
  const cells = items.filter((i) => i.kind === 'cell');
  const byExp = new Map<string, number>();
  for (const c of cells) byExp.set(c.lane, (byExp.get(c.lane) ?? 0) + c.seconds);
  const end = items.length ? Math.max(...items.map((i) => i.start + i.seconds)) : 0;
  return [
    `- stages: ${stages.length ? stages.map((s) => s.label).join('; ') : 'none recorded'}`,
    `- testbed: ${boots.length ? boots.map((b) => b.label).join('; ') : 'boot not recorded'}`,
    `- cells: ${cells.length} in ${fmt(sum(cells))} s (${[...byExp].map(([e, s]) => `${e} ${fmt(s)} s`).join(', ')})`,
    `- first to last mark: ${fmt(end)} s`,
  ];
}

/** The report as Markdown to paste into a review: the same order as the page, the verdicts and badge evidence first. */
export function renderMarkdown(r: ReportModel): string {
  const total = r.verdicts.length;
  const lines = [
    `# kflex-lab report: ${r.run}`,
    '',
    ...(r.accel.banner ? [`> **${r.accel.banner}**`, ''] : []),
    `**Verdicts** (${total} claims): ${r.counts.reproduced} reproduced · ${r.counts.deviates} deviate · ${r.counts.inconclusive} inconclusive · ` +
      `${r.counts.notRun} not run — accelerator ${r.accel.accel}, profile ${r.manifest.profile}`,
    '',
    '| claim | verdict | ratio [95% interval] |',
    '|---|---|---|',
    // The reasons are in the badge evidence below, once per reason; this table stays one short line per claim.
    ...r.claims.map(
      (c) =>
        `| ${c.verdict.claim.id}${c.scaledHeap.length ? ' (scaled heap)' : ''}${c.flags.map((f) => ` (${f.label})`).join('')} ` +
        `| ${c.verdict.verdict} | ${cell(c.ratio)} |`,
    ),
    '',
    '**Scale-downs and substitutions in force**:',
    '',
    ...(r.inForce.length ? r.inForce.map((d) => `- ${d.topic} (${d.affects}): ${d.lab}`) : ["- none: the artifact's heaps, loads and clients"]),
    '',
    '## ACM badge evidence (the lab states evidence; the evaluator decides each badge)',
    '',
  ];
  for (const b of r.badges) {
    lines.push(`### ${b.badge}: ${b.tally}`, '', `asks: ${b.asks}`, '', ...b.items.map((i) => `${box(i.ok)} ${i.text}`), '');
  }
  lines.push(
    '## Claims',
    '',
    '| claim | paper value | KFlex | baseline | ratio [95% interval] |',
    '|---|---|---|---|---|',
    ...r.claims.map(
      (c) => `| ${c.verdict.claim.id} | ${c.verdict.claim.paper_value ?? 'not recorded'} | ${cell(c.kflex)} | ${cell(c.baseline)} | ${cell(c.ratio)} |`,
    ),
    '',
    ...r.tables.flatMap((t) => [
      `## ${t.title} (${t.experiment}/${t.variant})`,
      '',
      `| ${t.columns.join(' | ')} |`,
      `|${t.columns.map(() => '---').join('|')}|`,
      ...t.rows.map((row) => `| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
      '',
    ]),
    `## Charts (in report.html)`,
    '',
    ...r.charts.map((c) => `- ${c.experiment}: ${c.svg ? `${c.dots} repetitions drawn` : c.empty} (report.html#chart-${c.experiment})`),
    '',
    '## Run timeline',
    '',
    ...timelineLines(r.timeline.items),
    ...(r.timeline.note ? [`- note: ${r.timeline.note}`] : []),
    '',
    '## Deviations',
    '',
    '| topic | artifact | lab | why | affects |',
    '|---|---|---|---|---|',
    ...r.deviations.map((d) => `| ${cell(d.topic)} | ${cell(d.artifact)} | ${cell(d.lab)} | ${cell(d.why)} | ${cell(d.affects)} |`),
    '',
    '## Provenance',
    '',
    ...r.provenance.map(([k, v]) => `- **${k}**: ${v}`),
    '',
  );
  return lines.join('\n');
}
