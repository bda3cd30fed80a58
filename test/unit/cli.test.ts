import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { LAB, ROOT, tempDir } from '../helpers.js';

// The real CLI entry point (bin/kflex-lab.mjs -> lab.ts), with a private cache so nothing is built.
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [LAB, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, KFLEX_LAB_CACHE: tempDir() } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('kflex-lab CLI', () => {
  it('--help describes every verb and the exit codes', () => {
    const h = cli('--help');
    expect(h.code).toBe(0);
    for (const verb of ['reproduce', 'doctor', 'plan', 'build', 'up', 'down', 'status', 'ssh', 'exec', 'run', 'list', 'report', 'bundle', 'verify', 'parse', 'clean'])
      expect(h.out).toMatch(new RegExp(`^  ${verb} `, 'm'));
    expect(h.out).toMatch(/0 ok, 1 an experiment or check failed, 2 usage or configuration error/);
  });

  it('usage and configuration errors exit 2 and say what is wrong', () => {
    expect(cli('bogus').code).toBe(2);
    const bad = cli('plan', '--set', 'vms.link.backend=bridge');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--set vms\.link\.backend=bridge: vms\.link\.backend: 'bridge' is not allowed; allowed: auto, tap, socket/);
  });

  it('plan --profile paper shows both pinned sources; smoke shows the Debian kernel package', () => {
    const paper = cli('plan', '--profile', 'paper');
    expect(paper.code).toBe(0);
    expect(paper.out).toMatch(/kflex\s+git https:\/\/github\.com\/rs3lab\/KFlex @ 567387bc78715fed2f7f8fe314710c817335295e/);
    expect(paper.out).toMatch(/kernel\s+git https:\/\/github\.com\/rs3lab\/KFlex-linux @ a6d01774811c6a8ce2f31abd7e06e4a9066ef37b/);
    expect(paper.out).toMatch(/^  kflex\s+[0-9a-f]{16}/m);
    const smoke = cli('plan', '--profile', 'smoke');
    expect(smoke.out).toMatch(/kernel\s+Debian package linux-source-6\.1/);
    expect(smoke.out).toMatch(/^  kernel\s+[0-9a-f]{16}\s+~\s*\d+ min build/m);
    expect(smoke.out).toMatch(/estimate on this host \(\d+ CPUs\): ~\d+ min end to end/);
  });

  it('parse prints the metrics of a capture as JSON', () => {
    const r = cli('parse', 'memcaslap', 'test/fixtures/clients/memcaslap-udp.txt');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ tps: 35425 });
    expect(cli('parse', 'nope', 'x').code).toBe(2);
  });
});
