import { describe, it, expect } from 'vitest';
import { golden } from './support/golden.js';
import { loadConfig } from '../../core/config.js';
import { planCluster } from '../../vm/cluster.js';
import { qemuArgv } from '../../vm/spec.js';
import { fixedMemoryMb } from '../../core/config.js';
import { planCells } from '../../experiments/cells.js';
import { EXPERIMENTS } from '../../experiments/index.js';
import { forecast, parseAssumeHost } from '../../lab/sizing.js';
import { forecastText, kflexText } from '../../cli/plan.js';
import { kflexPlan } from '../../lab/plan.js';

/** Both VMs' QEMU command lines for a profile, from fixed host facts (no host is read). */
function clusterArgv(profile: string, host: { kvm: boolean; tap: boolean }): string {
  const c = loadConfig({ profile, env: {} });
  const vms = { ...c.profile.vms, server: { ...c.profile.vms.server, memory_mb: fixedMemoryMb(c.profile.vms.server.memory_mb, 16384) } };
  const plan = planCluster({
    kernel: '/cache/kernel/FP/bzImage',
    dir: '/cache/vms/default',
    vms,
    owner: 'run',
    labPid: 4242,
    created: '2026-12-02T00:00:00.000Z',
    host: {
      kvm: { ok: host.kvm, why: host.kvm ? 'a Linux guest ran under KVM' : 'qemu -accel kvm fails' },
      links: {
        tap: host.tap ? { ok: true, why: 'tap with vhost-net', options: { vhost: true } } : { ok: false, why: 'not root', fix: 'run as root' },
        socket: { ok: true, why: "QEMU's socket netdev needs no privileges", options: {} },
      },
    },
    ports: { server: 2222, client: 2223, link: 40000 },
  });
  return (['server', 'client'] as const).map((r) => `# ${r}\n${qemuArgv(plan.specs[r]).join('\n')}\n`).join('\n');
}

describe('golden files: output that is a contract', () => {
  it('the QEMU argv of both VMs: smoke under TCG on the socket link, paper under KVM on the tap link', () => {
    golden('qemu-argv.smoke.txt', clusterArgv('smoke', { kvm: false, tap: false }));
    golden('qemu-argv.paper.txt', clusterArgv('paper', { kvm: true, tap: true }));
  });

  it('plan --assume-host for three hosts an evaluator might book', () => {
    for (const [profile, spec, name] of [
      ['paper', 'ram=256G,cpus=64,la57,kvm', 'plan.paper.256G-la57-kvm.txt'],
      ['paper-scaled', 'ram=64G,cpus=16,la57,kvm', 'plan.paper-scaled.64G-la57-kvm.txt'],
      // Bare metal (testbed: hosts): a CloudLab c6420 as hosts/cloudlab.ts describes it, 384 GB, 64 threads, no LA57.
      ['paper-cloudlab', 'ram=384G,cpus=64', 'plan.paper-cloudlab.384G-c6420.txt'],
    ] as const) {
      const c = loadConfig({ profile, env: {} });
      const host = parseAssumeHost(spec, { ramMb: 0, cpus: 0, la57: false, kvm: false, source: 'this host' });
      const cells = planCells(c.profile, {}, EXPERIMENTS);
      const f = forecast(c, cells, host);
      // plan's KFlex section (issue 23): each server's open files, the heap-free wait, the bench kfuncs, the link's queue pairs.
      const k = kflexPlan(c, cells, f.rows, f.caps);
      golden(name, `${forecastText({ host, server: f.server, cells: f.rows })}\n${k ? `\n${kflexText(k)}\n` : ''}`);
    }
  });
});
