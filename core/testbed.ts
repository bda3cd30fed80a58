import type { Host } from './host.js';

/** What the experiments know of the link between the two machines. */
export interface LinkFacts {
  /** The server's interface on the experiment link (XDP attaches here). */
  serverIf: string;
  serverIp: string;
  clientIp: string;
  /** Native (driver-mode) XDP verified on serverIf by attaching the lab's probe and counting packets. */
  nativeXdp: boolean;
  /** How it was verified, for the manifest (mode, packets sent and counted, warnings). */
  xdpCheck?: unknown;
  /** One line for the preamble and the manifest, e.g. "tap (2 queues, vhost-net)". */
  describe: string;
}

/** The accelerator the machines really run on: 'native' for real hosts. */
export type Accel = 'kvm' | 'tcg' | 'native';

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
