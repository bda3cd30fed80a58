import type { Manifest, Deviation } from '../core/rundir.js';
import type { ClaimVerdict } from './claims.js';
import type { Chart } from './charts.js';
import type { BadgeEvidence, ClaimRow, TimelineItem, VerdictCounts } from './model.js';

/** Everything the HTML page and its Markdown twin show, in the order they show it. */
export interface ReportModel {
  run: string;
  manifest: Manifest;
  verdicts: ClaimVerdict[];
  counts: VerdictCounts;
  accel: { accel: string; banner?: string };
  inForce: Deviation[];
  badges: BadgeEvidence[];
  claims: ClaimRow[];
  charts: Chart[];
  timeline: Chart & { items: TimelineItem[]; note?: string };
  deviations: Deviation[];
  provenance: Array<[string, string]>;
}
