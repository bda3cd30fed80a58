import type { ResolvedConfig } from '../core/config.js';
import type { Stage, StageOutput } from '../core/stage.js';
import type { EventBus } from '../core/events.js';
import { plan, buildStages } from '../core/runner.js';
import { LlvmStage } from '../llvm/stage.js';
import { KernelStage } from '../kernel/stage.js';
import { ImageStage } from '../images/stage.js';
import { KflexStage } from '../images/kflex.js';

/** The stage graph for a profile: the one place that knows every stage. */
export function stageRegistry(config: ResolvedConfig): Map<string, Stage> {
  const withKflex = config.profile.image.kflex;
  const stages: Stage[] = [new LlvmStage(), new KernelStage(), ...(withKflex ? [new KflexStage()] : []), new ImageStage(withKflex)];
  return new Map(stages.map((s) => [s.id, s]));
}

/** What a testbed of VMs needs: the probe object, the kernel and the image (and what they depend on). */
export const TESTBED_TARGETS = ['llvm', 'kernel', 'image'];

/** Build targets and their dependencies (cached ones are reused), reporting on the run's one bus. */
export async function buildTargets(config: ResolvedConfig, targets: string[], bus: EventBus, force: string[] = []): Promise<Record<string, StageOutput>> {
  const planned = await plan(stageRegistry(config), targets, config, config.cacheRoot);
  return buildStages(planned, config, config.cacheRoot, bus, { force });
}

/** Paths of the files a VM testbed boots from, out of the stage outputs. */
export function testbedFiles(outputs: Record<string, StageOutput>): { kernel: string; baseImage: string; probeObject: string } {
  const need = (id: string) => {
    const o = outputs[id];
    if (!o) throw new Error(`stage ${id} did not run`);
    return o;
  };
  return { kernel: `${need('kernel').dir}/bzImage`, baseImage: `${need('image').dir}/base.qcow2`, probeObject: `${need('llvm').dir}/xdp_probe.bpf.o` };
}
