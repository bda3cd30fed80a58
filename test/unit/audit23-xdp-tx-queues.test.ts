import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNativeXdp } from '../../core/xdp-check.js';
import type { Host } from '../../core/host.js';
import { FIXTURES } from '../helpers.js';

/**
 * Issue 23 item 5: the kernel's own line reaches the 'XDP TX queues' deviation. The dmesg lines are ASSEMBLED
 * (no captured guest log holds the warning): virtio_net's virtnet_xdp_set() format string
 * "XDP request %i queues but max is %i. XDP_TX and XDP_REDIRECT will operate in a slower locked tx mode.\n"
 * (netdev_warn_once, so prefixed "virtio_net virtioN IF: "), with 8 vCPUs on 8 queue pairs (16 > 8).
 * The bpftool outputs are the captured fixtures vm-spec.test.ts reads.
 */
const LOCKED = 'virtio_net virtio1 eth1: XDP request 16 queues but max is 8. XDP_TX and XDP_REDIRECT will operate in a slower locked tx mode.';

function fakeLink(dmesgAfterAttach: string): { server: Host; client: Host } {
  const fx = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');
  const host = (name: string, exec: (argv: readonly string[]) => string): Host => ({
    name,
    exec: async (argv) => ({ code: 0, stdout: exec(argv), stderr: '' }),
    copyIn: async () => undefined,
    copyOut: async () => undefined,
  });
  const server = host('server', (argv) =>
    argv.includes('attach') ? `@@mode\n${fx('bpftool/net-show-driver.json')}\n@@dmesg\n${dmesgAfterAttach}\n` : fx('bpftool/map-dump-counts.json'),
  );
  return { server, client: host('client', () => '') };
}

describe('the XDP TX locked-mode warning, as virtio_net prints it (issue 23 item 5)', () => {
  const probe = join(mkdtempSync(join(tmpdir(), 'audit23-')), 'probe.o');
  writeFileSync(probe, 'not a real object');

  it("virtio_net's own warning line becomes the check's locked-mode warning", async () => {
    const { server, client } = fakeLink(`[    9.123456] ${LOCKED}`);
    const r = await checkNativeXdp({ server, client, serverIf: 'eth1', serverIp: '10.77.0.1' }, probe, { packets: 5, port: 7777 });
    expect(r.mode).toBe('driver');
    expect(r.counted).toBe(5);
    expect(r.warnings).toEqual(['fewer than 2 x vCPU queues: XDP_TX runs in the slower locked mode']);
  });

  it('no warning when the kernel printed none (enough queue pairs: 8 + 8 <= 16)', async () => {
    const { server, client } = fakeLink('');
    const r = await checkNativeXdp({ server, client, serverIf: 'eth1', serverIp: '10.77.0.1' }, probe, { packets: 5, port: 7777 });
    expect(r.warnings).toEqual([]);
  });
});
