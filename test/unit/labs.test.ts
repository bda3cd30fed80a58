import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { EXERCISES, exerciseDir, LABS_DIR } from '../../labs/index.js';
import { cString, compareCounts, entryTotal, judgeLoad, leUint, parseMapDump, parseMarkers, seededRandom, verifierLog } from '../../labs/grading.js';
import { judgeProtoCount } from '../../labs/1-proto-count/exercise.js';
import { judgeUdpDrop } from '../../labs/2-udp-drop/exercise.js';
import { judgeKeyCount } from '../../labs/3-memcache-keys/exercise.js';
import { cacheEntryHex, judgeCache } from '../../labs/4-memcache-cache/exercise.js';
import { judgeLists, listFile, NIL, planLists } from '../../labs/5-cond-break/exercise.js';
import { judgeHtab, planOps, parseWalk, type HtabWalk } from '../../labs/6-arena-htab/exercise.js';
import { correctAnswers, mcAnswer, parseMcClient, planGets, type McClientRun } from '../../labs/memcache.js';
import {
  classLines,
  kernelVersion,
  parseCompile,
  readSubmission,
  resetExercise,
  startExercise,
  taskText,
  textFilesInput,
  type CheckResult,
} from '../../lab/exercises.js';
import { ROOT } from '../helpers.js';

const SOLUTIONS = process.env.KFLEX_LAB_SOLUTIONS ?? join(ROOT, 'labs-solutions');
const failing = (ts: Array<{ name: string; pass: boolean }>) => ts.filter((t) => !t.pass).map((t) => t.name);

describe('the exercises as data', () => {
  it('six or more, numbered in order, each a folder with a README (task, hints, reading), a starter and a grader', () => {
    expect(EXERCISES.length).toBeGreaterThanOrEqual(6);
    EXERCISES.forEach((e, i) => {
      expect(e.n).toBe(i + 1);
      const readme = readFileSync(join(exerciseDir(e), 'README.md'), 'utf8');
      for (const h of ['## Task', '## What the grader does', '## Hints', '## What to read']) expect(readme, `${e.slug}: ${h}`).toContain(h);
      expect(existsSync(join(exerciseDir(e), 'starter', e.file))).toBe(true);
    });
  });

  it('each has a reference and at least two wrong solutions outside labs/ (what `start` copies), each named in expect.json', () => {
    for (const e of EXERCISES) {
      const dir = join(SOLUTIONS, `${e.n}-${e.slug}`);
      const files = readdirSync(dir).filter((f) => f.endsWith('.bpf.c'));
      expect(files).toContain('reference.bpf.c');
      expect(files.filter((f) => f.startsWith('wrong-')).length).toBeGreaterThanOrEqual(2);
      const expectJson = JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8')) as Record<string, { pass: boolean }>;
      expect(Object.keys(expectJson).sort()).toEqual(files.sort());
      expect(expectJson['reference.bpf.c']!.pass).toBe(true);
      // The starter is not the answer.
      expect(readFileSync(join(exerciseDir(e), 'starter', e.file), 'utf8')).not.toBe(readFileSync(join(dir, 'reference.bpf.c'), 'utf8'));
    }
    expect(
      readdirSync(LABS_DIR, { recursive: true })
        .map(String)
        .filter((f) => /reference|wrong-/.test(f)),
    ).toEqual([]);
  });

  it("the README's task is what `start` prints", () => {
    expect(taskText('# T\n\nintro\n\n## Task\nDo this.\nAnd that.\n\n## Hints\n- x\n')).toBe('Do this.\nAnd that.');
    expect(taskText(readFileSync(join(exerciseDir(EXERCISES[0]!), 'README.md'), 'utf8'))).toMatch(/proto_count/);
  });
});

describe('working folders and submissions', () => {
  it('start copies the starter and the README, never over work; reset keeps the old file as .bak', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'labs-')), 'ex1');
    const s = await startExercise('1', { dir });
    expect(s.created).toBe(true);
    expect(readFileSync(s.file, 'utf8')).toContain('TODO');
    writeFileSync(s.file, 'my work');
    expect((await startExercise('proto-count', { dir })).created).toBe(false);
    expect(readFileSync(s.file, 'utf8')).toBe('my work');
    const r = await resetExercise('1', { dir });
    expect(readFileSync(r.backup!, 'utf8')).toBe('my work');
    expect(readFileSync(r.file, 'utf8')).toContain('TODO');
    await expect(startExercise('99')).rejects.toThrow(/no exercise 99/);
  });

  it("start names the lab's header only to the exercises whose starter includes it (1 and 2 need none)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kflex-labs-'));
    expect((await startExercise('1', { dir: join(dir, '1') })).header).toBeUndefined();
    expect((await startExercise('2', { dir: join(dir, '2') })).header).toBeUndefined();
    for (const n of ['3', '4', '5', '6']) expect((await startExercise(n, { dir: join(dir, n) })).header).toMatch(/labs\/include\/kflex_lab\.h$/);
  });

  it('a submission is plain C files only: a symlink (to a host file, to another student) is refused, not followed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sub-'));
    writeFileSync(join(dir, 'prog.bpf.c'), 'int x;');
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    expect((await readSubmission(dir, EXERCISES[0]!)).map((f) => f.name)).toEqual(['prog.bpf.c']);
    symlinkSync('/etc/passwd', join(dir, 'leak.h'));
    await expect(readSubmission(dir, EXERCISES[0]!)).rejects.toThrow(/leak\.h is not a plain file/);
    await expect(readSubmission(mkdtempSync(join(tmpdir(), 'empty-')), EXERCISES[0]!)).rejects.toThrow(/no prog\.bpf\.c/);
  });

  it('the kernel release decides which exercises run; the instructor sees one line per test, or why it stopped', () => {
    expect(kernelVersion('7.3.4-kflex')).toEqual([7, 3]);
    expect(kernelVersion('6.1.158')).toEqual([6, 1]);
    const base: CheckResult = {
      exercise: 2,
      slug: 'udp-drop',
      pass: false,
      stage: 'compile',
      tests: [],
      message: 'clang-19 could not build',
      seed: 1,
      seconds: 1,
    };
    expect(classLines('ann', base)).toEqual([{ student: 'ann', exercise: 2, test: 'compiles', pass: false, message: 'clang-19 could not build' }]);
    const graded = { ...base, stage: 'graded' as const, tests: [{ name: 'a', pass: true, expected: '1', seen: '1' }] };
    expect(classLines('bob', graded)).toEqual([{ student: 'bob', exercise: 2, test: 'a', pass: true, expected: '1', seen: '1' }]);
  });
});

describe('the compile round trip', () => {
  it('a submission travels as text lines (shell builtins write it in the guest); a NUL byte is refused', () => {
    const files = [
      { name: 'prog.bpf.c', data: Buffer.from('int a;\nint b;') },
      { name: 'x.h', data: Buffer.from('#define X 1\n') },
    ];
    expect(textFilesInput(files)).toBe('prog.bpf.c\n2\nint a;\nint b;\nx.h\n1\n#define X 1\n');
    expect(() => textFilesInput([{ name: 'a.c', data: Buffer.from([0x61, 0, 0x62]) }])).toThrow(/not a text file/);
  });

  it("the script's answer: kernel, clang's messages and verdict, labctl's load, the steps' times", () => {
    const out = [
      '@@kernel 7.3.4',
      '@@t start 100.00',
      '@@t reset 100.10',
      '@@t write 100.20',
      "prog.bpf.c:3:1: warning: unused variable 'x'",
      '@@t clang 104.70',
      '@@clang 0',
      '@@scan {"program":"count_protocols","insns":30,"may_goto":0,"bpf_loop":0,"kfunc_calls":0}',
      '@@attached count_protocols',
      '@@t load 105.20',
      '@@loaded 0',
    ].join('\n');
    const c = parseCompile(out);
    expect(c).toMatchObject({ kernel: '7.3.4', needTools: false, clang: 0, log: "prog.bpf.c:3:1: warning: unused variable 'x'" });
    expect(c.steps).toEqual({ reset: 0.1, write: 0.1, clang: 4.5, load: 0.5 });
    expect(c.load?.code).toBe(0);
    expect(c.load?.stdout).toMatch(/^@@scan .*\n@@attached count_protocols\n$/);
    expect(parseCompile('@@kernel 6.1.0\n@@need-tools\n').needTools).toBe(true);
    const refused = parseCompile(
      '@@clang 0\n@@load-failed\nlibbpf: -- BEGIN PROG LOAD LOG --\n0: (b7) r0 = 0\nR1 invalid mem access\n-- END PROG LOAD LOG --\n@@loaded 2\n',
    );
    expect(() => judgeLoad({ ...refused.load!, stderr: '' }, 'load')).toThrow(
      /refused to load your program: R1 invalid mem access\n {2}at instruction 0: \(b7\) r0 = 0/,
    );
  });
});

describe("reading labctl's output", () => {
  it('markers, map dumps (little endian, per-CPU slots summed), C-string keys', () => {
    const out = [
      '@@scan {"program":"x","insns":9}',
      '@@map {"type":6,"key_size":4,"value_size":8,"max_entries":256,"cpus":2}',
      '{"key":"11000000","values":["0500000000000000","0200000000000000"]}',
      '{"key":"01000000","values":["0100000000000000","0000000000000000"]}',
    ].join('\n');
    expect(parseMarkers(out).map((m) => m.name)).toEqual(['scan', 'map']);
    const d = parseMapDump(out)!;
    expect(d.info.cpus).toBe(2);
    expect(d.entries.map((e) => [Number(leUint(e.key)), Number(entryTotal(e))])).toEqual([
      [17, 7],
      [1, 1],
    ]);
    expect(cString(Buffer.from('6b65790000', 'hex'))).toBe('key');
    expect(parseMapDump('@@no-map /sys/fs/bpf/x')).toBeUndefined();
  });

  it("the verifier's log: the whole log, the instruction it stopped at, and its reason", () => {
    const stderr = [
      "libbpf: prog 'sum_list': BPF program load failed: Invalid argument",
      "libbpf: prog 'sum_list': -- BEGIN PROG LOAD LOG --",
      '0: R1=ctx() R10=fp0',
      '0: (bf) r6 = r1                       ; R1=ctx() R6_w=ctx()',
      '12: (85) call bpf_map_lookup_elem#1   ; R0_w=map_value_or_null(id=1,map=nodes,ks=4,vs=16)',
      '14: (1d) if r3 == r8 goto pc+13',
      'infinite loop detected at insn 14',
      'processed 95 insns (limit 1000000) max_states_per_insn 0 total_states 7 peak_states 7 mark_read 3',
      '-- END PROG LOAD LOG --',
      "libbpf: prog 'sum_list': failed to load: -22",
    ].join('\n');
    const v = verifierLog(stderr);
    expect(v.log.split('\n')[0]).toBe('0: R1=ctx() R10=fp0');
    expect(v.log).not.toMatch(/libbpf:/);
    expect(v.failing).toBe('14: (1d) if r3 == r8 goto pc+13');
    expect(v.reason).toBe('infinite loop detected at insn 14');
  });
});

describe("graders judge outcomes, not the program's word", () => {
  it('exercise 1: right counters but no replies fails; the counters must match what was sent', () => {
    const sent = { icmp: 5, tcp: 3, udp: 7 };
    const counted = new Map([
      ['1', 5],
      ['6', 3],
      ['17', 7],
    ]);
    expect(failing(judgeProtoCount(sent, { echoReplies: 5, tcpRefused: 3 }, counted))).toEqual([]);
    expect(failing(judgeProtoCount(sent, { echoReplies: 0, tcpRefused: 0 }, counted))).toEqual([
      'echo replies the client received (the program passes ICMP)',
      'TCP attempts the server answered (the program passes TCP)',
    ]);
    expect(failing(judgeProtoCount(sent, { echoReplies: 5, tcpRefused: 3 }, new Map([...counted, ['2', 1]])))).toEqual([
      'packets counted for: nothing else counted',
    ]);
    expect(failing(judgeProtoCount(sent, { echoReplies: 5, tcpRefused: 3 }, new Map()))).toHaveLength(3);
  });

  it('compareCounts: one test per expected key and one for the rest', () => {
    const t = compareCounts('n', new Map([['a', 1]]), new Map([['b', 2]]));
    expect(t.map((x) => [x.name, x.pass, x.seen])).toEqual([
      ['n a', false, '0'],
      ['n: nothing else counted', false, 'b=2'],
    ]);
  });

  it("exercise 2: what the server's sockets received", () => {
    const sent = { drop: 6, keep: 4, pings: 3 };
    expect(failing(judgeUdpDrop(sent, { 7777: 0, 7778: 4 }, 3))).toEqual([]);
    expect(failing(judgeUdpDrop(sent, { 7777: 6, 7778: 4 }, 3))).toEqual(["datagrams to port 7777 the server's socket received (dropped by XDP)"]);
    expect(failing(judgeUdpDrop(sent, { 7777: 0, 7778: 0 }, 3))).toEqual(["datagrams to port 7778 the server's socket received (passed)"]);
  });

  const plan = planGets(seededRandom(7));
  const answers = (pred: (k: string) => boolean = () => true) =>
    plan.gets.flatMap((k, i) => (pred(k) ? [{ id: i + 1, key: k, answer: `${mcAnswer(k, plan.stored.get(k))}` }] : []));
  const stats = (before: number, after: number, hits = [0, 0]): Record<string, string>[] => [
    { cmd_get: String(before), get_hits: String(hits[0]) },
    { cmd_get: String(after), get_hits: String(hits[1]) },
  ];

  it('memcache plans replay from a seed; answers are judged byte for byte', () => {
    expect(planGets(seededRandom(7))).toEqual(plan);
    expect(plan.missing.every((k) => !plan.stored.has(k))).toBe(true);
    expect(mcAnswer('k1', 'abc')).toBe('VALUE k1 0 3\r\nabc\r\nEND\r\n');
    const a = answers();
    expect(correctAnswers(plan, a)).toEqual({ ok: plan.gets.length, total: plan.gets.length });
    a[0]!.answer = 'END\r\n';
    expect(correctAnswers(plan, a).firstWrong).toMatch(/^get /);
    const out = [
      '{"stored":3}',
      '{"cmd_get":"0","get_hits":"0"}',
      '{"id":1,"key":"k","answer":"END\\r\\n"}',
      '{"answered":1,"unmatched":0}',
      '{"cmd_get":"1"}',
    ].join('\n');
    const run = parseMcClient(out);
    expect([run.stored, run.answers.length, run.stats.length]).toEqual([3, 1, 2]);
  });

  it('exercise 3: the key counts must be the GETs sent, and memcached must have seen them all', () => {
    const counts = new Map<string, number>();
    for (const k of plan.gets) counts.set(k, (counts.get(k) ?? 0) + 1);
    const run: McClientRun = { answers: answers(), stats: stats(10, 10 + plan.gets.length) };
    expect(failing(judgeKeyCount(plan, run, counts))).toEqual([]);
    const withCr = new Map([...counts].map(([k, n]) => [`${k}\r`, n]));
    expect(failing(judgeKeyCount(plan, run, withCr))).toContain('GETs counted for key: nothing else counted');
    expect(failing(judgeKeyCount(plan, { ...run, stats: stats(10, 10) }, counts))).toEqual(["memcached's own cmd_get grew by every GET"]);
  });

  it('exercise 4: hits must be answered AND bypass memcached (its own stats), misses must reach it', () => {
    const cached = new Set([...plan.stored.keys()].slice(0, 2));
    const toMc = plan.gets.filter((k) => !cached.has(k)).length;
    const mcHits = plan.gets.filter((k) => plan.stored.has(k) && !cached.has(k)).length;
    const ok: McClientRun = { answers: answers(), stats: stats(0, toMc, [0, mcHits]) };
    expect(failing(judgeCache(plan, cached, ok))).toEqual([]);
    // Every GET answered right, but by memcached: the hits did not bypass it.
    const passedOn: McClientRun = { answers: answers(), stats: stats(0, plan.gets.length, [0, plan.gets.filter((k) => plan.stored.has(k)).length]) };
    expect(failing(judgeCache(plan, cached, passedOn))).toEqual([
      "memcached's cmd_get grew only by the GETs the cache does not hold (hits bypassed it)",
      "memcached's get_hits grew by the GETs of keys only memcached holds",
    ]);
    // Answers from the cache lost on the way (a bad checksum): the client never saw them.
    const lost: McClientRun = { answers: answers((k) => !cached.has(k)), stats: stats(0, toMc, [0, mcHits]) };
    expect(failing(judgeCache(plan, cached, lost))).toEqual(['GETs of cached keys answered correctly (by XDP_TX)']);
    const [k, v] = cacheEntryHex('ab', 'xyz');
    expect(k).toBe(`6162${'00'.repeat(30)}`);
    expect(v.slice(0, 14)).toBe('0300000078797a');
    expect(v.length).toBe(2 * 68);
  });

  it('exercise 5: a long list, the empty list, may_goto in the code', () => {
    const p = planLists(seededRandom(3));
    expect(p.lists.map((l) => l.length)[0]).toBe(0);
    expect(p.lists[0]!.head).toBe(NIL);
    expect(p.lists.at(-1)!.length).toBeGreaterThanOrEqual(3000);
    expect(new Set(p.nodes.map((n) => n[0])).size).toBe(p.nodes.length);
    expect(
      listFile(p)
        .split('\n')
        .filter((l) => l.startsWith('head')),
    ).toHaveLength(4);
    const right = { scan: { may_goto: 1, bpf_loop: 0, kfunc_calls: 0 }, results: p.lists.map((l) => ({ head: l.head, sum: l.sum, count: l.length })) };
    expect(failing(judgeLists(p, right))).toEqual([]);
    const bounded = {
      scan: { may_goto: 0, bpf_loop: 0, kfunc_calls: 0 },
      results: right.results.map((r) => (r.count > 1024 ? { ...r, count: 1024, sum: 1 } : r)),
    };
    expect(failing(judgeLists(p, bounded))).toEqual([
      'loops with may_goto (cond_break), not bpf_loop',
      `sum of the list of ${p.lists[3]!.length} nodes from ${p.lists[3]!.head}`,
      `nodes counted in the list of ${p.lists[3]!.length} nodes from ${p.lists[3]!.head}`,
    ]);
  });

  it('exercise 6: the structure read back from the arena must be the model, with no leaked node', () => {
    const plan6 = planOps(seededRandom(11));
    expect(plan6.ops.length).toBeGreaterThanOrEqual(60);
    const entries = [...plan6.final].map(([key, value]) => ({ bucket: key % 64, key, value }));
    const results = plan6.ops.map((o, i) => ({ op: o.op, key: o.key, ret: plan6.expected[i]!.ret, value: plan6.expected[i]!.value ?? 0 }));
    const pool = 170;
    const good: HtabWalk = { results, table: { nbuckets: 64, count: entries.length, pool }, entries, free: pool - entries.length, problems: [] };
    expect(failing(judgeHtab(plan6, good))).toEqual([]);
    expect(failing(judgeHtab(plan6, { ...good, free: good.free! - 2 }))).toEqual(['no leaked node: pool = nodes in the buckets + nodes on the free list']);
    const dup = { ...good, entries: [...entries, { ...entries[0]!, value: 1 }], free: good.free! - 1 };
    expect(failing(judgeHtab(plan6, dup))).toContain('no key twice');
    const moved = { ...good, entries: entries.map((e, i) => (i === 0 ? { ...e, bucket: (e.bucket + 1) % 64 } : e)) };
    expect(failing(judgeHtab(plan6, moved))).toEqual(['every node in bucket key % 64']);
    const ms = parseMarkers(
      ['@@op {"op":1,"key":5,"ret":0,"value":9}', '@@table {"nbuckets":64,"count":1,"pool":170}', '{"bucket":5,"key":5,"value":9}', '@@free 169'].join('\n'),
    );
    expect(parseWalk(ms)).toEqual({
      results: [{ op: 1, key: 5, ret: 0, value: 9 }],
      table: { nbuckets: 64, count: 1, pool: 170 },
      entries: [{ bucket: 5, key: 5, value: 9 }],
      free: 169,
      problems: [],
    });
  });
});
