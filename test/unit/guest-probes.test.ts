import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_PROBE_SCRIPT, CLIENT_PROBE_SCRIPT, parseProbeLines } from '../../experiments/runner.js';
import { tempDir } from '../helpers.js';

const sh = (script: string, ...args: string[]) => parseProbeLines(spawnSync('sh', ['-c', script, 'probe', ...args], { encoding: 'utf8' }).stdout);

describe('the capability probe: one shell per guest', () => {
  it("finds the KFlex heap map type as a whole name in the BTF's string table, not as a prefix", () => {
    const d = tempDir();
    // A BTF string table is NUL-separated names; these bytes were assembled for the test.
    writeFileSync(join(d, 'kflex'), Buffer.from('\0bpf_map_type\0BPF_MAP_TYPE_HASH\0BPF_MAP_TYPE_HEAP\0task_struct\0'));
    writeFileSync(join(d, 'mainline'), Buffer.from('\0BPF_MAP_TYPE_HASH\0BPF_MAP_TYPE_HEAPS\0'));
    const ffkx = join(d, 'ffkx');
    writeFileSync(ffkx, '#!/bin/sh\n', { mode: 0o755 });
    const k = sh(SERVER_PROBE_SCRIPT, ffkx, 'lo', join(d, 'kflex'));
    expect(k).toMatchObject({ heap: '1', ffkx: 'yes', ifindex: '1' });
    expect(k.release).toBe(spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim());
    expect(k.la57).toMatch(/^(yes|no)$/);
    expect(sh(SERVER_PROBE_SCRIPT, join(d, 'none'), 'lo', join(d, 'mainline'))).toMatchObject({ heap: '0', ffkx: 'no' });
    expect(sh(SERVER_PROBE_SCRIPT, ffkx, 'lo', join(d, 'absent')).heap).toBe('nobtf');
  });

  it('asks the client whether memtier_benchmark is installed', () => {
    expect(sh(CLIENT_PROBE_SCRIPT).memtier).toMatch(/^(yes|no)$/);
    expect(parseProbeLines('noise\nmemtier=no\nrelease=6.1.0 \n')).toEqual({ memtier: 'no', release: '6.1.0' });
  });
});
