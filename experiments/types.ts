import type { Host } from '../core/host.js';
import type { Accel } from '../core/accel.js';
import type { ExperimentSettings, HeapProgram, Profile } from '../core/config.js';
import type { Deviation } from '../core/rundir.js';
import type { RunResult } from '../core/exec.js';
import type { Metrics } from './parsers.js';

export type CellStatus = 'ok' | 'failed' | 'skipped';
export type ParamValue = string | number | boolean;
export type Params = Record<string, ParamValue>;

/** What the guests offer, probed once per run before any cell (experiments/requirements.ts). */
export interface Capabilities {
  kernelRelease: string;
  /** Which of the names the variants ask about are in the server kernel's BTF; undefined when it has no BTF. */
  btf?: Record<string, boolean>;
  /** Which declared guest programs exist, keyed `server:/path` or `client:name` (programKey). */
  programs: Record<string, boolean>;
  nativeXdp: boolean;
  serverMemoryMb: number;
  serverCpus: number;
  /** 5-level paging active in the server's kernel (the la57 CPU flag survives only when the kernel uses it). */
  la57: boolean;
  accel: Accel;
  linkIfindex: number;
}

/** Which side of the link a guest program runs on. */
export type Role = 'server' | 'client';

/**
 * One thing a variant needs from the testbed, declared where the variant is. The run probes every declared
 * need of the planned cells in one round trip per machine; `plan` forecasts it from the profile; `hosts
 * check`/`prepare` install the programs. An unmet need skips the cell with `missing`, never fails it.
 */
export type Requirement =
  | {
      kind: 'btf';
      /** A name (type, enum value or kfunc) that must be in the server kernel's BTF. */
      name: string;
      /** Why the cell is skipped without it ({release} is replaced by the kernel release). */
      missing: string;
      /** Whether a profile's kernel will have it, for `plan` before anything is built. */
      planned(profile: Profile): boolean;
    }
  | {
      kind: 'program';
      role: Role;
      /** An absolute path in the guest (a lab-built program), or a name looked up on PATH. */
      path: string;
      /** Debian/Ubuntu packages that provide it; undefined when no distribution packages it (see notPackaged). */
      apt?: string[];
      /** What to do when no package provides it. */
      notPackaged?: string;
      missing: string;
      planned(profile: Profile): boolean;
    }
  | { kind: 'native-xdp' };

export interface VariantDef {
  id: string;
  description: string;
  requires: Requirement[];
  /** GiB of KFlex heap the artifact's program allocates whole at map creation (its pools live inside): checked against the VM's RAM. */
  heapGiB?: number;
  /** Which ffkx program's heap this is: the profile's kflex.heap_gib may scale it (a recorded deviation). */
  heap?: HeapProgram;
  /**
   * How many of its heaps one cell can hold at once (default 1): ffkx-bench frees and reallocates its heap per
   * benchmark, and a heap is freed asynchronously (experiments/heaps.ts), so the next can be allocated before the
   * last is gone: 2. The server VM's auto sizing leaves room for that many (lab/sizing.ts sizeServer).
   */
  heapCopies?: number;
  /** This variant only reads what another cell produced (its kernel log): skipped when that cell did not run here. */
  logOf?: { experiment: string; variant: string };
}

/**
 * Where a cell's time goes, recorded in its status.json: everything but warm-up and measurement is the
 * cell's fixed cost. The runner opens `heap-free` (a KFlex cell after another waits for the last heap's
 * memory, experiments/heaps.ts), `server-start` (with the kernel-log mark before the cell) and
 * `collection` (the kernel log after it); experiments mark the rest as they reach it.
 */
export const CELL_PHASES = ['heap-free', 'server-start', 'ready', 'warm-up', 'measurement', 'reset', 'collection'] as const;
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
  /** Aborted when the cell is cancelled (past its bound): ctx.exec kills its command, and no new one starts. */
  signal: AbortSignal;
  /** The run directory (experiment 5 reads experiment 4's kernel logs from it). */
  runDir: string;
  /** The lab's own BPF objects built on this host (by file name), for cells that load them in a guest. */
  objects: Record<string, string>;
  /** Run on a guest, recording the exact command and its stdout/stderr as <name>.cmd/.stdout/.stderr in the cell dir. */
  exec(host: Host, name: string, argv: readonly string[], opts?: { timeoutMs?: number; allowFailure?: boolean; input?: string }): Promise<RunResult>;
  log(line: string): void;
  /** The cell enters this phase now (or at `at`, ms since the epoch, when it is known after the fact). */
  phase(name: CellPhase, at?: number): void;
}

/** A small table a cell states (e.g. which mechanisms a kernel has): the report shows it as it is. */
export interface CellTable {
  title: string;
  columns: string[];
  rows: string[][];
}

export interface CellOutcome {
  metrics: Metrics;
  /** A table for the report, kept in the cell's record. */
  table?: CellTable;
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
  /** Grid keys the artifact's command fixes some other way (a config file, a filter): never "also sets". */
  inCommand?: string[];
}

/** One grid key an experiment reads, and the values it takes (config validation reports `allowed`). */
export interface GridParam {
  check(v: ParamValue): boolean;
  allowed: string;
}

/** How the report draws an experiment: a bar per variant, ratio pairs (X_op beside bpf_X_op), or a table. */
export type ChartKind = 'variants' | 'pairs' | 'table';

/** What the report needs of an experiment: the metric it leads with and how it is drawn. */
export interface ExperimentView {
  headline: string;
  chart: ChartKind;
  /** Variants that allocate a KFlex heap: a claim comparing one of them is marked when its heap is scaled. */
  heapVariants?: string[];
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
  /** The grid keys it reads: lab.yaml's grids are validated against these. */
  grid: Record<string, GridParam>;
  /** How the report draws it. */
  chart: ChartKind;
  /** Differences from the artifact every run of this experiment has, whatever the profile (e.g. an erratum). */
  deviations?(profile: Profile): Deviation[];
  /** The parsers of its clients' output, for `kflex-lab parse NAME FILE` on a capture made by hand. */
  parsers: Record<string, (text: string) => unknown>;
  /** Rough seconds per cell on a host kind, for `plan` and the reproduce preamble. */
  estimateCellSeconds(settings: ExperimentSettings, accel: Accel, variant?: VariantDef): number;
  runCell(ctx: CellContext, variant: VariantDef): Promise<CellOutcome>;
  /**
   * The client command a cell of this variant runs against its server, built as the cell builds it (its
   * connections size the server's open-file limit: experiments/server.ts serverNofile), so `plan` shows the
   * limit the cell will set. Undefined for variants without a server of the lab's.
   */
  clientArgv?(cell: ClientCell, variant: VariantDef): string[] | undefined;
}

/** What a cell's client command is built from: the grid point, the settings, the probed guests, the server's address. */
export type ClientCell = Pick<CellContext, 'params' | 'settings' | 'caps' | 'serverIp'>;
