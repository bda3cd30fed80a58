import type { ResolvedConfig } from '../core/config.js';
import type { Stage, StageOutput } from '../core/stage.js';
import type { TestbedArtifacts } from '../core/testbed.js';
import type { EventBus } from '../core/events.js';
import { plan, buildStages } from '../core/runner.js';
import { LlvmStage, llvmOutputs } from '../llvm/stage.js';
import { KernelStage, kernelOutputs } from '../kernel/stage.js';
import { ImageStage, imageOutputs } from '../images/stage.js';
import { KflexStage } from '../images/kflex.js';
import { BmcStage } from '../images/bmc.js';
import { ArenaStage } from '../images/arena.js';
import { KernelDebStage } from '../kernel/deb.js';

/**
 * The stage graph for a profile: the one place that knows every stage. `onDemand` adds the stages built
 * only when named (kernel-deb, by `build kernel --deb`), never by `build all` or a run.
 */
export function stageRegistry(config: ResolvedConfig, o: { onDemand?: boolean } = {}): Map<string, Stage> {
  const withKflex = config.profile.image.kflex;
  // Payload stages: their output is copied into the guest by the image stage (images/stage.ts guestPayload).
  const payloads: Stage[] = [...(config.profile.image.bmc ? [new BmcStage()] : []), ...(config.profile.image.arena ? [new ArenaStage()] : [])];
  const stages: Stage[] = [
    new LlvmStage(),
    new KernelStage(),
    ...(withKflex ? [new KflexStage()] : []),
    ...payloads,
    new ImageStage(
      withKflex,
      payloads.map((s) => s.id),
    ),
    ...(o.onDemand ? [new KernelDebStage()] : []),
  ];
  return new Map(stages.map((s) => [s.id, s]));
}

/** What a testbed of VMs needs: the probe object, the kernel and the image (and what they depend on). */
export const TESTBED_TARGETS = ['llvm', 'kernel', 'image'];

/** Build targets and their dependencies (cached ones are reused), reporting on the run's one bus. */
export async function buildTargets(config: ResolvedConfig, targets: string[], bus: EventBus, force: string[] = []): Promise<Record<string, StageOutput>> {
  const planned = await plan(stageRegistry(config, { onDemand: true }), targets, config, config.cacheRoot);
  return buildStages(planned, config, config.cacheRoot, bus, { force });
}

/** What the testbeds use of the stages' typed outputs (the llvm stage always runs: it builds the probe). */
export function testbedArtifacts(outputs: Record<string, StageOutput>): TestbedArtifacts {
  if (!outputs.llvm) throw new Error('stage llvm did not run (it builds the XDP probe)');
  return {
    probeObject: llvmOutputs(outputs.llvm).probeObject,
    bpfObjects: llvmOutputs(outputs.llvm).mechanismObjects,
    kernel: outputs.kernel ? kernelOutputs(outputs.kernel).bzImage : undefined,
    baseImage: outputs.image ? imageOutputs(outputs.image).baseImage : undefined,
  };
}
