import type { Experiment } from './types.js';
import { MECHANISMS, MECHANISM_PROBES, probeMechanisms, type MechanismResult } from './mechanisms-support.js';

/** One cell of the table: present (and, for a probe that was run, whether it behaved) or absent with why. */
function verdictOf(r: MechanismResult | undefined): string {
  if (!r) return '–';
  if (!r.present) return `absent: ${(r.message ?? 'did not load').split('\n').join(' / ')}`;
  if (r.works === false) return `loads, but misbehaved: ${r.message ?? `returned ${r.retval}`}`;
  return r.works ? 'present (ran: XDP_PASS)' : 'present';
}

/**
 * The KFlex-to-upstream mechanism table (issue 18): for each mechanism KFlex's kernel offered and the upstream
 * equivalent its archived README names, the lab loads a small program of its own (bpf/mechanisms/) in the
 * server guest and reports present or absent on the running kernel, with the verifier's last lines when a load
 * fails. It runs on every kernel: on the paper kernel it shows which of them the v6.9 fork already had.
 */
export const mechanisms: Experiment = {
  id: 'mechanisms',
  title: "KFlex's mechanisms and their upstream equivalents, probed on the guest kernel",
  claims: [],
  headline: 'upstream_present',
  chart: 'variants',
  grid: {},
  parsers: {},
  variants: [{ id: 'probe', description: 'bpftool prog load (and run, for XDP probes) of each bpf/mechanisms/*.bpf.o', requires: [] }],
  estimateCellSeconds: (_s, accel) => (accel === 'tcg' ? 60 : 15),
  async runCell(ctx) {
    ctx.phase('measurement');
    const report = await probeMechanisms(ctx.server, ctx.objects);
    const byProbe = new Map(report.results.map((r) => [r.probe, r]));
    const rows = MECHANISMS.map((m) => [
      m.kflex,
      m.upstream,
      verdictOf(byProbe.get(m.upstreamProbe)),
      m.kflexProbe ? verdictOf(byProbe.get(m.kflexProbe)) : m.kflexNote,
    ]);
    const present = (id: string) => (byProbe.get(id)?.present && byProbe.get(id)?.works !== false ? 1 : 0);
    const metrics: Record<string, number> = {
      upstream_present: MECHANISMS.reduce((n, m) => n + present(m.upstreamProbe), 0),
      upstream_total: MECHANISMS.length,
    };
    for (const p of MECHANISM_PROBES) metrics[`present_${p.id}`] = present(p.id);
    return {
      metrics,
      table: { title: `Mechanisms on kernel ${report.kernel}`, columns: ['KFlex mechanism', 'upstream equivalent', 'upstream probe', 'KFlex side'], rows },
      files: { 'mechanisms.json': `${JSON.stringify(report, null, 2)}\n`, 'mechanisms.out': report.raw },
    };
  },
};
