import type { Host } from '../core/host.js';
import type { Accel } from '../core/testbed.js';
import type { ExperimentSettings, HeapProgram } from '../core/config.js';
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
  /** 5-level paging active in the server's kernel (the la57 CPU flag survives only when the kernel uses it). */
  la57: boolean;
  accel: Accel;
  linkIfindex: number;
  /** The BMC baseline (NSDI '21) is built and installed in the guest. */
  bmc: boolean;
  bmcWhy: string;
}

export type Requirement = 'kflex-kernel' | 'ffkx' | 'native-xdp' | 'bmc' | 'memtier';

export interface VariantDef {
  id: string;
  description: string;
  requires: Requirement[];
  /** GiB of KFlex heap the artifact's program allocates whole at map creation (its pools live inside): checked against the VM's RAM. */
  heapGiB?: number;
  /** Which ffkx program's heap this is: the profile's kflex.heap_gib may scale it (a recorded deviation). */
  heap?: HeapProgram;
  /** This variant only reads what another cell produced (its kernel log): skipped when that cell did not run here. */
  logOf?: { experiment: string; variant: string };
}

/**
 * Where a cell's time goes, recorded in its status.json: everything but warm-up and measurement is the
 * cell's fixed cost. The runner opens `server-start` (with the kernel-log mark before the cell) and
 * `collection` (the kernel log after it); experiments mark the rest as they reach it.
 */
export const CELL_PHASES = ['server-start', 'ready', 'warm-up', 'measurement', 'reset', 'collection'] as const;
export type CellPhase = (typeof CELL_PHASES)[number];

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
  /** How long this whole cell may take (ms): its estimate times a factor plus a margin; client timeouts use it. */
  boundMs: number;
  /** The run directory (experiment 5 reads experiment 4's kernel logs from it). */
  runDir: string;
  /** Run on a guest, recording the exact command and its stdout/stderr as <name>.cmd/.stdout/.stderr in the cell dir. */
  exec(host: Host, name: string, argv: readonly string[], opts?: { timeoutMs?: number; allowFailure?: boolean; input?: string }): Promise<RunResult>;
  log(line: string): void;
  /** The cell enters this phase now (or at `at`, ms since the epoch, when it is known after the fact). */
  phase(name: CellPhase, at?: number): void;
}

export interface CellOutcome {
  metrics: Metrics;
  /** What differs from the paper's setup (e.g. a substituted client). */
  deviations?: string[];
  /** Extra files to keep, name -> content. */
  files?: Record<string, string>;
}

/**
 * How the artifact runs this experiment: its client line, and the grid parameters (and measurement
 * seconds) that make up its load. A profile whose load differs records a deviation.
 */
export interface ArtifactLoad {
  /** The artifact's own command, as its README gives it. */
  command: string;
  /** Grid parameters (keys of this experiment's grid) that define the artifact's load. */
  params: Params;
  /** The artifact's measurement length, when it fixes one. */
  duration_s?: number;
  /** Where the artifact states it. */
  source: string;
}

/** One experiment of the artifact: its claim, variants, workload, parser and cost. */
export interface Experiment {
  id: string;
  /** The artifact's load for this experiment, if it gives one. */
  artifact?: ArtifactLoad;
  title: string;
  /** Claim ids (report/claims.yaml) this experiment's numbers test. */
  claims: string[];
  variants: VariantDef[];
  /** The metric the summary and the report lead with. */
  headline: string;
  /** The parsers of its clients' output, for `kflex-lab parse NAME FILE` on a capture made by hand. */
  parsers: Record<string, (text: string) => unknown>;
  /** Rough seconds per cell on a host kind, for `plan` and the reproduce preamble. */
  estimateCellSeconds(settings: ExperimentSettings, accel: Accel): number;
  runCell(ctx: CellContext, variant: VariantDef): Promise<CellOutcome>;
}
