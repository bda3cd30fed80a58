import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { lab, explain, readEvents } from './cli.js';
import { ROOT, tempDir, requireOrSkip } from '../helpers.js';

// The evaluator's path: one command, real VMs, real memcached/redis and their real clients.
// BMC comes from GitHub (rs3lab/bmc-cache), which this workplace and CI cannot reach: with KFLEX_BMC_SRC set to a
// checkout of it at the pinned commit, the run builds and judges BMC; without it, the memcache/bmc cell must be
// skipped with the unreachable source named (never a pass that ran nothing).
const BMC_SRC = process.env.KFLEX_BMC_SRC;
const bmcArgs = BMC_SRC ? ['--source', `bmc=${BMC_SRC}`] : [];
const counts = BMC_SRC ? { ok: 7, failed: 0, skipped: 4 } : { ok: 6, failed: 0, skipped: 5 };

describe('reproduce --profile smoke --quick', () => {
  const results = tempDir('kflex-results-');
  const events = join(tempDir(), 'events.jsonl');
  let runDir = '';

  it('runs every experiment: baselines, BMC, the arena pairs and the mechanism probe; KFlex cells skipped with the probe reason; files kept', async () => {
    const r = await lab(['reproduce', '--profile', 'smoke', '--quick', ...bmcArgs, '--events', events], { KFLEX_LAB_RESULTS: results });
    expect(r.code, explain(r)).toBe(0);
    runDir = join(results, readdirSync(results).find((d) => /^\d{8}T\d{6}Z-smoke$/.test(d))!);
    for (const f of [
      'manifest.json',
      'summary.json',
      'summary.csv',
      'cells.json',
      'report.html',
      'report.md',
      'SHA256SUMS',
      'logs/server.serial.log',
      'logs/kernel.build.log',
    ])
      expect(existsSync(join(runDir, f)), f).toBe(true);
    const cells = JSON.parse(readFileSync(join(runDir, 'cells.json'), 'utf8')) as Array<{
      experiment: string;
      variant: string;
      status: string;
      reason?: string;
      metrics?: Record<string, number>;
    }>;
    expect(new Set(cells.map((c) => c.experiment))).toEqual(new Set(['mechanisms', 'memcache', 'redis-getset', 'redis-zadd', 'datastructures', 'guards']));
    for (const c of cells.filter((x) => x.variant === 'userspace')) {
      expect(c.status, JSON.stringify(c)).toBe('ok');
      const headline = { memcache: 'tps', 'redis-getset': 'ops_sec', 'redis-zadd': 'rps' }[c.experiment]!;
      expect(c.metrics![headline]).toBeGreaterThan(0);
    }
    for (const c of cells.filter((x) => x.variant === 'kflex' && x.experiment !== 'guards')) {
      expect(c.status).toBe('skipped');
      expect(c.reason).toMatch(/not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF/);
    }
    // BMC on Linux 7.3: its XDP cache answered GETs (hits counted by BMC, and memcached saw fewer GETs than were sent).
    const bmc = cells.find((c) => c.experiment === 'memcache' && c.variant === 'bmc')!;
    if (!BMC_SRC) {
      console.warn('memcache/bmc: KFLEX_BMC_SRC is not set (a checkout of rs3lab/bmc-cache @1fb8f96): BMC is checked skipped, not run');
      expect(bmc.status).toBe('skipped');
      expect(bmc.reason).toMatch(/could not fetch rs3lab\/bmc-cache .*--source bmc=/);
    }
    if (BMC_SRC) {
      expect(bmc.status, JSON.stringify(bmc)).toBe('ok');
      expect(bmc.metrics!.bmc_hits).toBeGreaterThan(0);
      expect(bmc.metrics!.tps).toBeGreaterThan(0);
      const bmcDir = join(runDir, 'runs/memcache/bmc');
      const bmcRep = join(bmcDir, readdirSync(bmcDir)[0]!, 'rep-1');
      // Detached afterwards: the detach printed nothing still attached (no xdp, no egress line).
      expect(readFileSync(join(bmcRep, 'bmc-detach.stdout'), 'utf8')).not.toMatch(/^(xdp|egress) \S/m);
      expect(readFileSync(join(bmcRep, 'bmc-tc.cmd'), 'utf8')).toMatch(/tc filter replace dev "\$1" egress bpf object-pinned/);
    }
    // The arena benchmark: every pair measured, beside the empty floor, and its structures checked.
    const arena = cells.filter((c) => c.experiment === 'datastructures' && c.variant === 'arena');
    expect(arena.length).toBeGreaterThan(0);
    for (const a of arena) {
      expect(a.status, JSON.stringify(a).slice(0, 400)).toBe('ok');
      const names = Object.keys(a.metrics!);
      for (const s of ['hashmap', 'rbtree', 'linked_list'])
        for (const side of ['arena', 'bpf'])
          expect(
            names.some((n) => n.startsWith(`Zipfian/${side}_${s}_update`)),
            `${side}_${s}`,
          ).toBe(true);
      expect(names.some((n) => n.startsWith('Zipfian/empty_floor'))).toBe(true);
    }
    // The mechanism table: every upstream mechanism present on 7.3, KFlex's heap map absent.
    const mech = cells.find((c) => c.experiment === 'mechanisms')!;
    expect(mech.status, JSON.stringify(mech)).toBe('ok');
    expect(mech.metrics).toMatchObject({
      present_arena: 1,
      present_cond_break: 1,
      present_res_spin_lock: 1,
      present_irq: 1,
      present_preempt: 1,
      present_kflex_heap: 0,
    });
    expect(readFileSync(join(runDir, 'report.md'), 'utf8')).toMatch(/## Mechanisms on kernel 7\.3/);
    const cell = join(runDir, 'runs/memcache/userspace');
    const rep = join(cell, readdirSync(cell)[0]!, 'rep-1');
    for (const f of ['client.cmd', 'client.stdout', 'client.stderr', 'kernel.log', 'metrics.json', 'status.json', 'server.log'])
      expect(existsSync(join(rep, f)), f).toBe(true);
    expect(readFileSync(join(rep, 'client.cmd'), 'utf8')).toMatch(/^client\$ memcaslap -s 10\.77\.0\.1:6969 -F \/tmp\/memcaslap\.cfg .* -U /);
    const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
    expect(manifest.host.accel).toMatch(/^(kvm|tcg)$/);
    expect(manifest.xdp_check.mode).toBe('driver');
    expect(manifest.stages.kernel.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const ev = readEvents(events);
    expect(ev.find((e) => e.type === 'run-done')).toMatchObject({ counts, exitCode: 0 });
    // The accelerator is decided before the preamble, and the VMs run on exactly that one.
    const accel = ev.find((e) => e.type === 'accel')!;
    const started = ev.find((e) => e.type === 'run-start')!;
    expect(ev.indexOf(accel)).toBeLessThan(ev.indexOf(started));
    expect(ev.find((e) => e.type === 'testbed-up')).toMatchObject({ kind: 'vm', accel: accel.accel, nativeXdp: true });
    expect(manifest.host.accel).toBe(accel.accel);
    const verdicts = ev.find((e) => e.type === 'run-done')!.verdicts as Array<{ claim: string; verdict: string }>;
    expect(verdicts.find((v) => v.claim === 'guard-elision')?.verdict).toBe('not run');
    // Judged on this kernel, not "not run" (with --quick's single repetition a side may read inconclusive).
    for (const claim of [...(BMC_SRC ? ['bmc-memcache-throughput'] : []), 'arena-datastructures-ops'])
      expect(verdicts.find((v) => v.claim === claim)?.verdict, claim).toMatch(/^(reproduced|deviates|inconclusive)$/);
  });

  it('--resume of a finished run says there is nothing left, boots nothing and exits 0', async () => {
    const again = join(tempDir(), 'resume.jsonl');
    const r = await lab(['reproduce', '--profile', 'smoke', '--quick', ...bmcArgs, '--resume', runDir, '--events', again], { KFLEX_LAB_RESULTS: results });
    expect(r.code, explain(r)).toBe(0);
    const ev = readEvents(again);
    expect(ev.find((e) => e.type === 'run-done')).toMatchObject({ nothingToRun: true, exitCode: 0, counts });
    expect(ev.filter((e) => e.type === 'testbed-up' || e.type === 'stage-start' || e.type === 'cell-start')).toEqual([]);
  });

  it('the bundle verifies', async () => {
    const v = await lab(['verify', `${runDir}.tar.gz`]);
    expect(v.code, explain(v)).toBe(0);
    expect(v.stdout).toMatch(/\d+ files listed, 0 bad, 0 missing/);
  });

  const BROWSER_TEST =
    'report.html opens in a real browser: summary and badge evidence first, one dot per repetition, a timeline mark per stage and cell, ' +
    'no console errors, no network';
  it(BROWSER_TEST, async () => {
    if (!requireOrSkip(existsSync('/usr/bin/chromium'), '/usr/bin/chromium (apt-get install chromium) for the browser test')) return;
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      const requests: string[] = [];
      page.on('request', (req) => !req.url().startsWith('file:') && requests.push(req.url()));
      await page.goto(`file://${join(runDir, 'report.html')}`);
      const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
      const cells = JSON.parse(readFileSync(join(runDir, 'cells.json'), 'utf8')) as Array<{
        experiment: string;
        variant: string;
        status: string;
        metrics?: Record<string, number>;
      }>;

      // The evaluator's first screen: verdict counts and badge evidence, before the claims table.
      // A locator's matches come in document order.
      const sections = ['summary', 'badges', 'claims', 'charts', 'deviations', 'provenance'];
      expect(await page.locator(sections.map((id) => `#${id}`).join(', ')).evaluateAll((els) => els.map((e) => e.id))).toEqual(sections);
      expect((await page.locator('#badges').boundingBox())!.y).toBeLessThan(900);
      // Eight claims; on Linux 7.3 the arena claim is judged (and BMC's, with its source), the rest are not run.
      const judged = BMC_SRC ? 2 : 1;
      const vc = (await page.locator('#verdict-counts').innerText()).match(/(\d+)\s*reproduced\s*(\d+)\s*deviate\s*(\d+)\s*inconclusive\s*(\d+)\s*not run/);
      expect(vc, 'verdict counts').not.toBeNull();
      expect(Number(vc![1]) + Number(vc![2]) + Number(vc![3])).toBe(judged);
      expect(Number(vc![4])).toBe(8 - judged);
      if (manifest.host.accel === 'tcg') expect(await page.locator('#accel-banner').innerText()).toMatch(/functional only: not performance-comparable/);
      expect(await page.locator('#badges article').evaluateAll((as) => as.map((a) => a.getAttribute('data-badge')))).toEqual([
        'Available',
        'Functional',
        'Reproduced',
      ]);
      expect(await page.locator('[data-badge="Functional"]').innerText()).toMatch(/native XDP: driver mode, (\d+) of \1 datagrams counted/);
      expect(await page.locator('[data-badge="Available"]').innerText()).toMatch(
        /kernel: pinned by Debian package linux-source-7\.3 7\.3\.4-1~bpo13\+1 \(trixie-backports\)/,
      );

      expect(await page.locator('#claims tbody tr').count()).toBe(8);
      expect(await page.locator('tr[data-claim="guard-elision"] td').nth(5).innerText()).toMatch(/^not run \(/);
      expect(await page.locator('tr[data-claim="memcache-throughput"]').innerText()).toMatch(/userspace: [\d,]+/);
      expect(await page.locator('tr[data-claim="memcache-throughput"] a').first().getAttribute('href')).toBe('#chart-memcache');

      // One dot per repetition: every ok cell's headline value (each ns/op benchmark for the data structures,
      // whose charts are one per variant).
      const headline: Record<string, string> = {
        memcache: 'tps',
        'redis-getset': 'ops_sec',
        'redis-zadd': 'rps',
        guards: 'measured_elided',
        mechanisms: 'upstream_present',
      };
      const chartOf = (c: (typeof cells)[number]) => (c.experiment === 'datastructures' ? `datastructures-${c.variant}` : c.experiment);
      let dots = 0;
      for (const chart of new Set(cells.map(chartOf))) {
        const ok = cells.filter((c) => chartOf(c) === chart && c.status === 'ok');
        const want = chart.startsWith('datastructures')
          ? ok.reduce((a, c) => a + Object.keys(c.metrics ?? {}).filter((k) => k.endsWith('.ns_per_op')).length, 0)
          : ok.filter((c) => typeof c.metrics?.[headline[c.experiment]!] === 'number').length;
        expect(await page.locator(`#chart-${chart} g.dots_marks > path`).count(), chart).toBe(want);
        dots += want;
      }
      // memcache, the two redis baselines, the mechanism table, and the arena pairs beside their floor.
      expect(dots).toBeGreaterThan(4 + (BMC_SRC ? 1 : 0));
      // The timeline: a mark per stage, per testbed boot and per cell.
      expect(await page.locator('#chart-timeline g.timeline_stage_marks > path').count()).toBe(Object.keys(manifest.stages).length);
      expect(await page.locator('#chart-timeline g.timeline_testbed_marks > path').count()).toBe(1);
      expect(await page.locator('#chart-timeline g.timeline_cell_marks > path').count()).toBe(cells.length);
      expect(await page.locator('#deviations tbody tr').first().innerText()).toMatch(/TCG|KVM/);

      const shots = join(ROOT, 'test-artifacts');
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, 'report.png'), fullPage: true });
      expect(statSync(join(shots, 'report.png')).size).toBeGreaterThan(10_000);
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
