import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { lab, explain, readEvents } from './cli.js';
import { ROOT, tempDir, requireOrSkip } from '../helpers.js';

// The evaluator's path: one command, real VMs, real memcached/redis and their real clients.
describe('reproduce --profile smoke --quick', () => {
  const results = tempDir('kflex-results-');
  const events = join(tempDir(), 'events.jsonl');
  let runDir = '';

  it('runs all five experiments: baselines measured, KFlex cells skipped with the probe reason, every file kept', async () => {
    const r = await lab(['reproduce', '--profile', 'smoke', '--quick', '--events', events], { KFLEX_LAB_RESULTS: results });
    expect(r.code, explain(r)).toBe(0);
    runDir = join(results, readdirSync(results).find((d) => /^\d{8}T\d{6}Z-smoke$/.test(d))!);
    for (const f of ['manifest.json', 'summary.json', 'summary.csv', 'cells.json', 'report.html', 'report.md', 'SHA256SUMS', 'logs/server.serial.log', 'logs/kernel.build.log']) expect(existsSync(join(runDir, f)), f).toBe(true);
    const cells = JSON.parse(readFileSync(join(runDir, 'cells.json'), 'utf8')) as Array<{ experiment: string; variant: string; status: string; reason?: string; metrics?: Record<string, number> }>;
    expect(new Set(cells.map((c) => c.experiment))).toEqual(new Set(['memcache', 'redis-getset', 'redis-zadd', 'datastructures', 'guards']));
    for (const c of cells.filter((x) => x.variant === 'userspace')) {
      expect(c.status, JSON.stringify(c)).toBe('ok');
      const headline = { memcache: 'tps', 'redis-getset': 'ops_sec', 'redis-zadd': 'rps' }[c.experiment]!;
      expect(c.metrics![headline]).toBeGreaterThan(0);
    }
    for (const c of cells.filter((x) => x.variant === 'kflex')) {
      expect(c.status).toBe('skipped');
      expect(c.reason).toMatch(/not a KFlex kernel: BPF_MAP_TYPE_HEAP is not in its BTF/);
    }
    const cell = join(runDir, 'runs/memcache/userspace');
    const rep = join(cell, readdirSync(cell)[0]!, 'rep-1');
    for (const f of ['client.cmd', 'client.stdout', 'client.stderr', 'kernel.log', 'metrics.json', 'status.json', 'server.log']) expect(existsSync(join(rep, f)), f).toBe(true);
    expect(readFileSync(join(rep, 'client.cmd'), 'utf8')).toMatch(/^client\$ memcaslap -s 10\.77\.0\.1:6969 -F \/tmp\/memcaslap\.cfg .* -U /);
    const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
    expect(manifest.host.accel).toMatch(/^(kvm|tcg)$/);
    expect(manifest.xdp_check.mode).toBe('driver');
    expect(manifest.stages.kernel.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const ev = readEvents(events);
    expect(ev.find((e) => e.type === 'run-done')).toMatchObject({ counts: { ok: 3, failed: 0, skipped: 5 }, exitCode: 0 });
    // The accelerator is decided before the preamble, and the VMs run on exactly that one.
    const accel = ev.find((e) => e.type === 'accel')!;
    const started = ev.find((e) => e.type === 'run-start')!;
    expect(ev.indexOf(accel)).toBeLessThan(ev.indexOf(started));
    expect(ev.find((e) => e.type === 'testbed-up')).toMatchObject({ kind: 'vm', accel: accel.accel, nativeXdp: true });
    expect(manifest.host.accel).toBe(accel.accel);
    const verdicts = (ev.find((e) => e.type === 'run-done')!.verdicts as Array<{ claim: string; verdict: string }>);
    expect(verdicts.find((v) => v.claim === 'guard-elision')?.verdict).toBe('not run');
  });

  it('--resume of a finished run says there is nothing left, boots nothing and exits 0', async () => {
    const again = join(tempDir(), 'resume.jsonl');
    const r = await lab(['reproduce', '--profile', 'smoke', '--quick', '--resume', runDir, '--events', again], { KFLEX_LAB_RESULTS: results });
    expect(r.code, explain(r)).toBe(0);
    const ev = readEvents(again);
    expect(ev.find((e) => e.type === 'run-done')).toMatchObject({ nothingToRun: true, exitCode: 0, counts: { ok: 3, failed: 0, skipped: 5 } });
    expect(ev.filter((e) => e.type === 'testbed-up' || e.type === 'stage-start' || e.type === 'cell-start')).toEqual([]);
  });

  it('the bundle verifies', async () => {
    const v = await lab(['verify', `${runDir}.tar.gz`]);
    expect(v.code, explain(v)).toBe(0);
    expect(v.stdout).toMatch(/\d+ files listed, 0 bad, 0 missing/);
  });

  it('report.html opens in a real browser: claims table, charts, no console errors', async () => {
    if (!requireOrSkip(existsSync('/usr/bin/chromium'), '/usr/bin/chromium (apt-get install chromium) for the browser test')) return;
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      const requests: string[] = [];
      page.on('request', (req) => !req.url().startsWith('file:') && requests.push(req.url()));
      await page.goto(`file://${join(runDir, 'report.html')}`);
      expect(await page.locator('#claims tbody tr').count()).toBe(5);
      expect(await page.locator('tr[data-claim="guard-elision"] td').last().innerText()).toMatch(/^not run \(/);
      expect(await page.locator('tr[data-claim="memcache-throughput"]').innerText()).toMatch(/userspace: [\d,]+/);
      expect(await page.locator('figure.chart svg').count()).toBeGreaterThanOrEqual(3);
      expect(await page.locator('#deviations li').first().innerText()).toMatch(/TCG|skipped|substituted/);
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
