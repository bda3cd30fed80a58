import type { Host } from './host.js';
import type { ResolvedConfig } from './config.js';
import type { EventBus } from './events.js';
import type { Accel } from './accel.js';
import type { XdpCheckResult } from './xdp-check.js';

/** What the experiments know of the link between the two machines. */
export interface LinkFacts {
  /** The server's interface on the experiment link (XDP attaches here). */
  serverIf: string;
  serverIp: string;
  clientIp: string;
  /** Native (driver-mode) XDP verified on serverIf by attaching the lab's probe and counting packets. */
  nativeXdp: boolean;
  /** How it was verified, for the manifest (mode, packets sent and counted, warnings), or why it was refused. */
  xdpCheck?: Partial<XdpCheckResult> & { refused?: string };
  /** One line for the preamble and the manifest, e.g. "tap (2 queues, vhost-net)". */
  describe: string;
}

/**
 * Two machines joined by a link, ready for the experiments: the lab's VMs, or hosts reached over SSH.
 * The experiments and the report see only this.
 */
export interface Testbed {
  readonly kind: string;
  readonly server: Host;
  readonly client: Host;
  readonly link: LinkFacts;
  readonly accel: Accel;
  /** What the server offers in RAM and CPUs, for the heap checks. */
  readonly serverMemoryMb: number;
  readonly serverCpus: number;
  /** Facts for the run's manifest (QEMU, link backend, hosts' kernels...). */
  readonly facts: Record<string, unknown>;
  /** undefined while both machines answer; otherwise why the testbed is gone, in words (which machine, what happened). */
  health(): Promise<string | undefined>;
  /** Leave nothing running. Idempotent. */
  down(): Promise<void>;
  /** Raw logs worth keeping in the run directory (name -> path), e.g. serial consoles. */
  logs(): Record<string, string>;
}

/** What a testbed provider gets to bring its machines up for one run (or for `up`). */
export interface TestbedContext {
  config: ResolvedConfig;
  /** The files the stages produced that a testbed needs (typed, from each stage's outputs). */
  artifacts: TestbedArtifacts;
  accel: Accel;
  /** Where its private state lives (VM dirs under the cache). */
  dir: string;
  /** 'run': nothing may outlive the lab process; 'up': stays until `down`. */
  owner: 'up' | 'run';
  bus: EventBus;
  /** The testbed's own description file, e.g. hosts.yaml for the hosts testbed. */
  testbedFile?: string;
}

/** A kind of testbed: which stages it needs, which accelerator it will run on, and how it comes up. */
export interface TestbedProvider {
  readonly kind: string;
  readonly targets: string[];
  /** The local doctor checks that must pass for this testbed (by name); undefined: all (the VMs need QEMU, RAM...). */
  readonly doctor?: string[];
  accel(config: ResolvedConfig, artifacts: TestbedArtifacts): Promise<{ accel: Accel; why: string }>;
  up(ctx: TestbedContext): Promise<Testbed>;
}

/** Stage products a testbed uses: the XDP probe always; the kernel and base image when it boots VMs. */
export interface TestbedArtifacts {
  probeObject: string;
  /** Every BPF object the llvm stage built (the XDP probe, the mechanism probes ...), by file name. */
  bpfObjects: Record<string, string>;
  kernel?: string;
  baseImage?: string;
}
