/**
 * The KFlex-to-upstream mechanism table (issue 18): for each mechanism KFlex's kernel offered and the
 * upstream equivalent its archived README names, a small program of the lab's own (bpf/mechanisms/*.bpf.c,
 * built by the llvm stage) that uses it. Loaded in the server guest with bpftool, each says whether the
 * running kernel has the mechanism ("present") or not, with the verifier's (or libbpf's) last lines when
 * not; an XDP probe that loads is also run once (bpftool prog run) and must return XDP_PASS, which it does
 * only when the mechanism behaved.
 */
import { readFile } from 'node:fs/promises';
import type { Host } from '../core/host.js';
import { LabError, ExitCode } from '../core/errors.js';

/** One of the lab's probe programs. */
export interface MechanismProbe {
  /** Short id; also the pin name's suffix and the output marker. */
  id: string;
  /** Source under bpf/mechanisms/; the object is the same name with .o. */
  program: string;
  /** The program type its section declares: only XDP programs can be run by bpftool. */
  progType: 'xdp' | 'syscall';
  /** What the program does with the mechanism. */
  exercises: string;
  /** Since when upstream Linux has it, or where it came from. */
  origin: string;
}

/** One row of the table: a KFlex mechanism and its upstream equivalent, each with its probe (if it has one). */
export interface Mechanism {
  id: string;
  kflex: string;
  upstream: string;
  upstreamProbe: string;
  /** The probe of what KFlex's own kernel offered for it, when that differs from the upstream probe. */
  kflexProbe?: string;
  /** What KFlex's side was, in a sentence (with the file in KFlex's repository that shows it). */
  kflexNote: string;
}

export const MECHANISM_PROBES: readonly MechanismProbe[] = [
  {
    id: 'arena',
    program: 'arena.bpf.c',
    progType: 'syscall',
    exercises:
      'an arena map; one page from bpf_arena_alloc_pages written and read back through an __arena pointer (clang 19 address-space casts); bpf_arena_free_pages',
    origin: 'upstream, Linux 6.9',
  },
  {
    id: 'kflex_heap',
    program: 'kflex_heap.bpf.c',
    progType: 'xdp',
    exercises: "a one-page heap map (map type 34), bpf_register_heap, a word written and read back through the map's lookup",
    origin: "KFlex's fork of Linux 6.9 only",
  },
  {
    id: 'cond_break',
    program: 'cond_break.bpf.c',
    progType: 'xdp',
    exercises: 'may_goto (cond_break) in a loop over a count the verifier cannot know and in a loop with no exit but the budget',
    origin: 'upstream, Linux 6.9 (timed since 6.15); KFlex used it too',
  },
  {
    id: 'kflex_loop',
    program: 'kflex_loop.bpf.c',
    progType: 'xdp',
    exercises: 'bpf_iter_loop_new/next/destroy: an open-ended iteration the program stops after ten rounds',
    origin: "KFlex's fork of Linux 6.9 only",
  },
  {
    id: 'res_spin_lock',
    program: 'res_spin_lock.bpf.c',
    progType: 'xdp',
    exercises: 'bpf_res_spin_lock / bpf_res_spin_unlock on a lock in an array map value, guarding a counter beside it',
    origin: 'upstream, Linux 6.15',
  },
  {
    id: 'irq',
    program: 'irq.bpf.c',
    progType: 'xdp',
    exercises: 'bpf_local_irq_save / bpf_local_irq_restore around a counter update, flags on the stack',
    origin: 'upstream, Linux 6.14',
  },
  {
    id: 'preempt',
    program: 'preempt.bpf.c',
    progType: 'xdp',
    exercises: 'bpf_preempt_disable / bpf_preempt_enable around a counter update',
    origin: "upstream, Linux 6.10; KFlex's fork had the same kfuncs",
  },
];

export const MECHANISMS: readonly Mechanism[] = [
  {
    id: 'heap',
    kflex: 'heaps (BPF_MAP_TYPE_HEAP, the ffkx heap)',
    upstream: 'BPF arenas (BPF_MAP_TYPE_ARENA, bpf_arena_alloc_pages/free_pages, __arena pointers)',
    upstreamProbe: 'arena',
    kflexProbe: 'kflex_heap',
    kflexNote:
      'map type 34 after ARENA (KFlex bpf/vmlinux.h, bpf/include/ffkx_heap.bpf.h ffkx_heap()); ' +
      'the fork had arenas too (bpf/vmlinux.h: BPF_MAP_TYPE_ARENA = 33)',
  },
  {
    id: 'loop',
    kflex: 'loop termination (bpf_iter_loop, may_goto)',
    upstream: 'cond_break / timed may_goto',
    upstreamProbe: 'cond_break',
    kflexProbe: 'kflex_loop',
    kflexNote: 'its own bpf_iter_loop kfuncs (bpf/include/ffkx_util.bpf.h ffkx_for) and may_goto (cond_break in bpf/bench_data_structures.bpf.c)',
  },
  {
    id: 'lock',
    kflex: "KFlex's spin lock",
    upstream: 'resilient queued spin lock (bpf_res_spin_lock / bpf_res_spin_unlock)',
    upstreamProbe: 'res_spin_lock',
    kflexNote: 'a library, not a kernel mechanism: an MCS lock in BPF over heap memory (bpf/include/ffkx_spin_lock.bpf.h)',
  },
  {
    id: 'irq',
    kflex: 'IRQ save/restore',
    upstream: 'bpf_local_irq_save / bpf_local_irq_restore',
    upstreamProbe: 'irq',
    kflexNote: "no kfunc in the fork's BTF (bpf/vmlinux.h has no bpf_local_irq_save)",
  },
  {
    id: 'preempt',
    kflex: 'preemption control',
    upstream: 'bpf_preempt_disable / bpf_preempt_enable',
    upstreamProbe: 'preempt',
    kflexNote: 'the same kfuncs (bpf/vmlinux.h KF_bpf_preempt_disable; bpf/include/ffkx_helpers.bpf.h)',
  },
];

/** Where the probes' objects go in the guest, and the prefix of their pins in bpffs. */
export const MECHANISMS_GUEST_DIR = '/tmp/kflex-lab-mechanisms';
export const MECHANISMS_PIN_PREFIX = '/sys/fs/bpf/kflex_lab_mech_';
/** XDP_PASS: what a run of an XDP probe returns when its mechanism behaved. */
export const PROBE_PASS = 2;

export const objectOf = (p: MechanismProbe): string => p.program.replace(/\.c$/, '.o');

/**
 * Lines kept from the start and the end of what bpftool printed for one probe: a verifier log can be
 * 500,000 lines. The end must hold the verdict and, from Linux 7.x, the structured report after it
 * (Verification failed / Reason / At / Causal path / Suggestion: about 40 lines).
 */
export const KEEP_HEAD = 10;
export const KEEP_TAIL = 100;

/**
 * The guest script (sh, one round trip): for each probe, `bpftool prog load` of its object (pinned so it
 * stays loaded for the run), what bpftool and libbpf said (on a failed load libbpf prints the verifier's
 * log; its first KEEP_HEAD and last KEEP_TAIL lines are kept, the rest is counted in an `@@omitted N
 * lines` line), a `bpftool prog run` of a loaded XDP probe on a 64-byte zero packet, then the unpin.
 * Markers: `@@kernel`, then per probe `@@probe ID`, `@@load RC`, `@@run RC` (loaded XDP probes only),
 * `@@end`. $1 is the directory holding the objects.
 */
export function mechanismsScript(probes: readonly MechanismProbe[] = MECHANISM_PROBES, pinPrefix = MECHANISMS_PIN_PREFIX): string {
  const lines = [
    'dir="$1"',
    'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf',
    'head -c 64 /dev/zero > "$dir/packet"',
    'echo @@kernel; uname -r',
    `clip() { awk -v h=${KEEP_HEAD} -v t=${KEEP_TAIL} '{ l[NR] = $0 } END { for (i = 1; i <= NR; i++) ` +
      `if (i <= h || i > NR - t) print l[i]; else if (i == h + 1) print "@@omitted " (NR - h - t) " lines" }'; }`,
  ];
  for (const p of probes) {
    if (!/^[a-z0-9_]+$/.test(p.id)) throw new Error(`mechanism probe id ${JSON.stringify(p.id)}: only a-z, 0-9 and _ (it names a pin)`);
    const pin = `${pinPrefix}${p.id}`;
    lines.push(
      `echo @@probe ${p.id}; rm -f ${pin}`,
      `out=$(bpftool prog load "$dir/${objectOf(p)}" ${pin} 2>&1); rc=$?`,
      `echo "@@load $rc"; [ -n "$out" ] && printf '%s\\n' "$out" | clip`,
    );
    if (p.progType === 'xdp')
      lines.push(
        `if [ $rc -eq 0 ]; then out=$(bpftool prog run pinned ${pin} data_in "$dir/packet" repeat 1 2>&1); echo "@@run $?"; printf '%s\\n' "$out" | clip; fi`,
      );
    lines.push(`rm -f ${pin}; echo @@end`);
  }
  return lines.join('\n');
}

export interface MechanismResult {
  probe: string;
  /** The kernel has the mechanism: the probe was accepted (map created, kfuncs resolved, verified, loaded). */
  present: boolean;
  /** Why not: the verifier's last lines, else libbpf's or bpftool's. */
  message?: string;
  /** A run of a loaded XDP probe: its return value, and whether it is XDP_PASS (the mechanism behaved). */
  retval?: number;
  works?: boolean;
  /** Everything bpftool printed for the probe. */
  output: string;
}

export interface MechanismsReport {
  kernel: string;
  results: MechanismResult[];
}

/** Lines that only repeat that a load failed, around the lines that say why. */
const WRAPPER_LINES = [
  /^libbpf: failed to load object /,
  /^libbpf: failed to load BPF skeleton/,
  /^Error: failed to (load|open) (object file|program)/,
  /^libbpf: prog '[^']*': failed to load: -?\d+$/,
];
/** The verifier's closing statistics, not its verdict. */
const VERIFIER_STATS = [/^processed \d+ insns/, /^verification time /, /^stack depth /];

/**
 * Why a probe did not load: the last `n` lines of the verifier's log when libbpf printed one (between
 * `-- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG --`, without the closing statistics; when the
 * verifier adds a structured report (Linux 7.x: `Verification failed: ...`, Reason, At, Causal path,
 * Suggestion), the last `n` lines before it and its headline), otherwise libbpf's and bpftool's own
 * lines without the ones that only say "failed to load object".
 */
export function loadFailureMessage(output: string, n = 3): string {
  const lines = output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => !/^@@omitted \d+ lines$/.test(l));
  const begin = lines.findIndex((l) => /-- BEGIN PROG LOAD LOG --$/.test(l));
  const end = lines.findIndex((l, i) => i > begin && /-- END PROG LOAD LOG --$/.test(l));
  let picked: string[];
  if (begin >= 0 || end >= 0) {
    // The log, also when its start was clipped away (it then runs from the first line to its END marker).
    const log = lines.slice(begin + 1, end >= 0 ? end : undefined).filter((l) => l.trim() && !VERIFIER_STATS.some((r) => r.test(l)));
    const report = log.findIndex((l) => /^Verification failed: /.test(l));
    if (report > 0) return [...log.slice(0, report).slice(-n), log[report]!].join('\n');
    picked = log;
  } else {
    picked = lines.filter((l) => l.trim() && !WRAPPER_LINES.some((r) => r.test(l)));
  }
  if (!picked.length) picked = lines.filter((l) => l.trim());
  return picked.slice(-n).join('\n');
}

/** Parse the script's output into one result per probe, in the probes' order; a probe the output lacks is an error. */
export function parseMechanismsOutput(out: string, probes: readonly MechanismProbe[] = MECHANISM_PROBES): MechanismsReport {
  const kernel = out.match(/^@@kernel\n(.*)$/m)?.[1]?.trim() ?? '';
  const blocks = new Map<string, string>();
  for (const m of out.matchAll(/^@@probe ([a-z0-9_]+)\n([\s\S]*?)^@@end$/gm)) blocks.set(m[1]!, m[2]!);
  const results = probes.map((p): MechanismResult => {
    const block = blocks.get(p.id);
    if (block === undefined)
      throw new LabError(
        `mechanism probes: no result for ${p.id} in the guest's output (did the script stop early?): ${out.trim().slice(-300)}`,
        ExitCode.checkFailed,
      );
    const load = block.match(/^@@load (\d+)\n([\s\S]*?)(?=^@@run |(?![\s\S]))/m);
    if (!load) throw new LabError(`mechanism probes: no @@load line for ${p.id}: ${block.trim().slice(-300)}`, ExitCode.checkFailed);
    const output = load[2]!.trimEnd();
    if (load[1] !== '0') return { probe: p.id, present: false, message: loadFailureMessage(output), output };
    const run = block.match(/^@@run (\d+)\n([\s\S]*)$/m);
    if (!run) return { probe: p.id, present: true, output };
    const retval = run[2]!.match(/Return value: (\d+)/);
    return {
      probe: p.id,
      present: true,
      output: `${output}\n${run[2]!.trimEnd()}`.trim(),
      ...(retval
        ? { retval: Number(retval[1]), works: Number(retval[1]) === PROBE_PASS }
        : { works: false, message: run[2]!.trim().split('\n').slice(-3).join('\n') }),
    };
  });
  return { kernel, results };
}

export interface MechanismRow {
  mechanism: Mechanism;
  /** The upstream probe's result on this kernel. */
  upstream: MechanismResult;
  /** The KFlex-side probe's result on this kernel, when KFlex's kernel had a mechanism of its own for the row. */
  kflex?: MechanismResult;
}

/** One row per mechanism with its probes' results (a result the report lacks is an error: the run is incomplete). */
export function mechanismRows(report: MechanismsReport, mechanisms: readonly Mechanism[] = MECHANISMS): MechanismRow[] {
  const result = (id: string): MechanismResult => {
    const r = report.results.find((x) => x.probe === id);
    if (!r) throw new LabError(`mechanism table: no result for the ${id} probe on ${report.kernel || 'this kernel'}`, ExitCode.checkFailed);
    return r;
  };
  return mechanisms.map((m) => ({ mechanism: m, upstream: result(m.upstreamProbe), ...(m.kflexProbe ? { kflex: result(m.kflexProbe) } : {}) }));
}

/**
 * Guest side of the copy: stdin holds one `NAME BASE64` line per object; each is decoded into $1. A
 * failure prints `@@copy-failed NAME` and stops. One round trip with the script instead of one copy per
 * object (each costs seconds under TCG); awk splits the lines (sh's `read` takes seconds per object).
 */
export const UNPACK_SCRIPT = `mkdir -p "$1" && awk -v d="$1" '{ f = d "/" $1 ".b64"; print $2 > f; close(f) }' || { echo "@@copy-failed $1"; exit 0; }
for f in "$1"/*.b64; do base64 -d "$f" > "\${f%.b64}" && rm -f "$f" || { echo "@@copy-failed \${f##*/}"; exit 0; }; done`;

/** The copy's stdin: one `NAME BASE64` line per probe object, from `objects` (object file name -> path here). */
export async function unpackInput(objects: Record<string, string>, probes: readonly MechanismProbe[] = MECHANISM_PROBES): Promise<string> {
  const lines: string[] = [];
  for (const p of probes) {
    const local = objects[objectOf(p)];
    if (!local) throw new LabError(`no object ${objectOf(p)} for the ${p.id} mechanism probe: rebuild the llvm stage (kflex-lab build llvm)`, ExitCode.infra);
    lines.push(`${objectOf(p)} ${(await readFile(local)).toString('base64')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Copy the probes' objects to the server and run the script there, in one round trip, and parse it.
 * `objects` maps an object's file name to its path on this host (as llvmOutputs().mechanismObjects does).
 */
export async function probeMechanisms(
  server: Host,
  objects: Record<string, string>,
  probes: readonly MechanismProbe[] = MECHANISM_PROBES,
): Promise<MechanismsReport & { raw: string }> {
  const input = await unpackInput(objects, probes);
  const r = await server.exec(['sh', '-c', `${UNPACK_SCRIPT}\n${mechanismsScript(probes)}`, 'mechanisms', MECHANISMS_GUEST_DIR], {
    input,
    timeoutMs: 300_000,
    allowFailure: true,
  });
  const copy = r.stdout.match(/^@@copy-failed (.*)$/m);
  if (copy)
    throw new LabError(
      `could not write the mechanism probe ${copy[1]} to the server's ${MECHANISMS_GUEST_DIR}: ${r.stderr.trim().slice(-300)}`,
      ExitCode.infra,
    );
  return { ...parseMechanismsOutput(r.stdout, probes), raw: r.stdout };
}
