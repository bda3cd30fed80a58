import type { Host } from '../core/host.js';
import type { ExperimentSettings } from '../core/config.js';
import type { RunResult } from '../core/exec.js';
import type { Metrics } from './parsers.js';

export type CellStatus = 'ok' | 'failed' | 'skipped';
export type ParamValue = string | number | boolean;
export type Params = Record<string, ParamValue>;

/** What the guests offer, probed once per run before any cell. */
export interface Capabilities {
  kernelRelease: string;
  /** The KFlex heap map type (BPF_MAP_TYPE_HEAP) is in the guest kernel's BTF. */
  kflexKernel: boolean;
  kflexKernelWhy: string;
  /** ffkx and ffkx-bench are installed in the guest. */
  ffkx: boolean;
  ffkxWhy: string;
  nativeXdp: boolean;
  serverMemoryMb: number;
  serverCpus: number;
  memtier: boolean;
  accel: 'kvm' | 'tcg';
  linkIfindex: number;
  /** The BMC baseline (NSDI '21) is built and installed in the guest. */
  bmc: boolean;
  bmcWhy: string;
}

export type Requirement = 'kflex-kernel' | 'ffkx' | 'native-xdp' | 'bmc';

export interface VariantDef {
  id: string;
  description: string;
  requires: Requirement[];
  /** GiB of KFlex heap the server allocates eagerly (plus ~6 GB of pools): checked against the VM's RAM. */
  heapGiB?: number;
}

/** Everything one cell (experiment x variant x parameters x repetition) gets. */
export interface CellContext {
  server: Host;
  client: Host;
  serverIp: string;
  linkIf: string;
  params: Params;
  settings: ExperimentSettings;
  rep: number;
  cellDir: string;
  caps: Capabilities;
  /** The run directory (experiment 5 reads experiment 4's kernel logs from it). */
  runDir: string;
  /** Run on a guest, recording the exact command and its stdout/stderr as <name>.cmd/.stdout/.stderr in the cell dir. */
  exec(host: Host, name: string, argv: readonly string[], opts?: { timeoutMs?: number; allowFailure?: boolean; input?: string }): Promise<RunResult>;
  log(line: string): void;
}

export interface CellOutcome {
  metrics: Metrics;
  /** What differs from the paper's setup (e.g. a substituted client). */
  deviations?: string[];
  /** Extra files to keep, name -> content. */
  files?: Record<string, string>;
}

/** One experiment of the artifact: its claim, variants, workload, parser and cost. */
export interface Experiment {
  id: string;
  title: string;
  /** Claim ids (report/claims.yaml) this experiment's numbers test. */
  claims: string[];
  variants: VariantDef[];
  /** The metric the summary and the report lead with. */
  headline: string;
  /** Rough seconds per cell on a host kind, for `plan` and the reproduce preamble. */
  estimateCellSeconds(settings: ExperimentSettings, accel: 'kvm' | 'tcg'): number;
  runCell(ctx: CellContext, variant: VariantDef): Promise<CellOutcome>;
}
