import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { loadConfig, DEFAULT_CONFIG } from '../../core/config.js';
import { ConfigError } from '../../core/errors.js';
import { writeConfig } from '../helpers.js';

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
    expect(paper.profile.sources.kernel).toEqual({ kind: 'git', url: 'https://github.com/rs3lab/KFlex-linux', commit: 'a6d01774811c6a8ce2f31abd7e06e4a9066ef37b' });
    const smoke = loadConfig({ profile: 'smoke', env: {} });
    expect(smoke.profile.sources.kernel).toEqual({ kind: 'debian-package', package: 'linux-source-6.1' });
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
    expect(base.replace('      size_mb: 2048\n', '      size_mb: 2048\n      sise_mb: 3\n').split('\n')[line - 1]).toMatch(/^      size_mb: 2048$/);
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
    expect(problems(() => loadConfig({ file: noSrc, env: {} }))[0]).toMatch(/kernel\.source: names source 'kernal', which profiles\.paper\.sources does not define; known: kflex, kernel, llvm, memtier/);
  });

  it('checks git sources are pinned', () => {
    const file = writeConfig(base.replace('ref: 2.1.1 }', 'url2: x }'));
    const p = problems(() => loadConfig({ file, env: {} }));
    expect(p.join('\n')).toMatch(/sources\.memtier: unknown field\(s\) url2/);
    const file2 = writeConfig(base.replace(', commit: 567387bc78715fed2f7f8fe314710c817335295e }', ' }'));
    expect(problems(() => loadConfig({ file: file2, env: {} })).join('\n')).toMatch(/sources\.kflex: a git source needs `commit`/);
  });

  it('applies --set, KFLEX_LAB__ environment and --source overrides, and names them in errors', () => {
    const c = loadConfig({ profile: 'smoke', set: ['vms.server.memory_mb=4096', 'vms.link.backend=socket'], sources: ['kflex=/src/KFlex'], env: { KFLEX_LAB__VMS__CLIENT__CPUS: '2' } });
    expect(c.profile.vms.server.memory_mb).toBe(4096);
    expect(c.profile.vms.client.cpus).toBe(2);
    expect(c.profile.vms.link.backend).toBe('socket');
    expect(c.profile.sources.kflex).toEqual({ kind: 'path', path: '/src/KFlex' });
    expect(c.overrides).toMatchObject({ 'vms.server.memory_mb': '--set vms.server.memory_mb=4096', 'vms.client.cpus': 'environment KFLEX_LAB__VMS__CLIENT__CPUS', 'sources.kflex': '--source kflex=/src/KFlex' });
    expect(problems(() => loadConfig({ set: ['vms.server.cpus=0'], env: {} }))).toEqual(['--set vms.server.cpus=0: vms.server.cpus: must be greater than or equal to 1']);
    expect(problems(() => loadConfig({ set: ['novalue'], env: {} }))[0]).toMatch(/--set novalue: expected key\.path=value/);
    expect(problems(() => loadConfig({ sources: ['linux=/x'], env: {} }))[0]).toMatch(/--source linux=\/x: profile paper has no source named linux; known: kflex, kernel, llvm, memtier/);
  });

  it('takes the cache root from KFLEX_LAB_CACHE', () => {
    expect(loadConfig({ env: { KFLEX_LAB_CACHE: '/tmp/kc' } }).cacheRoot).toBe('/tmp/kc');
    expect(loadConfig({ env: { HOME: '/h' } }).cacheRoot).toMatch(/kflex-lab$/);
  });
});
