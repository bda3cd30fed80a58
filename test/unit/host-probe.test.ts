import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cachedProbe, kvmProbeKey, pidAlive, HOST_PROBES_FILE } from '../../core/host-probe.js';
import { pidAlive as fromStage } from '../../core/stage.js';
import { tempDir } from '../helpers.js';

describe('host probes cached per boot', () => {
  it('keys the KVM verdict on the boot id, the QEMU binary and the kernel image', () => {
    const d = tempDir();
    writeFileSync(join(d, 'boot_id'), 'b5a1e7c0-0000-4000-8000-000000000001\n');
    mkdirSync(join(d, 'bin'));
    writeFileSync(join(d, 'bin', 'qemu-system-x86_64'), '#!/bin/sh\n');
    chmodSync(join(d, 'bin', 'qemu-system-x86_64'), 0o755);
    writeFileSync(join(d, 'bzImage'), 'kernel bytes');
    const key = kvmProbeKey(join(d, 'bzImage'), { bootIdFile: join(d, 'boot_id'), path: `/nonexistent:${join(d, 'bin')}` });
    expect(key.boot_id).toBe('b5a1e7c0-0000-4000-8000-000000000001');
    expect(key.qemu).toMatchObject({ path: join(d, 'bin', 'qemu-system-x86_64'), size: 10 });
    expect(key.kernel_sha256).toBe(createHash('sha256').update('kernel bytes').digest('hex'));
    // Another kernel (a rebuilt bzImage) is another key: the verdict is probed again.
    writeFileSync(join(d, 'bzImage'), 'other kernel');
    expect(kvmProbeKey(join(d, 'bzImage'), { bootIdFile: join(d, 'boot_id'), path: join(d, 'bin') })).not.toEqual(key);
    expect(kvmProbeKey(undefined, { bootIdFile: join(d, 'none'), path: '/nonexistent' })).toEqual({ boot_id: 'unknown', qemu: null, kernel_sha256: null });
  });

  it('runs a probe once per key and keeps the answers of several keys', async () => {
    const cache = tempDir();
    let runs = 0;
    const probe = async () => ({ ok: false, why: `run ${++runs}` });
    expect((await cachedProbe(cache, 'kvm', { k: 1 }, probe)).result.why).toBe('run 1');
    const again = await cachedProbe(cache, 'kvm', { k: 1 }, probe);
    expect(again.result.why).toBe('run 1');
    expect(again.cached?.probed_at).toMatch(/^\d{4}-/);
    expect((await cachedProbe(cache, 'kvm', { k: 2 }, probe)).result.why).toBe('run 2');
    expect((await cachedProbe(cache, 'kvm', { k: 1 }, probe)).result.why).toBe('run 1');
    expect(runs).toBe(2);
    const file = JSON.parse(readFileSync(join(cache, HOST_PROBES_FILE), 'utf8'));
    expect(file.kvm.map((r: { key: unknown }) => r.key)).toEqual([{ k: 2 }, { k: 1 }]);
    expect(existsSync(join(cache, `${HOST_PROBES_FILE}.tmp-${process.pid}`))).toBe(false);
  });

  it('pidAlive: a running process yes, a zombie no (a killed daemonized QEMU stays one), and core/stage.ts re-exports it', async () => {
    expect(pidAlive(process.pid)).toBe(true);
    expect(fromStage).toBe(pidAlive);
    // `sleep 0.1` becomes a zombie: its parent execs `sleep 5`, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number(await new Promise<string>((r) => parent.stdout!.once('data', (d: Buffer) => r(d.toString()))));
    expect(pidAlive(pid)).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
    expect(pidAlive(pid)).toBe(false);
    parent.kill('SIGKILL');
  });
});
