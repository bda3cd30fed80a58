import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join, basename, dirname, resolve } from 'node:path';
import type { ResolvedConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import type { TestbedProvider } from '../core/testbed.js';
import { kvmProbe } from '../core/host-probe.js';
import { VmTestbed } from '../vm/testbed.js';
import { TESTBED_TARGETS } from './stages.js';
import { hostsProvider } from '../hosts/testbed.js';
import { hostsYamlOf, validateHosts } from '../hosts/config.js';

export type { TestbedContext, TestbedProvider } from '../core/testbed.js';

const vmProvider: TestbedProvider = {
  kind: 'vm',
  targets: TESTBED_TARGETS,
  async accel(config, artifacts) {
    const wanted = config.profile.vms.accel;
    if (wanted !== 'auto') return { accel: wanted, why: `vms.accel is ${wanted}` };
    // Boot the kernel the VMs will run under KVM: /dev/kvm can open on nested hosts where no Linux guest starts.
    // The answer is cached until the host reboots or QEMU or the kernel changes (core/host-probe.ts).
    const k = await kvmProbe(config.cacheRoot, artifacts.kernel);
    return k.ok ? { accel: 'kvm', why: k.why } : { accel: 'tcg', why: `${k.why}; TCG numbers are functional only` };
  },
  async up(ctx) {
    const { kernel, baseImage, probeObject } = ctx.artifacts;
    if (!kernel || !baseImage) throw new Error('the VM testbed needs the kernel and image stages');
    const p = ctx.config.profile;
    // The accelerator was decided once, before the preamble: the cluster must not probe again.
    const profile = { ...p, vms: { ...p.vms, accel: ctx.accel === 'native' ? 'tcg' : ctx.accel } } as typeof p;
    return VmTestbed.up({ kernel, baseImage, probeObject, profile, cacheRoot: ctx.config.cacheRoot, dir: ctx.dir, owner: ctx.owner, bus: ctx.bus });
  },
};

/** Every kind of testbed the lab can run on; a new kind is one folder plus one line here. */
export const TESTBEDS: Record<string, TestbedProvider> = { vm: vmProvider, hosts: hostsProvider };

/** The VM directory of a run: its VMs are private to it and named after it. */
export function runVmDir(config: ResolvedConfig, runDir: string): string {
  return join(config.cacheRoot, 'vms', basename(runDir));
}

/** The testbed a command runs on, and where that was decided. */
export interface TestbedChoice {
  kind: 'vm' | 'hosts';
  /** hosts.yaml for the hosts testbed (a profile's inline hosts are written to one in the cache). */
  file?: string;
  /** `--testbed FILE`, the profile's lab.yaml line (or the override), or 'default'. */
  origin: string;
}

/**
 * The override order: `--testbed FILE` on the command line, else the profile's `testbed:` section (lab.yaml,
 * then --set / KFLEX_LAB__TESTBED__*), else the lab's VMs. A profile's file must exist now: the error names
 * the lab.yaml line that asked for it and how to make it.
 */
export function chooseTestbed(config: ResolvedConfig, cliFile?: string): TestbedChoice {
  if (cliFile) return { kind: 'hosts', file: resolve(cliFile), origin: `--testbed ${cliFile}` };
  const t = config.profile.testbed;
  const origin = config.testbedOrigin ?? 'default';
  if (t?.kind !== 'hosts') return { kind: 'vm', origin };
  if (t.file) {
    const file = resolve(t.file.replace(/^~(?=\/|$)/, homedir()));
    if (!existsSync(file))
      throw new ConfigError([
        `${origin}: testbed.file: no file ${file} (profile ${config.profileName}; relative to the working directory); ` +
          `write it with 'kflex-lab hosts from-manifest manifest.xml > ${t.file}' here, or pass --testbed FILE, or --set testbed.file=PATH`,
      ]);
    return { kind: 'hosts', file, origin };
  }
  return { kind: 'hosts', file: inlineHostsFile(config), origin };
}

/** A profile's inline hosts as a hosts.yaml in the cache (named by its content), for the testbed and its reaper. */
function inlineHostsFile(config: ResolvedConfig): string {
  const r = validateHosts(config.profile.testbed?.kind === 'hosts' ? config.profile.testbed.hosts : undefined, {
    file: config.file,
    baseDir: dirname(config.file),
    where: () => config.testbedOrigin ?? config.file,
    prefix: 'testbed.hosts',
  });
  if (!r.config) throw new ConfigError(r.problems);
  const text = `# profile ${config.profileName}'s testbed.hosts (${config.testbedOrigin ?? config.file}), written by kflex-lab\n${hostsYamlOf(r.config)}`;
  const file = join(config.cacheRoot, 'testbeds', `${config.profileName}-${createHash('sha256').update(text).digest('hex').slice(0, 12)}.hosts.yaml`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}
