import type { Manifest, Deviation, HostFacts } from '../core/rundir.js';
import type { CellTable } from '../experiments/types.js';
import type { ClaimVerdict } from './claims.js';
import type { Chart } from './charts.js';
import type { BadgeEvidence, ClaimRow, TimelineItem, VerdictCounts } from './model.js';

/** Everything the HTML page and its Markdown twin show, in the order they show it. */
export interface ReportModel {
  run: string;
  manifest: Manifest;
  verdicts: ClaimVerdict[];
  counts: VerdictCounts;
  accel: { accel: HostFacts['accel']; banner?: string };
  inForce: Deviation[];
  badges: BadgeEvidence[];
  claims: ClaimRow[];
  charts: Chart[];
  /** Tables cells stated (e.g. the mechanism probe's), the last repetition's per experiment and variant. */
  tables: Array<CellTable & { experiment: string; variant: string }>;
  timeline: Chart & { items: TimelineItem[]; note?: string };
  deviations: Deviation[];
  provenance: Array<[string, string]>;
}
