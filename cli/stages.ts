import type { ResolvedConfig } from '../core/config.js';
import type { Stage } from '../core/stage.js';
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

/** Everything the VMs and experiments need. */
export const ALL_TARGETS = ['llvm', 'kernel', 'image'];
