import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, DEFAULT_CONFIG, type LoadOptions } from '../../core/config.js';
import { ConfigError } from '../../core/errors.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { FRAGMENT_DIR } from '../../kernel/stage.js';
import { writeConfig, tempDir } from '../helpers.js';

const base = readFileSync(DEFAULT_CONFIG, 'utf8');

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).exitCode).toBe(2);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('lab.yaml', () => {
  it('resolves paper (default) and smoke, smoke extending paper', () => {
    const paper = loadConfig({ env: {} });
    expect(paper.profileName).toBe('paper');
    expect(paper.profile.sources.kflex).toEqual({ kind: 'git', url: 'https://github.com/rs3lab/KFlex', commit: '567387bc78715fed2f7f8fe314710c817335295e' });
    expect(paper.profile.sources.kernel).toEqual({
      kind: 'git',
      url: 'https://github.com/rs3lab/KFlex-linux',
      commit: 'a6d01774811c6a8ce2f31abd7e06e4a9066ef37b',
    });
    const smoke = loadConfig({ profile: 'smoke', env: {} });
    expect(smoke.profile.sources.kernel).toEqual({
      kind: 'debian-package',
      package: 'linux-source-7.3',
      version: '7.3.4-1~bpo13+1',
      suite: 'trixie-backports',
    });
    expect(smoke.profile.kernel.base).toBe('tinyconfig');
    // inherited from paper
    expect(smoke.profile.toolchain.min_version).toBe(19);
    expect(smoke.profile.image.suite).toBe('trixie');
  });

  it('points at the line and column of a bad enum value and lists what is allowed', () => {
    const file = writeConfig(base.replace('link: { backend: auto, mtu: 1500 }', 'link: { backend: bridge, mtu: 1500 }'));
    const p = problems(() => loadConfig({ file, env: {} }));
    const line = base.split('\n').findIndex((l) => l.includes('link: { backend: auto')) + 1;
    expect(p).toEqual([expect.stringMatching(new RegExp(`^${file}:${line}:\\d+: vms\\.link\\.backend: 'bridge' is not allowed; allowed: auto, tap, socket$`))]);
  });

  it('names unknown fields, in the profile that defines them', () => {
    const file = writeConfig(base.replace('      size_mb: 2048\n', '      size_mb: 2048\n      sise_mb: 3\n'));
    const p = problems(() => loadConfig({ file, profile: 'smoke', env: {} }));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/lab\.yaml:\d+:\d+: image: unknown field\(s\) sise_mb; check the spelling/);
    const line = Number(p[0]!.split(':')[1]);
    expect(base.replace('      size_mb: 2048\n', '      size_mb: 2048\n      sise_mb: 3\n').split('\n')[line - 1]).toMatch(/^ {6}size_mb: 2048$/);
  });

  it('reports a YAML syntax error with its position', () => {
    const file = writeConfig('profiles:\n  paper: [unclosed\n');
    expect(problems(() => loadConfig({ file, env: {} }))[0]).toMatch(/lab\.yaml:\d+:\d+: YAML syntax: /);
  });

  it('rejects an unknown profile, an extends cycle and a missing source reference', () => {
    expect(problems(() => loadConfig({ profile: 'nope', env: {} }))[0]).toMatch(/profiles\.nope: no such profile; known: paper, smoke/);
    const cyc = writeConfig(base.replace('  paper:\n', '  paper:\n    extends: smoke\n'));
    expect(problems(() => loadConfig({ file: cyc, profile: 'smoke', env: {} }))[0]).toMatch(/extends: cycle smoke -> paper -> smoke/);
    const noSrc = writeConfig(base.replace('      source: kernel\n', '      source: kernal\n'));
    expect(problems(() => loadConfig({ file: noSrc, env: {} }))[0]).toMatch(
      /kernel\.source: names source 'kernal', which profiles\.paper\.sources does not define; known: kflex, kernel, llvm, memtier/,
    );
  });

  it('checks git sources are pinned', () => {
    const file = writeConfig(base.replace('ref: 2.1.1 }', 'url2: x }'));
    const p = problems(() => loadConfig({ file, env: {} }));
    expect(p.join('\n')).toMatch(/sources\.memtier: unknown field\(s\) url2/);
    const file2 = writeConfig(base.replace(', commit: 567387bc78715fed2f7f8fe314710c817335295e }', ' }'));
    expect(problems(() => loadConfig({ file: file2, env: {} })).join('\n')).toMatch(/sources\.kflex: a git source needs `commit`/);
  });

  it('applies --set, KFLEX_LAB__ environment and --source overrides, and names them in errors', () => {
    const kflex = tempDir();
    const c = loadConfig({
      profile: 'smoke',
      set: ['vms.server.memory_mb=4096', 'vms.link.backend=socket'],
      sources: [`kflex=${kflex}`],
      env: { KFLEX_LAB__VMS__CLIENT__CPUS: '2' },
    });
    expect(c.profile.vms.server.memory_mb).toBe(4096);
    expect(c.profile.vms.client.cpus).toBe(2);
    expect(c.profile.vms.link.backend).toBe('socket');
    expect(c.profile.sources.kflex).toEqual({ kind: 'path', path: kflex });
    expect(c.overrides).toMatchObject({
      'vms.server.memory_mb': '--set vms.server.memory_mb=4096',
      'vms.client.cpus': 'environment KFLEX_LAB__VMS__CLIENT__CPUS',
      'sources.kflex': `--source kflex=${kflex}`,
    });
    expect(problems(() => loadConfig({ set: ['vms.server.cpus=0'], env: {} }))).toEqual([
      '--set vms.server.cpus=0: vms.server.cpus: must be greater than or equal to 1',
    ]);
    expect(problems(() => loadConfig({ set: ['novalue'], env: {} }))[0]).toMatch(/--set novalue: expected key\.path=value/);
    expect(problems(() => loadConfig({ sources: ['linux=/x'], env: {} }))[0]).toMatch(
      /--source linux=\/x: profile paper has no source named linux; known: kflex, kernel, llvm, memtier/,
    );
  });

  it('takes the cache root from KFLEX_LAB_CACHE', () => {
    expect(loadConfig({ env: { KFLEX_LAB_CACHE: '/tmp/kc' } }).cacheRoot).toBe('/tmp/kc');
    expect(loadConfig({ env: { HOME: '/h' } }).cacheRoot).toMatch(/kflex-lab$/);
  });
});

describe('lab.yaml: values checked against the experiments, kernel/configs and the file system', () => {
  // What the CLI passes in (lab/config.ts labConfig; core/ imports neither experiments/ nor kernel/).
  const knownExperiments = Object.fromEntries(EXPERIMENTS.map((e) => [e.id, { variants: e.variants.map((v) => v.id), grid: e.grid }]));
  const strict = (o: LoadOptions = {}) => loadConfig({ env: {}, knownExperiments, fragmentsDir: FRAGMENT_DIR, ...o });
  const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

  it('accepts both shipped profiles', () => {
    expect(strict().profileName).toBe('paper');
    expect(strict({ profile: 'smoke' }).profileName).toBe('smoke');
  });

  it('refuses a variant the experiment does not have, naming the override or the line', () => {
    expect(problems(() => strict({ set: ['experiments.memcache.variants=[kflex,nosuch]'] }))).toEqual([
      "--set experiments.memcache.variants=[kflex,nosuch]: experiments.memcache.variants: 'nosuch' is not a variant of memcache; " +
        'allowed: kflex, userspace, bmc',
    ]);
    // bmc is memcache's, not redis-getset's
    const text = base.replace('      redis-getset:\n        variants: [kflex, userspace]\n', '      redis-getset:\n        variants: [kflex, bmc]\n');
    expect(text).not.toBe(base);
    const file = writeConfig(text);
    expect(problems(() => strict({ file }))).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${file}:${lineOf(text, 'variants: [kflex, bmc]')}:\\d+: experiments\\.redis-getset\\.variants: 'bmc' is not a variant of redis-getset; ` +
            `allowed: kflex, userspace$`,
        ),
      ),
    ]);
    expect(problems(() => strict({ set: ['experiments.guards.variants=[kflex,kflex]'] }))[0]).toMatch(/experiments\.guards\.variants: 'kflex' is listed twice/);
  });

  it('refuses an experiment id no experiment has', () => {
    expect(problems(() => strict({ set: ['experiments.nosuch.variants=[kflex]'] }))).toEqual([
      '--set experiments.nosuch.variants=[kflex]: experiments.nosuch: no such experiment; ' +
        'allowed: mechanisms, memcache, redis-getset, redis-zadd, datastructures, guards',
    ]);
    const text = base.replace('      guards:\n', '      gaurds:\n');
    const file = writeConfig(text);
    // A block mapping's position is its first field's line (where its value node starts), as for unknown fields.
    expect(problems(() => strict({ file }))).toEqual([
      expect.stringMatching(
        new RegExp(`^${file}:${lineOf(text, 'gaurds:') + 1}:\\d+: experiments\\.gaurds: no such experiment; allowed: mechanisms, memcache, `),
      ),
    ]);
  });

  it('refuses a kernel fragment that is not in kernel/configs, or a fragment or base file that does not exist', () => {
    expect(problems(() => strict({ set: ['kernel.fragments=[vm-guest,nosuch]'] }))).toEqual([
      `--set kernel.fragments=[vm-guest,nosuch]: kernel.fragments: 'nosuch' is not a fragment in ${FRAGMENT_DIR}; ` +
        `allowed: bpf-cells, bpf-xdp, tiny, vm-guest (or a path to a .config fragment)`,
    ]);
    const text = base.replace('fragments: [vm-guest, bpf-xdp]', 'fragments: [vm-guest, bpf_xdp]');
    const file = writeConfig(text);
    expect(problems(() => strict({ file }))).toEqual([
      expect.stringMatching(new RegExp(`^${file}:${lineOf(text, 'bpf_xdp')}:\\d+: kernel\\.fragments: 'bpf_xdp' is not a fragment in `)),
    ]);
    expect(problems(() => strict({ set: ['kernel.fragments=[/nonexistent/x.config]'] }))[0]).toMatch(
      /kernel\.fragments: no file \/nonexistent\/x\.config; give an existing \.config fragment/,
    );
    expect(problems(() => strict({ set: ['kernel.base=/nonexistent/.config'] }))[0]).toMatch(
      /kernel\.base: no file \/nonexistent\/\.config; allowed: tinyconfig, defconfig, or a path to a full \.config/,
    );
    // A fragment given by path, a distribution .config as base, and another fragments directory are fine.
    const dir = tempDir();
    writeFileSync(join(dir, 'mine.config'), 'CONFIG_X=y\n');
    expect(strict({ set: [`kernel.fragments=[vm-guest,${dir}/mine.config]`, `kernel.base=${dir}/mine.config`] }).profile.kernel.fragments).toEqual([
      'vm-guest',
      `${dir}/mine.config`,
    ]);
    expect(problems(() => strict({ fragmentsDir: dir }))[0]).toMatch(/'vm-guest' is not a fragment in .*; allowed: mine/);
  });

  it('refuses a path source that does not exist', () => {
    expect(problems(() => strict({ sources: ['kflex=/nonexistent'] }))).toEqual([
      '--source kflex=/nonexistent: sources.kflex: path /nonexistent does not exist; give an existing directory or file (--source kflex=PATH)',
    ]);
    const text = base.replace(
      '      memtier: { kind: git, url: https://github.com/RedisLabs/memtier_benchmark, ref: 2.1.1 }',
      '      memtier: { kind: path, path: /nonexistent/memtier }',
    );
    const file = writeConfig(text);
    expect(problems(() => strict({ file }))).toEqual([
      expect.stringMatching(new RegExp(`^${file}:${lineOf(text, '/nonexistent/memtier')}:\\d+: sources\\.memtier: path /nonexistent/memtier does not exist`)),
    ]);
    // checked without the caller's lists too: it needs nothing from outside core/
    expect(problems(() => loadConfig({ sources: ['kflex=/nonexistent'], env: {} }))).toHaveLength(1);
    const dir = join(tempDir(), 'KFlex');
    mkdirSync(dir);
    expect(strict({ sources: [`kflex=${dir}`] }).profile.sources.kflex).toEqual({ kind: 'path', path: dir });
  });

  it('refuses grid values out of their range and grid keys no experiment reads', () => {
    expect(problems(() => strict({ set: ['experiments.memcache.grid.threads=[-1]'] }))).toEqual([
      '--set experiments.memcache.grid.threads=[-1]: experiments.memcache.grid.threads: -1 is out of range; ' +
        'allowed: a whole number >= 1 (client threads: memcaslap -T)',
    ]);
    const cases: Array<[string, RegExp]> = [
      ['experiments.memcache.grid.concurrency=[0]', /grid\.concurrency: 0 is out of range; allowed: a whole number >= 1/],
      ['experiments.memcache.grid.value_size=[1.5]', /grid\.value_size: 1\.5 is out of range/],
      ['experiments.memcache.grid.threads=["8"]', /grid\.threads: "8" is out of range/],
      ['experiments.memcache.grid.set_get=["0:0"]', /grid\.set_get: "0:0" is out of range; allowed: SET:GET as 'N:M' with N\+M > 0/],
      ['experiments.redis-getset.grid.ratio=["1/9"]', /grid\.ratio: "1\/9" is out of range/],
      ['experiments.redis-zadd.quick.grid.requests=[-5]', /experiments\.redis-zadd\.quick\.grid\.requests: -5 is out of range/],
      [
        'experiments.datastructures.grid.filter=[""]',
        /grid\.filter: "" is out of range; allowed: a non-empty benchmark name regex: ffkx-bench --benchmark_filter, kflex-arena-bench --filter/,
      ],
      [
        'experiments.memcache.grid.thread=[1]',
        /experiments\.memcache\.grid\.thread: memcache reads no grid key 'thread'; allowed: set_get, threads, concurrency, value_size/,
      ],
    ];
    for (const [set, re] of cases)
      expect(
        problems(() => strict({ set: [set] })),
        set,
      ).toEqual([expect.stringMatching(re)]);
    // In the file: the position is the bad value's line.
    const text = base.replace('grid: { requests: [20000], threads: [1], clients: [8] }', 'grid: { requests: [20000], threads: [1], clients: [-8] }');
    const file = writeConfig(text);
    expect(problems(() => strict({ file, profile: 'smoke' }))).toEqual([
      expect.stringMatching(new RegExp(`^${file}:${lineOf(text, 'clients: [-8]')}:\\d+: experiments\\.redis-zadd\\.grid\\.clients: -8 is out of range`)),
    ]);
    expect(
      strict({ set: ['experiments.memcache.grid.threads=[1,2]', 'experiments.memcache.grid.set_get=["0:1"]'] }).profile.experiments.memcache!.grid.threads,
    ).toEqual([1, 2]);
  });

  it('reports every problem at once', () => {
    const p = problems(() =>
      strict({
        set: ['experiments.memcache.variants=[nosuch]', 'experiments.memcache.grid.threads=[-1]', 'kernel.fragments=[nosuch]'],
        sources: ['kflex=/nonexistent'],
      }),
    );
    expect(p).toHaveLength(4);
  });
});
