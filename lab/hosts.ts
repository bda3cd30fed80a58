import type { ResolvedConfig } from '../core/config.js';
import { EventBus, recordEvents } from '../core/events.js';
import { attachView } from '../core/progress.js';
import { plan } from '../core/runner.js';
import { loadHostsConfig, hostName } from '../hosts/config.js';
import { checkHosts, profileHeaps } from '../hosts/check.js';
import { prepareHosts as prepareOnHosts, undoPrepare as undoOnHosts, readRecord, recordPath, type KflexSource } from '../hosts/prepare.js';
import { EXPERIMENTS } from '../experiments/index.js';
import { buildTargets, stageRegistry } from './stages.js';
import { chooseTestbed } from './testbeds.js';
import { LabError, ExitCode } from '../core/errors.js';
import { llvmOutputs } from '../llvm/stage.js';
import { kflexOutputs } from '../images/kflex.js';

/** The hosts file a hosts verb works on: `--testbed FILE`, else the profile's `testbed:` section. */
export function hostsFileFor(config: ResolvedConfig, file?: string): string {
  const t = chooseTestbed(config, file);
  if (t.kind !== 'hosts' || !t.file)
    throw new LabError(
      `profile ${config.profileName} runs on the lab's VMs: the hosts verbs need two machines of yours`,
      ExitCode.usage,
      'pass --testbed hosts.yaml, or a profile with a testbed: { kind: hosts } section (e.g. --profile paper-cloudlab)',
    );
  return t.file;
}

/** The kflex stage's build, when this profile has one and it is in the cache (prepare never builds KFlex). */
async function kflexSource(config: ResolvedConfig, bus: EventBus): Promise<KflexSource> {
  const suite = config.profile.image.suite;
  if (!config.profile.image.kflex)
    return {
      suite,
      why:
        `profile ${config.profileName} builds no KFlex user space (image.kflex: false); with ` +
        `--profile paper, 'kflex-lab build kflex --profile paper' builds it for Debian ${suite}, ` +
        `then run prepare again`,
    };
  const planned = await plan(stageRegistry(config), ['kflex'], config, config.cacheRoot);
  if (!planned.find((p) => p.stage.id === 'kflex')?.cached)
    return {
      suite,
      why:
        `the kflex stage is not built yet: run 'kflex-lab build kflex --profile ` +
        `${config.profileName}' first (it builds for Debian ${suite}), then prepare again`,
    };
  const out = await buildTargets(config, ['kflex'], bus);
  return { suite, dir: kflexOutputs(out.kflex!).dir };
}

/** `hosts check`: the read-only doctor over SSH, with the lab's XDP probe from the llvm stage. */
export async function hostsCheck(config: ResolvedConfig, file: string | undefined, o: { eventsFile?: string } = {}) {
  const cfg = loadHostsConfig(hostsFileFor(config, file));
  const bus = new EventBus();
  const detach = [attachView(bus), ...(o.eventsFile ? [recordEvents(bus, o.eventsFile)] : [])];
  try {
    const outputs = await buildTargets(config, ['llvm'], bus);
    return await checkHosts(cfg, {
      probeObject: llvmOutputs(outputs.llvm!).probeObject,
      profile: config.profile,
      heaps: profileHeaps(config.profile, EXPERIMENTS),
      log: (m) => bus.emit({ type: 'step', scope: 'hosts', message: m }),
    });
  } finally {
    for (const d of detach) d();
  }
}

/** What `hosts prepare` installed on each host, from its records. */
export function hostsPrepared(config: ResolvedConfig, file: string | undefined) {
  const cfg = loadHostsConfig(hostsFileFor(config, file));
  return (['server', 'client'] as const).map((role) => ({
    role,
    path: recordPath(config.cacheRoot, hostName(cfg[role])),
    ...readRecord(config.cacheRoot, hostName(cfg[role]), cfg[role].destination),
  }));
}

/** Remove what `hosts prepare` installed. */
export async function hostsUndo(config: ResolvedConfig, file: string | undefined, log: (l: string) => void) {
  return undoOnHosts(loadHostsConfig(hostsFileFor(config, file)), { cacheRoot: config.cacheRoot, log });
}

/** `hosts prepare`: install what is missing, copy the kflex stage's build where the host runs its suite. */
export async function hostsPrepare(config: ResolvedConfig, file: string | undefined, o: { dryRun?: boolean; log: (l: string) => void }) {
  const cfg = loadHostsConfig(hostsFileFor(config, file));
  const bus = new EventBus();
  const detach = attachView(bus);
  let kflex: KflexSource;
  try {
    kflex = await kflexSource(config, bus);
  } finally {
    detach();
  }
  return prepareOnHosts(cfg, { cacheRoot: config.cacheRoot, kflex, dryRun: o.dryRun, log: o.log });
}
