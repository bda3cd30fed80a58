/**
 * What every grader shares: reading labctl's output, decoding map entries, comparing what was expected
 * with what was seen, and loading a submission (whose failure ends the check with the verifier's log).
 * Everything but loadWith and dumpMap is pure, and unit-tested on captured output (test/unit/labs.test.ts).
 */
import { mulberry32 } from '../core/random.js';
import { type GradeContext, type LabTest, SubmissionRejected } from './types.js';

/** One `@@name rest` marker of labctl's output and the lines after it up to the next marker. */
export interface Marker {
  name: string;
  arg: string;
  lines: string[];
}

export function parseMarkers(out: string): Marker[] {
  const markers: Marker[] = [];
  for (const line of out.split('\n')) {
    const m = line.match(/^@@([a-z-]+) ?(.*)$/);
    if (m) markers.push({ name: m[1]!, arg: m[2]!, lines: [] });
    else if (line && markers.length) markers.at(-1)!.lines.push(line);
  }
  return markers;
}

export const marker = (ms: Marker[], name: string) => ms.find((m) => m.name === name);
export const markers = (ms: Marker[], name: string) => ms.filter((m) => m.name === name);

/** Little-endian unsigned integer of a byte buffer (the guests are x86-64). */
export function leUint(b: Buffer): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

export interface MapEntry {
  key: Buffer;
  /** One value per CPU for per-CPU maps, else one. */
  values: Buffer[];
}

export interface MapDump {
  info: { type: number; key_size: number; value_size: number; max_entries: number; cpus: number };
  entries: MapEntry[];
}

/** `labctl dump PIN`: a `@@map {...}` line, then one JSON line per entry with hex bytes. */
export function parseMapDump(out: string): MapDump | undefined {
  const head = marker(parseMarkers(out), 'map');
  if (!head) return undefined;
  const entries = head.lines.map((l) => {
    const e = JSON.parse(l) as { key: string; values: string[] };
    return { key: Buffer.from(e.key, 'hex'), values: e.values.map((v) => Buffer.from(v, 'hex')) };
  });
  return { info: JSON.parse(head.arg) as MapDump['info'], entries };
}

/** An entry's value summed over CPUs (a per-CPU counter is the sum of its slots). */
export const entryTotal = (e: MapEntry): bigint => e.values.reduce((a, v) => a + leUint(v), 0n);

/** A zero-padded C string key: the bytes before the first NUL, as latin1 (what memcached keys are). */
export function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1');
}

/** Counters keyed by name: one test per expected key, and one for keys counted that should not be. */
export function compareCounts(what: string, expected: Map<string, number>, seen: Map<string, number>, label = (k: string) => k): LabTest[] {
  const tests: LabTest[] = [];
  for (const [k, n] of expected) {
    const s = seen.get(k) ?? 0;
    tests.push({ name: `${what} ${label(k)}`, pass: s === n, expected: String(n), seen: String(s) });
  }
  const extra = [...seen].filter(([k, n]) => !expected.has(k) && n !== 0);
  tests.push({
    name: `${what}: nothing else counted`,
    pass: extra.length === 0,
    expected: 'no other key',
    seen: extra.length ? extra.map(([k, n]) => `${label(k)}=${n}`).join(', ') : 'none',
  });
  return tests;
}

/** Pure: the verifier's log from libbpf's messages, and the instruction it stopped at. */
export function verifierLog(stderr: string): { log: string; failing?: string; reason?: string } {
  const m = stderr.match(/-- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/);
  const log = (m ? m[1]! : stderr).trimEnd();
  const lines = log.split('\n');
  // Instruction lines look like `12: (85) call bpf_map_lookup_elem#1` (or `12: R1=ctx() ...` for states).
  const insns = lines.filter((l) => /^\d+: \([0-9a-f]{2}\)/.test(l));
  const reason = lines.filter((l) => l.trim() && !/^\d+: /.test(l) && !/^(processed|verification time|stack depth|from \d+ to|;)/.test(l)).at(-1);
  return { log, failing: insns.at(-1), reason };
}

/**
 * Pure: labctl's answer to a command that loads the object (its stdout markers; libbpf's messages, the
 * verifier's log among them, on stderr or mixed into stdout): the markers, or SubmissionRejected saying why.
 */
export function judgeLoad(r: { code: number; stdout: string; stderr: string }, what: string): Marker[] {
  const ms = parseMarkers(r.stdout);
  if (marker(ms, 'load-failed')) {
    const v = verifierLog(`${r.stdout}\n${r.stderr}`);
    throw new SubmissionRejected(
      'load',
      `the kernel refused to load your program${v.reason ? `: ${v.reason.trim()}` : ''}${v.failing ? `\n  at instruction ${v.failing.trim()}` : ''}`,
      v.log,
    );
  }
  const noProg = marker(ms, 'no-program');
  if (noProg) throw new SubmissionRejected('program', `${what}: your object has no such program; it has: ${noProg.lines.join(', ') || 'none'}`);
  for (const name of ['open-failed', 'attach-failed', 'pin-failed', 'run-failed', 'update-failed', 'no-map']) {
    const f = marker(ms, name);
    if (f)
      throw new SubmissionRejected(name === 'attach-failed' ? 'attach' : 'load', `${what}: ${name.replace('-', ' ')} ${f.arg} ${f.lines.join(' ')}`.trim());
  }
  if (r.code !== 0) throw new SubmissionRejected('load', `${what}: labctl exited ${r.code}: ${(r.stdout + r.stderr).trim().slice(-500)}`);
  return ms;
}

/** Run a labctl command that loads the object; a load failure ends the check with the verifier's log. */
export async function loadWith(ctx: GradeContext, argv: string[], what: string): Promise<Marker[]> {
  return judgeLoad(await ctx.server([ctx.paths.labctl, ...argv], { timeoutS: 60, what }), what);
}

/** Read one of the submission's pinned maps; a missing map is the submission's fault, with its name. */
export async function dumpMap(ctx: GradeContext, name: string): Promise<MapDump> {
  const r = await ctx.server([ctx.paths.labctl, 'dump', `${ctx.paths.pin}/${name}`], { timeoutS: 60, what: `reading map ${name}` });
  const d = parseMapDump(r.stdout);
  if (!d) throw new SubmissionRejected('program', `your program has no map named '${name}' (the README says which maps the grader reads)`);
  return d;
}

export const randInt = (rnd: () => number, lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

/** A memcached key of lowercase letters and digits, 3 to 20 characters. */
export function randKey(rnd: () => number, prefix = 'k'): string {
  const n = randInt(rnd, 2, 19);
  let s = prefix;
  for (let i = 0; i < n; i++) s += 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(rnd() * 36)];
  return s;
}

/** A seeded PRNG (mulberry32): tests replay a check's inputs from its seed. */
export const seededRandom = (seed: number): (() => number) => mulberry32(seed);

/** Parse JSON lines, skipping what is not JSON (a tool's own messages). */
export function jsonLines<T>(out: string): T[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as T);
}
