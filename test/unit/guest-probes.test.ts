import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_PROBE_SCRIPT, CLIENT_PROBE_SCRIPT, parseProbeLines } from '../../experiments/requirements.js';
import { tempDir } from '../helpers.js';

const sh = (script: string, ...args: string[]) => parseProbeLines(spawnSync('sh', ['-c', script, 'probe', ...args], { encoding: 'utf8' }).stdout);

describe('the capability probe: one shell per guest', () => {
  it("finds each declared BTF name as a whole name in the BTF's string table, not as a prefix, and each declared program", () => {
    const d = tempDir();
    // A BTF string table is NUL-separated names; these bytes were assembled for the test.
    writeFileSync(join(d, 'kflex'), Buffer.from('\0bpf_map_type\0BPF_MAP_TYPE_HASH\0BPF_MAP_TYPE_HEAP\0bpf_arena_alloc_pages\0task_struct\0'));
    writeFileSync(join(d, 'mainline'), Buffer.from('\0BPF_MAP_TYPE_HASH\0BPF_MAP_TYPE_HEAPS\0'));
    const ffkx = join(d, 'ffkx');
    writeFileSync(ffkx, '#!/bin/sh\n', { mode: 0o755 });
    const words = ['btf:BPF_MAP_TYPE_HEAP', 'btf:bpf_arena_alloc_pages', `prog:${ffkx}`, 'prog:sh'];
    const k = sh(SERVER_PROBE_SCRIPT, 'lo', join(d, 'kflex'), ...words);
    expect(k).toMatchObject({ 'btf:BPF_MAP_TYPE_HEAP': 'yes', 'btf:bpf_arena_alloc_pages': 'yes', [`prog:${ffkx}`]: 'yes', 'prog:sh': 'yes', ifindex: '1' });
    expect(k.release).toBe(spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim());
    expect(k.la57).toMatch(/^(yes|no)$/);
    expect(sh(SERVER_PROBE_SCRIPT, 'lo', join(d, 'mainline'), 'btf:BPF_MAP_TYPE_HEAP', `prog:${join(d, 'none')}`)).toMatchObject({
      'btf:BPF_MAP_TYPE_HEAP': 'no',
      [`prog:${join(d, 'none')}`]: 'no',
    });
    const none = sh(SERVER_PROBE_SCRIPT, 'lo', join(d, 'absent'), 'btf:BPF_MAP_TYPE_HEAP');
    expect(none.btf).toBe('none');
    expect(none['btf:BPF_MAP_TYPE_HEAP']).toBeUndefined();
  });

  it('asks the client for each declared program, and says it answered', () => {
    const c = sh(CLIENT_PROBE_SCRIPT, 'prog:memtier_benchmark', 'prog:sh');
    expect(c.probe).toBe('client');
    expect(c['prog:memtier_benchmark']).toMatch(/^(yes|no)$/);
    expect(c['prog:sh']).toBe('yes');
    expect(parseProbeLines('noise\nprog:/opt/kflex/ffkx=no\nrelease=6.1.0 \n')).toEqual({ 'prog:/opt/kflex/ffkx': 'no', release: '6.1.0' });
  });
});
