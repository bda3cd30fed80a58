import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { writeBundle } from '../../core/bundle.js';
import { LAB, ROOT, regexOf, tempDir } from '../helpers.js';

// The real CLI entry point (bin/kflex-lab.mjs -> lab.ts), with a private cache so nothing is built.
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [LAB, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, KFLEX_LAB_CACHE: tempDir() } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('kflex-lab CLI', () => {
  it('--help describes every verb and the exit codes', () => {
    const h = cli('--help');
    expect(h.code).toBe(0);
    for (const verb of [
      'reproduce',
      'doctor',
      'plan',
      'build',
      'up',
      'down',
      'status',
      'ssh',
      'exec',
      'run',
      'list',
      'report',
      'bundle',
      'verify',
      'parse',
      'clean',
    ])
      expect(h.out).toMatch(new RegExp(`^  ${verb} `, 'm'));
    expect(h.out).toMatch(/0 ok, 1 an experiment or check failed, 2 usage or configuration error/);
  });

  it('usage and configuration errors exit 2 and say what is wrong', () => {
    expect(cli('bogus').code).toBe(2);
    const bad = cli('plan', '--set', 'vms.link.backend=bridge');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--set vms\.link\.backend=bridge: vms\.link\.backend: 'bridge' is not allowed; allowed: auto, tap, socket/);
  });

  it('plan refuses an unknown variant, kernel fragment, missing --source path and negative grid value with exit 2', () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['--set', 'experiments.memcache.variants=[kflex,nosuch]'],
        regexOf(
          'm',
          /^(kflex-lab: )?--set experiments\.memcache\.variants=\[kflex,nosuch\]: /,
          /experiments\.memcache\.variants: 'nosuch' is not a variant of memcache; allowed: kflex, userspace, bmc$/,
        ),
      ],
      [
        ['--set', 'kernel.fragments=[vm-guest,nosuch]'],
        regexOf(
          'm',
          /^(kflex-lab: )?--set kernel\.fragments=\[vm-guest,nosuch\]: /,
          /kernel\.fragments: 'nosuch' is not a fragment in \S+kernel\/configs; allowed: bpf-cells, bpf-xdp, tiny, vm-guest/,
        ),
      ],
      [['--source', 'kflex=/nonexistent'], /^(kflex-lab: )?--source kflex=\/nonexistent: sources\.kflex: path \/nonexistent does not exist/m],
      [
        ['--set', 'experiments.memcache.grid.threads=[-1]'],
        regexOf(
          'm',
          /^(kflex-lab: )?--set experiments\.memcache\.grid\.threads=\[-1\]: /,
          /experiments\.memcache\.grid\.threads: -1 is out of range; allowed: a whole number >= 1/,
        ),
      ],
    ];
    // One process for all four: every problem is reported at once, one a line (the first after 'kflex-lab: ').
    const r = cli('plan', ...cases.flatMap(([args]) => args));
    expect(r.code).toBe(2);
    for (const [, re] of cases) expect(r.err).toMatch(re);
    expect(r.out).toBe('');
  });

  it('verify prints the tarball sha256 and exits 1 on a SHA256SUMS line outside the bundle', async () => {
    const dir = join(tempDir(), 'run-cli');
    mkdirSync(dir);
    writeFileSync(join(dir, 'summary.json'), '{}\n');
    const file = await writeBundle(dir);
    const ok = cli('verify', file);
    expect(ok.code).toBe(0);
    const sum = createHash('sha256').update(readFileSync(file)).digest('hex');
    expect(ok.out.trim().split('\n').at(-1)).toBe(`sha256 ${sum}  run-cli.tar.gz`);
    // A tampered bundle: tarred by hand, since writeBundle would rewrite SHA256SUMS.
    writeFileSync(join(dir, 'SHA256SUMS'), `${readFileSync(join(dir, 'SHA256SUMS'), 'utf8')}${sum}  ../../etc/passwd\n`);
    await tar.c({ gzip: true, file, cwd: join(dir, '..'), portable: true }, ['run-cli']);
    const bad = cli('verify', file);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/^OUTSIDE {2}\.\.\/\.\.\/etc\/passwd \(points outside the bundle; refused, not read\)$/m);
    expect(bad.out).toMatch(/1 outside the bundle/);
    expect(bad.out).toMatch(/^sha256 [0-9a-f]{64} {2}run-cli\.tar\.gz$/m);
  });

  it('plan --profile paper shows both pinned sources; smoke shows the Debian kernel package', () => {
    const paper = cli('plan', '--profile', 'paper');
    expect(paper.code).toBe(0);
    expect(paper.out).toMatch(/kflex\s+git https:\/\/github\.com\/rs3lab\/KFlex @ 567387bc78715fed2f7f8fe314710c817335295e/);
    expect(paper.out).toMatch(/kernel\s+git https:\/\/github\.com\/rs3lab\/KFlex-linux @ a6d01774811c6a8ce2f31abd7e06e4a9066ef37b/);
    expect(paper.out).toMatch(/^ {2}kflex\s+[0-9a-f]{16}/m);
    const smoke = cli('plan', '--profile', 'smoke');
    expect(smoke.out).toMatch(/kernel\s+Debian package linux-source-7\.3 7\.3\.4-1~bpo13\+1 \(trixie-backports\)/);
    expect(smoke.out).toMatch(/^ {2}kernel\s+[0-9a-f]{16}\s+~\s*\d+ min build/m);
    expect(smoke.out).toMatch(/estimate on this host \(\d+ CPUs\): ~\d+ min end to end/);
  });

  it('parse prints the metrics of a capture as JSON', () => {
    const r = cli('parse', 'memcaslap', 'test/fixtures/clients/memcaslap-udp.txt');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ tps: 35425 });
    expect(cli('parse', 'nope', 'x').code).toBe(2);
  });
});
