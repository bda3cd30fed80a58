import { describe, it, expect } from 'vitest';
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { runDirName, createRunDir, hostFacts, buildManifest, writeManifest, readManifest, latestRun } from '../../core/rundir.js';
import { writeBundle, verifyBundle } from '../../core/bundle.js';
import { loadConfig } from '../../core/config.js';
import { tempDir } from '../helpers.js';

describe('run directories', () => {
  it('are named <UTC timestamp>-<profile> and the latest is found', async () => {
    expect(runDirName('smoke', new Date('2026-11-27T08:15:00.123Z'))).toBe('20261127T081500Z-smoke');
    const root = tempDir();
    mkdirSync(join(root, '20261127T081500Z-smoke'));
    mkdirSync(join(root, '20261127T091500Z-paper'));
    mkdirSync(join(root, 'not-a-run'));
    expect(await latestRun(root)).toBe(join(root, '20261127T091500Z-paper'));
    const dir = await createRunDir('smoke', root);
    expect(existsSync(join(dir, 'logs'))).toBe(true);
  });

  it('the manifest records the host, the resolved config, sources and stage fingerprints', async () => {
    const config = loadConfig({ profile: 'smoke', set: ['vms.server.memory_mb=2048'], env: {} });
    const heap = { topic: 'heap', artifact: '256 GiB', lab: '16 GiB', why: 'host RAM', affects: 'redis-zadd' };
    const host = await hostFacts('tcg');
    expect(host.cores).toBeGreaterThan(0);
    expect(host.node).toBe(process.version);
    expect(host.lab_commit).toMatch(/^[0-9a-f]{40}(\+dirty)?$/);
    const m = buildManifest(config, host, { kernel: { stage: 'kernel', fingerprint: 'abc', dir: '/c/kernel/abc', manifest: { config_sha256: 'f00' } } }, [
      heap,
    ]);
    const dir = tempDir();
    await writeManifest(dir, m);
    const back = await readManifest(dir);
    expect(back).toMatchObject({
      profile: 'smoke',
      overrides: { 'vms.server.memory_mb': '--set vms.server.memory_mb=2048' },
      host: { accel: 'tcg' },
      stages: { kernel: { fingerprint: 'abc' } },
      deviations: [heap],
    });
    expect((back.config as { sources: Record<string, unknown> }).sources.kernel).toEqual({
      kind: 'debian-package',
      package: 'linux-source-7.3',
      version: '7.3.4-1~bpo13+1',
      suite: 'trixie-backports',
    });
  });
});

describe('bundles', () => {
  it('carry a SHA256SUMS that verify checks; tampering and extra files are caught', async () => {
    const root = tempDir();
    const run = join(root, '20261127T081500Z-smoke');
    mkdirSync(join(run, 'runs', 'x'), { recursive: true });
    writeFileSync(join(run, 'manifest.json'), '{}');
    writeFileSync(join(run, 'runs', 'x', 'metrics.json'), '{"tps":1}');
    const bundle = await writeBundle(run);
    expect(bundle).toBe(`${run}.tar.gz`);
    expect(readFileSync(join(run, 'SHA256SUMS'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}manifest\.json\n[0-9a-f]{64} {2}runs\/x\/metrics\.json\n$/);
    expect(await verifyBundle(bundle)).toMatchObject({ files: 2, bad: [], missing: [], outside: [] });
    // tamper: change one file after the sums were written, and add one
    writeFileSync(join(run, 'runs', 'x', 'metrics.json'), '{"tps":2}');
    writeFileSync(join(run, 'extra.txt'), 'x');
    const tampered = join(root, 't.tar.gz');
    await tar.c({ gzip: true, file: tampered, cwd: root }, ['20261127T081500Z-smoke']);
    expect(await verifyBundle(tampered)).toMatchObject({ files: 2, bad: ['runs/x/metrics.json', 'extra.txt (not in SHA256SUMS)'], missing: [] });
  });
});
