import { golden } from './support/golden.js';
import { experimentViews } from '../../experiments/index.js';
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeReport, deviations } from '../../report/report.js';
import { pinning, affectsExperiment, affectsVariants, claimFlags, pointLabels, timeline, type TimedEvent } from '../../report/model.js';
import { summarize } from '../../experiments/summary.js';
import { paramsSlug, type CellRecord } from '../../experiments/cells.js';
import type { Manifest, Deviation } from '../../core/rundir.js';
import type { LabEvent } from '../../core/events.js';
import { tempDir } from '../helpers.js';

/*
 * The run directory these tests report on is ASSEMBLED here, not captured: a paper-profile run under TCG with
 * KFlex and baseline cells. Its shapes follow what lab/run.ts writes (manifest.json with structured
 * deviations, cells.json, summary.json from the runner's own summarize(), events.jsonl lines of LabEvents
 * with `t`); its names follow the real ones (ffkx-bench's `Zipfian/ffkx_rbtree_update`, the guard metrics);
 * every number is invented. The mirror is a placeholder host.
 */

const T0 = Date.parse('2026-11-27T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const COMMIT = '567387bc78715fed2f7f8fe314710c817335295e';

function records(): CellRecord[] {
  const out: CellRecord[] = [];
  let clock = 400;
  const push = (r: Omit<CellRecord, 'started'>) => {
    out.push({ ...r, started: at(clock) });
    clock += r.seconds + 1;
  };
  // memcache: two parameter points that differ only in concurrency, 3 repetitions each, KFlex and baseline.
  for (const concurrency of [8, 64])
    for (const variant of ['kflex', 'userspace'])
      for (const rep of [1, 2, 3]) {
        const params = { set_get: '10:90', threads: 1, concurrency, value_size: 32 };
        if (variant === 'userspace' && concurrency === 64 && rep === 3)
          push({ experiment: 'memcache', variant, params, rep, status: 'failed', reason: 'memcaslap: connect: Connection refused\nstack', seconds: 3 });
        else
          push({
            experiment: 'memcache',
            variant,
            params,
            rep,
            status: 'ok',
            metrics: { tps: (variant === 'kflex' ? 5000 : 4000) + concurrency * 10 + rep * 7, lat_avg_us: 900 },
            seconds: 20,
          });
      }
  push({
    experiment: 'redis-zadd',
    variant: 'kflex',
    params: { requests: 5000 },
    rep: 1,
    status: 'skipped',
    reason: 'kflex.heap_gib.kredis 256 GiB needs a 262 GiB server VM; it has 16 GiB',
    seconds: 0,
  });
  push({ experiment: 'redis-zadd', variant: 'userspace', params: { requests: 5000 }, rep: 1, status: 'ok', metrics: { rps: 1256 }, seconds: 25 });
  for (const rep of [1, 2])
    push({
      experiment: 'datastructures',
      variant: 'kflex',
      params: { filter: 'Zipfian' },
      rep,
      status: 'ok',
      seconds: 600,
      metrics: {
        'Zipfian/ffkx_rbtree_update.ns_per_op': 320 + rep,
        'Zipfian/bpf_rbtree_update.ns_per_op': 400 + rep,
        'Zipfian/ffkx_hashmap_lookup.ns_per_op': 45 + rep,
        'Zipfian/bpf_hashmap_lookup.ns_per_op': 50 + rep,
        'Zipfian/bpf_graph_linked_list_update.ns_per_op': 90000 + rep,
        'Zipfian/ffkx_rbtree_update.items_per_second': 3e6,
      },
    });
  push({
    experiment: 'guards',
    variant: 'kflex',
    params: {},
    rep: 1,
    status: 'ok',
    seconds: 1,
    metrics: {
      exact: 0,
      blocks: 2,
      blocks_agreeing: 1,
      measured_total: 99,
      measured_elided: 75,
      expected_total: 99,
      expected_elided: 78,
      'differs.skiplist_lookup (bench_ffkx_skiplist_lookup)': 1,
    },
  });
  return out;
}

const DEVIATIONS: Deviation[] = [
  {
    topic: 'accelerator',
    artifact: 'bare metal (two servers, 10G NIC)',
    lab: 'VMs under TCG (software emulation, no usable KVM)',
    why: 'this host has no usable KVM: every number is functional only, not performance-comparable with the paper',
    affects: 'all',
  },
  {
    topic: 'toolchain',
    artifact: 'its own LLVM',
    lab: 'clang >= 19 (policy auto, package clang-19)',
    why: 'a packaged clang-19 takes a minute',
    affects: 'all KFlex cells',
  },
  {
    topic: 'scaled heap',
    artifact: 'ffkx_heap(64): a 64 GiB heap for bench',
    lab: 'ffkx_heap(8) rewritten into the bench program at build time (8 GiB)',
    why: 'the host cannot hold 64 GiB',
    affects: 'datastructures, guards',
  },
  {
    topic: 'scaled heap',
    artifact: 'ffkx_heap(128): a 128 GiB heap for kmemcache',
    lab: 'ffkx_heap(16) rewritten into the kmemcache program at build time (16 GiB)',
    why: 'the host cannot hold 128 GiB',
    affects: 'memcache',
  },
  {
    topic: 'client load',
    artifact: 'memcaslap -s SERVER:6969 -t 30s -T 128 -c 128',
    lab: 'threads 1 (artifact 128); measurement 5 s (artifact 30 s)',
    why: 'the profile scales the load',
    affects: 'memcache set_get=10-90,threads=1,concurrency=8,value_size=32',
  },
  {
    topic: 'substitution',
    artifact: 'the client the artifact names',
    lab: 'memtier_benchmark is not in the image: substituted redis-benchmark',
    why: 'the named client is not available in this image',
    affects: 'redis-zadd/userspace',
  },
];

function manifest(): Manifest {
  return {
    lab: 'kflex-lab',
    created: at(0),
    profile: 'paper',
    config_file: '/lab/lab.yaml',
    overrides: { 'kflex.heap_gib.bench': '--set kflex.heap_gib.bench=8' },
    host: {
      cpu_model: 'Test CPU',
      cores: 2,
      ram_gb: 24,
      kernel: '6.1.0',
      accel: 'tcg',
      qemu: '7.2.22',
      node: 'v20.0.0',
      lab_commit: `${'a'.repeat(40)}+dirty`,
    },
    // Only what the report reads of the resolved profile.
    config: {
      sources: {
        kflex: { kind: 'git', url: 'https://github.com/rs3lab/KFlex', commit: COMMIT },
        kernel: { kind: 'debian-package', package: 'linux-source-6.1' },
        memtier: { kind: 'git', url: 'https://github.com/RedisLabs/memtier_benchmark', ref: '2.1.1' },
        llvm: { kind: 'path', path: '/src/llvm-project' },
      },
      kernel: { source: 'kernel' },
      image: { memtier: 'memtier', kflex: true },
      toolchain: { source: 'llvm' },
    } as unknown as Manifest['config'],
    stages: {
      llvm: {
        fingerprint: '1111111111111111',
        dir: '/c/llvm',
        manifest: { built_at: at(-3600), build_seconds: 0.2, how: 'system', clang: '/usr/bin/clang-19', clang_version: 19 },
      },
      kernel: {
        fingerprint: '2222222222222222',
        dir: '/c/kernel',
        manifest: {
          built_at: at(305),
          build_seconds: 300,
          release: '6.1.192',
          source: { kind: 'debian-package', origin: 'linux-source-6.1 6.1.192-2 (host suites)', sha256: 'ae'.repeat(32), version: '6.1.192-2' },
          base: 'tinyconfig',
          fragments: ['vm-guest'],
          config_sha256: 'f0'.repeat(32),
        },
      },
      image: {
        fingerprint: '3333333333333333',
        dir: '/c/image',
        manifest: {
          built_at: at(40),
          build_seconds: 30,
          suite: 'trixie',
          mirror: 'http://mirror.invalid/debian',
          image_sha256: '59'.repeat(32),
          memtier: { available: false, reason: 'source memtier unreachable: git failed (exit 128)' },
        },
      },
      kflex: {
        fingerprint: '4444444444444444',
        dir: '/c/kflex',
        manifest: {
          built_at: at(340),
          build_seconds: 290,
          source: { kind: 'git', origin: 'https://github.com/rs3lab/KFlex', commit: COMMIT },
          heaps: { bench: 8 },
        },
      },
    },
    testbed: { testbed: 'vm', accel: 'tcg', link: 'tap (1 queue)' },
    link: 'tap (1 queue)',
    xdp_check: { mode: 'driver', port: 7777, sent: 100, counted: 100, warnings: [] },
    capabilities: {
      kernelRelease: '6.9.0-kflex',
      kflexKernel: true,
      kflexKernelWhy: '',
      ffkx: true,
      ffkxWhy: '',
      la57: true,
      memtier: false,
      serverMemoryMb: 16384,
    },
    server_memory: { memoryMb: 16384, why: 'auto' },
    deviations: DEVIATIONS,
  };
}

function events(recs: CellRecord[]): TimedEvent[] {
  const e = (s: number, ev: LabEvent): TimedEvent => ({ t: at(s), ...ev }) as TimedEvent;
  return [
    e(1, { type: 'stage-start', stage: 'kernel', fingerprint: '2222222222222222', logPath: '/c/kernel.log' }),
    e(1, { type: 'stage-cached', stage: 'llvm', fingerprint: '1111111111111111', dir: '/c/llvm' }),
    e(40, { type: 'stage-done', stage: 'image', seconds: 30, dir: '/c/image' }),
    e(305, { type: 'stage-done', stage: 'kernel', seconds: 300, dir: '/c/kernel' }),
    e(340, { type: 'stage-done', stage: 'kflex', seconds: 290, dir: '/c/kflex' }),
    e(341, { type: 'accel', accel: 'tcg', why: 'no /dev/kvm' }),
    e(399, { type: 'testbed-up', kind: 'vm', accel: 'tcg', link: 'tap (1 queue)', nativeXdp: true, seconds: 58 }),
    ...recs.map((r, i) =>
      e((Date.parse(r.started) - T0) / 1000 + r.seconds, {
        type: 'cell',
        index: i + 1,
        total: recs.length,
        experiment: r.experiment,
        variant: r.variant,
        params: paramsSlug(r.params),
        rep: r.rep,
        status: r.status,
        seconds: r.seconds,
      }),
    ),
    e(9000, { type: 'testbed-down', kind: 'vm' }),
  ];
}

// ------------------------------------------------------------ a small HTML/SVG parser (no browser needed)

interface Node {
  tag: string;
  attrs: Record<string, string>;
  children: Node[];
  text?: string;
}
const VOID = new Set(['meta', 'br', 'link', 'img', 'input', 'hr']);
const decode = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#xA;/g, '\n')
    .replace(/&amp;/g, '&');

function parse(html: string): Node {
  const root: Node = { tag: '#root', attrs: {}, children: [] };
  const stack = [root];
  const re = /<!--[\s\S]*?-->|<!doctype[^>]*>|<(\/?)([a-zA-Z][\w:-]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*(\/?)>|([^<]+)/gi;
  for (const m of html.matchAll(re)) {
    const top = stack.at(-1)!;
    if (m[5] !== undefined) top.children.push({ tag: '#text', attrs: {}, children: [], text: decode(m[5]) });
    else if (!m[2]) continue;
    else if (m[1]) {
      const i = stack.map((n) => n.tag).lastIndexOf(m[2].toLowerCase());
      if (i <= 0) throw new Error(`stray </${m[2]}>`);
      stack.length = i;
    } else {
      const attrs = Object.fromEntries([...(m[3] ?? '').matchAll(/([^\s=]+)(?:="([^"]*)")?/g)].map((a) => [a[1]!, decode(a[2] ?? '')]));
      const el: Node = { tag: m[2].toLowerCase(), attrs, children: [] };
      top.children.push(el);
      if (!m[4] && !VOID.has(el.tag)) stack.push(el);
    }
  }
  expect(
    stack.map((n) => n.tag),
    'every element closed',
  ).toEqual(['#root']);
  return root;
}
const all = (n: Node, pred: (x: Node) => boolean = () => true): Node[] => [...(pred(n) ? [n] : []), ...n.children.flatMap((c) => all(c, pred))];
const text = (n: Node): string => (n.tag === '#text' ? n.text! : n.children.map(text).join(''));
const cls = (n: Node, c: string) => (n.attrs.class ?? '').split(/\s+/).includes(c);
const byId = (root: Node, id: string) => {
  const found = all(root, (n) => n.attrs.id === id);
  expect(found, `#${id}`).toHaveLength(1);
  return found[0]!;
};
/** The `<path>` marks of a named Vega-Lite layer (vega's SVG renderer: `g.<name>_marks > path`). */
const marks = (n: Node, name: string) => all(n, (x) => x.tag === 'g' && cls(x, `${name}_marks`)).flatMap((g) => g.children.filter((c) => c.tag === 'path'));

// ------------------------------------------------------------ the tests

const HEADLINES = experimentViews();

async function assemble(opts: { withEvents: boolean }): Promise<{ dir: string; recs: CellRecord[]; html: string; md: string; doc: Node }> {
  const dir = tempDir('kflex-report-');
  const recs = records();
  const rows = summarize(recs);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest(), null, 2));
  writeFileSync(join(dir, 'cells.json'), JSON.stringify(recs, null, 2));
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ cells: recs.length, rows }, null, 2));
  if (opts.withEvents)
    writeFileSync(
      join(dir, 'events.jsonl'),
      `${events(recs)
        .map((e) => JSON.stringify(e))
        .join('\n')}\n`,
    );
  for (const r of recs) {
    const cell = join(dir, 'runs', r.experiment, r.variant, paramsSlug(r.params), `rep-${r.rep}`);
    mkdirSync(cell, { recursive: true });
    writeFileSync(join(cell, 'status.json'), JSON.stringify(r));
  }
  const { html, md } = await writeReport({ runDir: dir, manifest: manifest(), rows, records: recs }, HEADLINES);
  expect(readFileSync(join(dir, 'report.html'), 'utf8')).toBe(html);
  return { dir, recs, html, md, doc: parse(html) };
}

describe('report: one screen an evaluator can act on', () => {
  let r: Awaited<ReturnType<typeof assemble>>;
  beforeAll(async () => {
    r = await assemble({ withEvents: true });
  });

  it('report.md of the fixture run is a golden file (its temporary run directory masked)', () => {
    golden('report.fixture.md', r.md.split(r.dir).join('<run>').split(basename(r.dir)).join('<run>'));
  });

  it('puts the summary and the badge evidence before the claims table, then charts, deviations, provenance', () => {
    const order = ['summary', 'badges', 'claims', 'charts', 'deviations', 'provenance'].map((id) => all(r.doc).indexOf(byId(r.doc, id)));
    expect(order.every((x) => x >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('the summary: verdict counts, the TCG banner, and only the scale-downs and substitutions in force', () => {
    const counts = text(byId(r.doc, 'verdict-counts'));
    // memcache and datastructures reproduce, guards deviate (1 of 2 blocks); redis-getset, redis-zadd and the two BMC claims did not run.
    expect(counts).toMatch(/2\s*reproduced/);
    expect(counts).toMatch(/1\s*deviate/);
    expect(counts).toMatch(/0\s*inconclusive/);
    expect(counts).toMatch(/5\s*not run/);
    expect(text(byId(r.doc, 'accel-banner'))).toMatch(/TCG.*functional only: not performance-comparable/);
    const topics = all(byId(r.doc, 'in-force'), (n) => n.tag === 'li').map((n) => n.attrs['data-topic']);
    expect(topics).toEqual(['scaled heap', 'scaled heap', 'client load', 'substitution']);
  });

  it('states evidence per badge without awarding one: what is not pinned, what ran, what reproduced', () => {
    const badge = (b: string) => {
      const card = all(byId(r.doc, 'badges'), (n) => n.attrs['data-badge'] === b)[0]!;
      return all(card, (n) => n.tag === 'li').map((li) => ({ cls: li.attrs.class, text: text(li) }));
    };
    const avail = badge('Available');
    expect(avail.find((i) => i.text.startsWith('kflex:'))).toMatchObject({
      cls: 'met',
      text: expect.stringMatching(/pinned by git commit 567387bc7871; fetched: .*commit 567387bc7871/),
    });
    expect(avail.find((i) => i.text.startsWith('kernel:'))).toMatchObject({
      cls: 'unmet',
      text: expect.stringMatching(
        /not pinned: Debian package linux-source-6.1 .*fetched: linux-source-6.1 6.1.192-2 \(host suites\) 6.1.192-2, sha256 aeaeaeaeaeae/,
      ),
    });
    expect(avail.find((i) => i.text.startsWith('memtier:'))).toMatchObject({
      cls: 'unmet',
      text: expect.stringMatching(/git ref 2.1.1 .*not fetched: source memtier unreachable/),
    });
    expect(avail.find((i) => i.text.startsWith('llvm:'))).toMatchObject({
      cls: 'unmet',
      text: expect.stringMatching(/local path \/src\/llvm-project .*not used: clang from the system/),
    });
    expect(avail.find((i) => i.text.startsWith('the lab itself'))).toMatchObject({ cls: 'unmet', text: expect.stringMatching(/\+dirty/) });

    const func = badge('Functional');
    expect(func.find((i) => i.text.startsWith('stages built'))).toMatchObject({
      cls: 'met',
      text: expect.stringMatching(/llvm 1111111111111111.*kernel 2222222222222222 \(300 s\).*image.*kflex/),
    });
    expect(func.find((i) => i.text.startsWith('server and client VMs up'))).toMatchObject({ cls: 'met', text: expect.stringMatching(/tcg.*in 58 s/) });
    expect(func.find((i) => i.text.startsWith('native XDP'))).toMatchObject({
      cls: 'met',
      text: expect.stringMatching(/driver mode, 100 of 100 datagrams counted/),
    });
    expect(func.find((i) => i.text.startsWith('cells:'))).toMatchObject({ cls: 'unmet', text: expect.stringMatching(/15 ok, 1 failed, 1 skipped/) });
    expect(func.find((i) => i.text.startsWith('skipped'))).toMatchObject({
      cls: 'met',
      text: 'skipped (redis-zadd/kflex): kflex.heap_gib.kredis 256 GiB needs a 262 GiB server VM; it has 16 GiB',
    });
    expect(func.find((i) => i.text.startsWith('failed'))).toMatchObject({
      cls: 'unmet',
      text: 'failed (memcache/userspace rep 3): memcaslap: connect: Connection refused',
    });

    const repro = badge('Reproduced');
    expect(repro[0]).toMatchObject({ cls: 'unmet', text: expect.stringMatching(/TCG/) });
    expect(repro.find((i) => i.text.startsWith('memcache-throughput'))).toMatchObject({
      cls: 'met',
      text: expect.stringMatching(/reproduced .*on a scaled heap \(ffkx_heap\(16\)/),
    });
    expect(repro.find((i) => i.text.startsWith('guard-elision'))).toMatchObject({
      cls: 'unmet',
      text: expect.stringMatching(/deviates .*1 of 2 skeleton loads/),
    });
    expect(repro.filter((i) => i.text.startsWith('not run')).map((i) => i.text)).toEqual([
      'not run (bmc-memcache-throughput, kflex-vs-bmc-throughput): bmc: not in this run',
      'not run (redis-getset-throughput): kflex: not in this run; userspace: not in this run',
      'not run (redis-zadd-throughput): kflex: kflex.heap_gib.kredis 256 GiB needs a 262 GiB server VM; it has 16 GiB',
      'not run (arena-datastructures-ops): arena: not in this run',
    ]);
    expect(r.html).not.toMatch(/\bawarded\b|badge (is )?earned/i);
  });

  it('a claims row: values, ratio with its interval, verdict; links to its chart and its raw cell logs; scaled heaps marked', () => {
    const rows = all(byId(r.doc, 'claims'), (n) => n.tag === 'tr' && !!n.attrs['data-claim']);
    expect(rows.map((n) => n.attrs['data-claim'])).toEqual([
      'memcache-throughput',
      'bmc-memcache-throughput',
      'kflex-vs-bmc-throughput',
      'redis-getset-throughput',
      'redis-zadd-throughput',
      'datastructures-ops',
      'arena-datastructures-ops',
      'guard-elision',
    ]);
    const mem = rows[0]!;
    const cells = mem.children.filter((c) => c.tag === 'td').map(text);
    expect(cells[1]).toBe('not recorded');
    // Two parameter points: each point's sides and ratio (min/max spread) on a line of its own, judged at each.
    const lines = (td: Node) => td.children.filter((c) => c.tag === '#text').map((c) => c.text);
    const tds = mem.children.filter((c) => c.tag === 'td');
    expect(lines(tds[2]!)).toEqual([
      'concurrency=8: kflex: 5,094 (min 5,087, max 5,101, CV 0.1%, n=3)',
      'concurrency=64: kflex: 5,654 (min 5,647, max 5,661, CV 0.1%, n=3)',
    ]);
    expect(lines(tds[3]!)).toEqual([
      'concurrency=8: userspace: 4,094 (min 4,087, max 4,101, CV 0.2%, n=3)',
      'concurrency=64: userspace: 4,651 (min 4,647, max 4,654, CV 0.1%, n=2)',
    ]);
    // Each point's ratio with its 95% bootstrap interval over the repetitions and its verdict; the worst point named.
    expect(lines(tds[4]!)).toEqual(['concurrency=8: 1.24 [1.24–1.25] reproduced', 'concurrency=64: 1.22 [1.21–1.22] reproduced', 'worst: concurrency=64']);
    expect(cells[5]).toBe('reproduced');
    expect(mem.attrs['data-scaled-heap']).toBe('true');
    // BMC against memcached has no heap; KFlex against BMC runs KFlex on its scaled heap.
    expect(rows.filter((n) => n.attrs['data-scaled-heap']).map((n) => n.attrs['data-claim'])).toEqual([
      'memcache-throughput',
      'kflex-vs-bmc-throughput',
      'datastructures-ops',
      'guard-elision',
    ]);
    const links = all(mem, (n) => n.tag === 'a').map((a) => a.attrs.href!);
    expect(links[0]).toBe('#chart-memcache');
    expect(links.slice(1)).toHaveLength(12);
    expect(links).toContain('runs/memcache/userspace/set_get=10-90,threads=1,concurrency=64,value_size=32/rep-3/');
    for (const href of links.slice(1)) expect(existsSync(join(r.dir, href, 'status.json')), href).toBe(true);
    for (const row of rows) expect(all(row, (n) => n.tag === 'a')[0]!.attrs.href).toMatch(/^#chart-/);
    for (const row of rows) byId(r.doc, all(row, (n) => n.tag === 'a')[0]!.attrs.href!.slice(1));
    // The family claim lists every pair with its interval (two repetitions), the worst pair first; the geometric mean is not judged.
    const ds = rows.find((n) => n.attrs['data-claim'] === 'datastructures-ops')!.children.filter((c) => c.tag === 'td');
    expect(lines(ds[4]!)).toEqual([
      expect.stringMatching(/^worst: Zipfian\/hashmap_lookup 0\.9\d* \[0\.88\d*–0\.92\d*\]$/),
      // 321.5 / 401.5 ns; the interval's ends are 321 / 402 and 322 / 401.
      'Zipfian/rbtree_update: 0.801 [0.799–0.803] reproduced',
      expect.stringMatching(/^Zipfian\/hashmap_lookup: 0\.9\d* \[0\.88\d*–0\.92\d*\] reproduced$/),
      'geo. mean of 2 pairs 0.85 (not judged)',
    ]);
  });

  it('one dot per repetition in every chart, KFlex beside its baseline, readable parameter labels', () => {
    const recs = r.recs.filter((x) => x.status === 'ok');
    const expected: Record<string, number> = {
      memcache: recs.filter((x) => x.experiment === 'memcache' && typeof x.metrics?.tps === 'number').length,
      'redis-zadd': recs.filter((x) => x.experiment === 'redis-zadd').length,
      datastructures: recs
        .filter((x) => x.experiment === 'datastructures')
        .reduce((a, x) => a + Object.keys(x.metrics!).filter((k) => k.endsWith('.ns_per_op')).length, 0),
      guards: recs.filter((x) => x.experiment === 'guards').length,
    };
    expect(expected).toEqual({ memcache: 11, 'redis-zadd': 1, datastructures: 10, guards: 1 });
    // datastructures has a chart per claimed variant: the kflex one holds this run's ffkx-bench cells.
    for (const [exp, n] of Object.entries(expected))
      expect(marks(byId(r.doc, `chart-${exp === 'datastructures' ? 'datastructures-kflex' : exp}`), 'dots'), exp).toHaveLength(n);
    const mem = byId(r.doc, 'chart-memcache');
    // Both variants at both points: 4 median bars; the axis names only what varies, on its own line.
    expect(marks(mem, 'bars')).toHaveLength(4);
    const labels = all(mem, (n) => n.tag === 'g' && cls(n, 'role-axis-label')).flatMap((g) => g.children.map(text));
    expect(labels).toContain('concurrency=8');
    expect(labels).toContain('concurrency=64');
    expect(text(mem)).toMatch(/all points: set_get=10:90, threads=1, value_size=32/);
    expect(r.html).not.toContain('…');
    // The skipped KFlex side of redis-zadd is said, not left blank.
    expect(text(byId(r.doc, 'chart-redis-zadd'))).toContain('kflex: skipped');
  });

  it('the data-structure chart pairs each ffkx_* with its bpf_* twin and leaves the eBPF-only one unpaired', () => {
    const dots = marks(byId(r.doc, 'chart-datastructures-kflex'), 'dots').map((p) => p.attrs['aria-label']!);
    expect(dots.filter((l) => /bench: Zipfian\/rbtree_update; impl: ffkx_/.test(l))).toHaveLength(2);
    expect(dots.filter((l) => /bench: Zipfian\/rbtree_update; impl: bpf_/.test(l))).toHaveLength(2);
    expect(dots.filter((l) => /bench: Zipfian\/hashmap_lookup; impl: (ffkx|bpf)_/.test(l))).toHaveLength(4);
    expect(dots.filter((l) => /bench: Zipfian\/bpf_graph_linked_list_update \(no twin\); impl: bpf_/.test(l))).toHaveLength(2);
  });

  it('the timeline has one mark per stage, per testbed boot and per cell', () => {
    const t = byId(r.doc, 'chart-timeline');
    expect(marks(t, 'timeline_stage')).toHaveLength(Object.keys(manifest().stages).length);
    expect(marks(t, 'timeline_testbed')).toHaveLength(1);
    expect(marks(t, 'timeline_cell')).toHaveLength(r.recs.length);
    expect(marks(t, 'timeline_stage').map((p) => p.attrs['aria-label'])).toEqual(
      expect.arrayContaining([expect.stringMatching(/llvm: cached/), expect.stringMatching(/kernel: built in 300 s/)]),
    );
  });

  it('deviations as a table (artifact / lab / why / affects), then the cells that did not run', () => {
    const rows = all(byId(r.doc, 'deviations'), (n) => n.tag === 'tr' && !!n.attrs['data-topic']);
    expect(rows.map((n) => n.attrs['data-topic'])).toEqual([...DEVIATIONS.map((d) => d.topic), 'skipped', 'failed']);
    expect(rows[2]!.children.filter((c) => c.tag === 'td').map(text)).toEqual([
      'scaled heap',
      DEVIATIONS[2]!.artifact,
      DEVIATIONS[2]!.lab,
      DEVIATIONS[2]!.why,
      'datastructures, guards',
    ]);
  });

  it('is self-contained: no script, no external reference', () => {
    expect(all(r.doc, (n) => ['script', 'link', 'img', 'iframe'].includes(n.tag))).toEqual([]);
    expect(all(r.doc, (n) => 'src' in n.attrs)).toEqual([]);
    expect(all(r.doc, (n) => /^(https?:)?\/\//.test(n.attrs.href ?? ''))).toEqual([]);
  });

  it('report.md keeps the order, verdicts and badge evidence first, short enough to paste', () => {
    const at = (s: string) => r.md.indexOf(s);
    expect(at('> **TCG')).toBeGreaterThan(0);
    expect(at('**Verdicts** (8 claims): 2 reproduced · 1 deviate · 0 inconclusive · 5 not run')).toBeGreaterThan(at('> **TCG'));
    expect(at('## ACM badge evidence')).toBeGreaterThan(at('**Verdicts**'));
    expect(at('### Available: 1 of 5 met')).toBeGreaterThan(at('## ACM badge evidence'));
    expect(at('### Reproduced: 2 of 8 claims reproduced')).toBeGreaterThan(at('### Functional'));
    expect(at('## Claims')).toBeGreaterThan(at('### Reproduced'));
    expect(at('## Deviations')).toBeGreaterThan(at('## Run timeline'));
    expect(at('## Provenance')).toBeGreaterThan(at('## Deviations'));
    expect(r.md).toContain('| memcache-throughput (scaled heap) | reproduced |');
    expect(r.md).toContain('- [ ] failed (memcache/userspace rep 3): memcaslap: connect: Connection refused');
    expect(r.md.split('\n').length).toBeLessThan(130);
  });

  it('without events.jsonl (runs before it was kept) the timeline comes from the stage manifests and cells, and says so', async () => {
    const old = await assemble({ withEvents: false });
    const t = byId(old.doc, 'chart-timeline');
    expect(marks(t, 'timeline_stage')).toHaveLength(4);
    expect(marks(t, 'timeline_testbed')).toHaveLength(0);
    expect(marks(t, 'timeline_cell')).toHaveLength(old.recs.length);
    expect(text(t)).toMatch(/no events\.jsonl/);
    // llvm was built an hour before the run: cached at its start; the kernel was built during it.
    const labels = marks(t, 'timeline_stage').map((p) => p.attrs['aria-label']);
    expect(labels).toEqual(expect.arrayContaining([expect.stringMatching(/llvm: cached/), expect.stringMatching(/kernel: built in 300 s/)]));
    rmSync(old.dir, { recursive: true, force: true });
  });
});

describe('report model pieces', () => {
  it('pinning: a commit, a digest or a package version pins; a ref, a bare package name or a path does not', () => {
    expect(pinning({ kind: 'git', url: 'u', commit: COMMIT }).pinned).toBe(true);
    expect(pinning({ kind: 'tarball', url: 'u', sha256: 'a'.repeat(64) }).pinned).toBe(true);
    expect(pinning({ kind: 'git', url: 'u', ref: 'v1' })).toEqual({ pinned: false, how: expect.stringMatching(/git ref v1/) });
    expect(pinning({ kind: 'debian-package', package: 'linux-source-6.1' }).pinned).toBe(false);
    expect(pinning({ kind: 'debian-package', package: 'linux-source-7.3', version: '7.3.4-1~bpo13+1', suite: 'trixie-backports' })).toEqual({
      pinned: true,
      how: 'Debian package linux-source-7.3 7.3.4-1~bpo13+1 (trixie-backports), exactly that version downloaded',
    });
    expect(pinning({ kind: 'path', path: '/x' }).pinned).toBe(false);
  });

  it('affects: an experiment in a comma list, with or without its parameters; "all" affects every one', () => {
    const d = (affects: string) => ({ topic: 't', artifact: '', lab: '', why: '', affects });
    expect(affectsExperiment(d('datastructures, guards'), 'guards')).toBe(true);
    expect(affectsExperiment(d('memcache set_get=10-90,threads=1'), 'memcache')).toBe(true);
    expect(affectsExperiment(d('redis-getset/userspace'), 'redis-getset')).toBe(false);
    expect(affectsExperiment(d('redis-zadd'), 'redis')).toBe(false);
    expect(affectsExperiment(d('all'), 'guards')).toBe(true);
  });

  it("a claim is flagged by a deviation on one of its two sides: XDP_TX's locked mode on memcache/kflex and memcache/bmc (issue 23 item 5)", () => {
    const d = (affects: string) => ({ topic: 'XDP TX queues', artifact: '', lab: 'shares the stack queues', why: '', affects });
    expect(affectsVariants(d('memcache (kflex), memcache (bmc)'), 'memcache', ['kflex', 'userspace'])).toBe(true);
    expect(affectsVariants(d('memcache (bmc)'), 'memcache', ['kflex', 'userspace'])).toBe(false);
    expect(affectsVariants(d('memcache'), 'memcache', ['userspace'])).toBe(true);
    expect(affectsVariants(d('memcache (kflex)'), 'redis-getset', ['kflex'])).toBe(false);
    const m = { deviations: [d('memcache (kflex), memcache (bmc)'), { ...d('memcache (kflex)'), topic: 'client load' }] } as unknown as Manifest;
    expect(claimFlags(m, 'memcache', ['bmc', 'userspace']).map((f) => f.label)).toEqual(['XDP_TX locked']);
    expect(claimFlags(m, 'memcache', ['userspace'])).toEqual([]);
    expect(claimFlags({ deviations: [] } as unknown as Manifest, 'memcache', ['kflex'])).toEqual([]);
  });

  it('point labels name what varies, one key per line; the rest is shared', () => {
    const { label, shared } = pointLabels([
      { a: 1, b: 'x' },
      { a: 2, b: 'x' },
    ]);
    expect([label({ a: 2, b: 'x' }), shared]).toEqual(['a=2', 'b=x']);
    expect(pointLabels([{ a: 1, b: 'x' }]).label({ a: 1, b: 'x' })).toBe('a=1\nb=x');
  });

  it('older manifests with string deviations still list them, and a TCG run without any says so', () => {
    const m = { ...manifest(), deviations: ['clang 19 instead of the artifact LLVM'] } as unknown as Manifest;
    expect(deviations(m, [])).toEqual(['— (): artifact: ; lab: clang 19 instead of the artifact LLVM; why: ']);
    expect(deviations({ ...manifest(), deviations: [] }, [])[0]).toMatch(/TCG/);
  });

  it('a stage that failed and was then built (a resume) counts once, as built', () => {
    const e = (s: number, ev: LabEvent) => ({ t: at(s), ...ev }) as TimedEvent;
    const t = timeline(
      manifest(),
      [],
      [
        e(10, { type: 'stage-failed', stage: 'kernel', seconds: 9, error: 'x', logPath: '', tail: [] }),
        e(100, { type: 'stage-done', stage: 'kernel', seconds: 50, dir: '' }),
      ],
    );
    expect(t.items).toEqual([{ kind: 'stage', lane: 'stage kernel', label: 'kernel: built in 50 s', status: 'built', start: 50, seconds: 50 }]);
  });
});
