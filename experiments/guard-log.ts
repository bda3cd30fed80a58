/**
 * The KFlex verifier's guard-elision messages, cut into skeleton loads by what marks a load.
 *
 * What the kernel log holds (pinned sources: rs3lab/KFlex-linux a6d0177, rs3lab/KFlex 567387b):
 * - kernel/bpf/verifier.c, bpf_check(): `printk("prog=%s range_analysis_call=%d elided=%d", ...)` right after
 *   do_check_main()/do_check_subprogs(), whatever they returned: every program that reaches range analysis
 *   prints once per verification, a rejected one included. No log level, no newline; NAME is
 *   bpf_prog_aux.name (BPF_OBJ_NAME_LEN 16: 15 characters). A program rejected before do_check (check_cfg, ...)
 *   prints nothing.
 * - libbpf/src/libbpf.c, bpf_object_load(): bpf_object__probe_loading() loads an unnamed two-instruction
 *   program first, on every object load: its `prog= ` line (empty name) marks the start of a load.
 *   libbpf's feature probes (src/features.c; cached per process in `feature_cache`) add a few lines to the
 *   first load of a process only: unnamed ones and `libbpf_nametest`, `det_arg_ctx`; one of them
 *   (FEAT_PROG_BIND_MAP, bpf_object_load_prog()) comes after the skeleton's first program, ffkx_malloc_heap_base.
 * - bpf_object_load_prog(): a program the kernel rejects is loaded again with log_level 1 (`goto retry_load`),
 *   so it prints twice (more on ENOSPC); bpf_object__load_progs() then returns: the programs after it are
 *   not loaded, and ffkx-bench's next benchmark loads the skeleton again.
 *
 * So a load starts at an unnamed line once the current load has reached the skeleton's `bench_*` programs;
 * a load that repeats its last program at its end was rejected there; a load that stops inside the table
 * without a repeat stopped (the next program printed nothing: rejected before range analysis, or the log
 * ends); table rows before the log's first load are a head that was cut off (the ring buffer overwrote the
 * rest). A log filtered to the bench_ffkx_* lines (the README's `dmesg | grep ffkx_`) has no markers: its
 * loads are found by the table's program order.
 */
import { LabError, ExitCode } from '../core/errors.js';

export interface GuardLine {
  /** Empty for an unnamed program (libbpf's load probe and feature probes). */
  prog: string;
  range_analysis_call: number;
  elided: number;
}

export interface GuardExpectation extends GuardLine {
  label: string;
}

/** The seed README's table, in order: the exact expected result of experiment 5. */
export const SEED_GUARDS: GuardExpectation[] = [
  { prog: 'bench_ffkx_link', range_analysis_call: 4, elided: 4, label: 'Linked List Update' },
  { prog: 'bench_ffkx_link', range_analysis_call: 1, elided: 1, label: 'Linked List Lookup' },
  { prog: 'bench_ffkx_link', range_analysis_call: 2, elided: 2, label: 'Linked List Delete' },
  { prog: 'bench_ffkx_rbtr', range_analysis_call: 15, elided: 15, label: 'RBTree Update' },
  { prog: 'bench_ffkx_rbtr', range_analysis_call: 2, elided: 2, label: 'RBTree Lookup' },
  { prog: 'bench_ffkx_rbtr', range_analysis_call: 29, elided: 25, label: 'RBTree Delete' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 2, elided: 0, label: 'Hashmap Init' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 10, elided: 8, label: 'Hashmap Update' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 4, elided: 3, label: 'Hashmap Lookup' },
  { prog: 'bench_ffkx_hash', range_analysis_call: 3, elided: 2, label: 'Hashmap Delete' },
  { prog: 'bench_ffkx_skip', range_analysis_call: 15, elided: 10, label: 'Skiplist Update' },
  { prog: 'bench_ffkx_skip', range_analysis_call: 3, elided: 2, label: 'Skiplist Lookup' },
  { prog: 'bench_ffkx_skip', range_analysis_call: 9, elided: 4, label: 'Skiplist Delete' },
  { prog: 'bench_ffkx_coun', range_analysis_call: 0, elided: 0, label: 'Countminsketch' },
  { prog: 'bench_ffkx_coun', range_analysis_call: 0, elided: 0, label: 'Countsketch' },
];

/** The programs a guard table covers: the bench_ffkx_* ones (other programs of the skeleton print too). */
export const GUARD_PROG_PREFIX = 'bench_ffkx_';
/** Every program of bench_data_structures.bpf.c but the first (ffkx_malloc_heap_base) is named bench_*. */
const SKELETON_PREFIX = 'bench_';

function fail(why: string): never {
  throw new LabError(`cannot parse guard-elision log output: ${why}`, ExitCode.checkFailed);
}

/**
 * Every `prog=NAME range_analysis_call=N elided=M` message, in order, unnamed ones (`prog= `) included: they
 * mark the loads. Without a newline several can share one kernel-log line: matched anywhere. Input without
 * a single named message is not a guard log: that is an error, as for the other parsers.
 */
export function parseGuardLines(text: string): GuardLine[] {
  const lines = [...text.matchAll(/prog=(\S{0,15}?) range_analysis_call=(\d+) elided=(\d+)/g)].map((m) => ({
    prog: m[1]!,
    range_analysis_call: Number(m[2]),
    elided: Number(m[3]),
  }));
  if (!lines.some((l) => l.prog))
    fail('no "prog=NAME range_analysis_call=N elided=M" message (is this the kernel log of a KFlex kernel after ffkx-bench ran?)');
  return lines;
}

/** One skeleton load as the log shows it. */
export interface GuardLoad {
  /** 1-based, in log order (the cut-off head, when there is one, is load 1). */
  index: number;
  /** It began at libbpf's unnamed load-probe line (false: the head, or a filtered log read by table order). */
  marked: boolean;
  /** Its table rows (bench_ffkx_* messages) in order, a rejected program's repeats removed. */
  rows: GuardLine[];
  /** The table position of rows[0]: 0, but for a head whose start was cut off. */
  start: number;
  /**
   * complete: all 15 rows and, in a raw log, the skeleton's later programs after them; rejected: its last
   * row printed again (libbpf's retry) with nothing after it; stopped: it ends inside the table without a
   * retry; head: the rows before the log's first load, the end of a load whose start was cut off.
   */
  status: 'complete' | 'rejected' | 'stopped' | 'head';
  /** How many times the last row was printed (> 1: rejected and retried). */
  attempts: number;
  /** Table rows that fit no position of this load (neither the next program nor a retry). */
  strays: GuardLine[];
}

interface Segment {
  marked: boolean;
  rows: GuardLine[];
  /** A skeleton program that is not in the table (bench_bpf_*, ...) came after the last table row. */
  after: boolean;
}

const same = (a: GuardLine, b: GuardLine) => a.prog === b.prog && a.range_analysis_call === b.range_analysis_call && a.elided === b.elided;
const isTable = (g: GuardLine) => g.prog.startsWith(GUARD_PROG_PREFIX);
const isSkeleton = (g: GuardLine) => g.prog.startsWith(SKELETON_PREFIX);

/** Split a raw log at the loads' probe lines: segment 0 holds what comes before the first one. */
function segmentsByMarker(lines: GuardLine[]): Segment[] {
  const segs: Array<Segment & { benchSeen: boolean }> = [{ marked: false, rows: [], after: false, benchSeen: false }];
  for (const g of lines) {
    const cur = segs.at(-1)!;
    if (!g.prog) {
      // Feature probes before the skeleton's programs belong to the same load; after them, a new load begins.
      if (cur.benchSeen) segs.push({ marked: true, rows: [], after: false, benchSeen: false });
      else cur.marked = true;
      continue;
    }
    if (isSkeleton(g)) cur.benchSeen = true;
    if (isTable(g)) {
      cur.rows.push(g);
      cur.after = false;
    } else if (isSkeleton(g) && cur.rows.length) cur.after = true;
  }
  // Segment 0 counts when it holds table rows, or is a whole load that stopped before the table.
  return segs.filter((s, i) => i > 0 || s.rows.length || (s.marked && s.benchSeen)).map(({ benchSeen: _, ...s }) => s);
}

/** Split a filtered log (no probe lines) by the table's order: a load starts at the table's first program. */
function segmentsByOrder(lines: GuardLine[], expected: GuardExpectation[]): Segment[] {
  const segs: Segment[] = [];
  let next = 0;
  for (const g of lines.filter(isTable)) {
    const cur = segs.at(-1);
    const fits = cur && next < expected.length && expected[next]!.prog === g.prog;
    if (!fits && g.prog === expected[0]!.prog && !(cur && same(cur.rows.at(-1)!, g))) {
      segs.push({ marked: false, rows: [g], after: false });
      next = 1;
    } else if (cur) {
      cur.rows.push(g);
      next++;
    } else {
      // Before the first load: the cut-off head, which no row continues.
      segs.push({ marked: false, rows: [g], after: false });
      next = expected.length;
    }
  }
  return segs;
}

/** Place a load's rows from table position `start`: the next program, else a retry of the last row, else a stray. */
function place(seg: Segment, start: number, expected: GuardExpectation[]): Pick<GuardLoad, 'rows' | 'attempts' | 'strays'> {
  const rows: GuardLine[] = [];
  const strays: GuardLine[] = [];
  let attempts = 1;
  for (const g of seg.rows) {
    const at = start + rows.length;
    if (attempts === 1 && at < expected.length && expected[at]!.prog === g.prog) rows.push(g);
    else if (rows.length && same(rows.at(-1)!, g)) attempts++;
    else strays.push(g);
  }
  return { rows, attempts, strays };
}

/** Where a head fragment starts: aligned to the table's end (its load went on), else to its start; undefined if neither fits. */
function headStart(seg: Segment, expected: GuardExpectation[]): number | undefined {
  const names = seg.rows.map((r) => r.prog);
  const fitsAt = (s: number) => s >= 0 && names.every((n, i) => expected[s + i]?.prog === n);
  if (fitsAt(expected.length - names.length)) return expected.length - names.length;
  return fitsAt(0) ? 0 : undefined;
}

/** Cut the log into loads (see the file's comment) and classify each. */
export function splitGuardLoads(lines: GuardLine[], expected: GuardExpectation[] = SEED_GUARDS): GuardLoad[] {
  const rawLog = lines.some((g) => !g.prog);
  const segs = rawLog ? segmentsByMarker(lines) : segmentsByOrder(lines, expected);
  // In a raw log the skeleton's other programs show whether a load went past the table.
  const withOthers = lines.some((g) => isSkeleton(g) && !isTable(g));
  return segs.map((seg, i) => {
    const index = i + 1;
    const isHead = i === 0 && !seg.marked && seg.rows[0]?.prog !== undefined && (rawLog ? true : seg.rows[0]!.prog !== expected[0]!.prog);
    const hs = isHead ? headStart(seg, expected) : 0;
    if (isHead && hs !== 0) {
      const start = hs ?? expected.length;
      const placed = hs === undefined ? { rows: [], strays: seg.rows, attempts: 1 } : place(seg, start, expected);
      return { index, marked: false, start, status: 'head', ...placed };
    }
    const placed = place(seg, 0, expected);
    return { index, marked: seg.marked, start: 0, ...classify(placed, seg.after, withOthers, expected) };
  });
}

function classify(
  p: Pick<GuardLoad, 'rows' | 'attempts' | 'strays'>,
  after: boolean,
  withOthers: boolean,
  expected: GuardExpectation[],
): Pick<GuardLoad, 'rows' | 'attempts' | 'strays' | 'status'> {
  if (p.attempts > 1) return { ...p, status: 'rejected' };
  const full = p.rows.length === expected.length;
  if (full && (after || !withOthers)) return { ...p, status: 'complete' };
  // A load that ended early with its last two rows equal: the second is libbpf's retry of a rejected program
  // read as the next row of the same name (three links, three rbtrs, four hashes, two sketches share one).
  const [a, b] = [p.rows.at(-2), p.rows.at(-1)];
  if (a && b && same(a, b)) return { ...p, rows: p.rows.slice(0, -1), attempts: 2, status: 'rejected' };
  return { ...p, status: 'stopped' };
}

export interface GuardRow extends GuardExpectation {
  measured?: GuardLine;
  match: boolean;
}

export interface GuardComparison {
  /** The seed's table beside the first complete load (else the first load with table rows). */
  rows: GuardRow[];
  /** Each load: where it starts in the table, its status, its rows, and whether the rows it has agree. */
  loads: Array<{ index: number; status: GuardLoad['status']; start: number; rows: number; attempts: number; strays: number; agrees: boolean }>;
  /** Loads whose start is in the log (the cut-off head is not one). */
  loads_found: number;
  loads_complete: number;
  /** Complete loads equal to the seed's table. */
  loads_agreeing: number;
  loads_rejected: number;
  /** Loads that end inside the table without a retry, the log's last one excepted (it is cut off). */
  loads_stopped: number;
  /** Kept for the guards metrics and the claim: complete loads, and those equal to the table. */
  blocks: number;
  blocks_agreeing: number;
  /** What the log lacks at its ends: the head of its first load, the tail of its last one. */
  cut_off: string[];
  /** Per seed row that differs in some load: in how many loads. */
  differing: Array<{ label: string; prog: string; blocks: number }>;
  /** One sentence per load that differs, was rejected, stopped, or has lines that fit nowhere. */
  deviations: string[];
  /** One line: loads, complete, agreeing, rejected, cut off. */
  summary: string;
  expected_total: number;
  expected_elided: number;
  /** Of the first complete load (one load of the 15 programs, not the sum over loads). */
  measured_total: number;
  measured_elided: number;
  exact: boolean;
}

function compareRows(l: GuardLoad, expected: GuardExpectation[]): GuardRow[] {
  return expected.map((e, i) => {
    const m = i >= l.start ? l.rows[i - l.start] : undefined;
    return { ...e, measured: m, match: !!m && m.prog === e.prog && m.range_analysis_call === e.range_analysis_call && m.elided === e.elided };
  });
}

function rowText(r: GuardRow): string {
  const want = `seed ${r.range_analysis_call}/${r.elided}`;
  if (!r.measured) return `${r.label} (${r.prog}) missing, ${want}`;
  const who = r.measured.prog === r.prog ? '' : ` read prog=${r.measured.prog}`;
  return `${r.label} (${r.prog})${who} range_analysis_call=${r.measured.range_analysis_call} elided=${r.measured.elided}, ${want}`;
}

/** The rows a load has that differ from the seed (rows it does not have are not differences). */
const differingRows = (rows: GuardRow[]) => rows.filter((r) => r.measured && !r.match);

function loadDeviation(l: GuardLoad, rows: GuardRow[], of: string, expected: GuardExpectation[], last: boolean): string | undefined {
  // A rejected program's counts are those at its rejection: said once, in the rejection.
  const rejectedAt = l.status === 'rejected' ? l.start + l.rows.length - 1 : -1;
  const diff = differingRows(rows)
    .filter((r) => r !== rows[rejectedAt])
    .map(rowText);
  const at = (i: number) => expected[i] && `${expected[i]!.label} (${expected[i]!.prog})`;
  const parts: string[] = [];
  if (l.status === 'rejected') {
    const r = l.rows.at(-1)!;
    parts.push(
      `${at(l.start + l.rows.length - 1)} rejected at range_analysis_call=${r.range_analysis_call} elided=${r.elided} ` +
        `(printed ${l.attempts} times: libbpf's retry with a log), ${expected.length - l.start - l.rows.length} table programs after it not loaded`,
    );
  }
  if (l.status === 'stopped' && !last)
    parts.push(
      `stops after ${l.rows.length ? at(l.rows.length - 1) : 'none of the table'}: ${at(l.rows.length)} ` +
        'and the rest not verified (rejected before range analysis?)',
    );
  if (l.strays.length)
    parts.push(`${l.strays.length} lines fit no position (${l.strays.map((g) => `prog=${g.prog} ${g.range_analysis_call}/${g.elided}`).join(', ')})`);
  parts.push(...diff);
  return parts.length ? `${l.status === 'head' ? 'cut-off head' : `load ${l.index}`} of ${of}: ${parts.join('; ')}` : undefined;
}

function cutOffText(loads: GuardLoad[], expected: GuardExpectation[]): string[] {
  const out: string[] = [];
  const head = loads.find((l) => l.status === 'head');
  if (head)
    out.push(
      head.rows.length
        ? `the head: the log begins inside a load, at ${expected[head.start]!.label} ` +
            `(${head.rows.length} of ${expected.length} table rows; the rest was overwritten)`
        : `the head: ${head.strays.length} table lines before the first load fit no position of the table`,
    );
  const last = loads.at(-1);
  if (last && last.status === 'stopped')
    out.push(`the tail: the log ends inside load ${last.index}, after ${last.rows.length} of ${expected.length} table rows`);
  return out;
}

/**
 * Compare every load of the log with the seed's table, position by position (names alone are ambiguous:
 * three programs read bench_ffkx_link). Exact when at least one load is complete, every complete load equals
 * the table, none was rejected or stopped, and the rows of the cut-off ends that are there agree.
 */
export function compareGuards(measured: GuardLine[], expected: GuardExpectation[] = SEED_GUARDS): GuardComparison {
  const loads = splitGuardLoads(measured, expected);
  const compared = loads.map((l) => ({ l, rows: compareRows(l, expected) }));
  const found = loads.filter((l) => l.status !== 'head');
  const complete = compared.filter((c) => c.l.status === 'complete');
  const agreeing = complete.filter((c) => c.rows.every((r) => r.match)).length;
  const of = `${found.length}`;
  const deviations = compared.flatMap(({ l, rows }) => loadDeviation(l, rows, of, expected, l === loads.at(-1)) ?? []);
  if (!loads.length)
    deviations.push(
      `no ${GUARD_PROG_PREFIX}* program in the log (${measured.filter((g) => g.prog).length} other verifier messages): ` +
        "ffkx-bench's data-structure programs were not loaded",
    );
  const differing = expected
    .map((e, i) => ({ label: e.label, prog: e.prog, blocks: compared.filter((c) => c.rows[i]!.measured && !c.rows[i]!.match).length }))
    .filter((d) => d.blocks > 0);
  const rejected = found.filter((l) => l.status === 'rejected').length;
  const stopped = found.filter((l) => l.status === 'stopped' && l !== loads.at(-1)).length;
  const cut_off = cutOffText(loads, expected);
  const shown = complete[0] ?? compared.find((c) => c.l.rows.length);
  const sum = (xs: GuardLine[], k: 'range_analysis_call' | 'elided') => xs.reduce((a, x) => a + x[k], 0);
  const first = shown?.l.rows ?? [];
  const exact = complete.length > 0 && agreeing === complete.length && deviations.length === 0;
  const summary =
    `${found.length} loads in the log: ${complete.length} complete, ${agreeing} of them equal to the seed's table` +
    `${rejected ? `; ${rejected} rejected` : ''}${stopped ? `; ${stopped} stopped early` : ''}` +
    `${cut_off.length ? `; cut off: ${cut_off.join('; ')}` : ''}`;
  return {
    rows: shown ? shown.rows : compareRows({ index: 0, marked: false, rows: [], start: 0, status: 'stopped', attempts: 1, strays: [] }, expected),
    loads: compared.map(({ l, rows }) => ({
      index: l.index,
      status: l.status,
      start: l.start,
      rows: l.rows.length,
      attempts: l.attempts,
      strays: l.strays.length,
      agrees: differingRows(rows).length === 0 && !l.strays.length,
    })),
    loads_found: found.length,
    loads_complete: complete.length,
    loads_agreeing: agreeing,
    loads_rejected: rejected,
    loads_stopped: stopped,
    blocks: complete.length,
    blocks_agreeing: agreeing,
    cut_off,
    differing,
    deviations,
    summary,
    expected_total: sum(expected, 'range_analysis_call'),
    expected_elided: sum(expected, 'elided'),
    measured_total: sum(first, 'range_analysis_call'),
    measured_elided: sum(first, 'elided'),
    exact,
  };
}
