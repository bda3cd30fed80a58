/** The link backend interface (vm/link/index.ts holds the registry): a leaf, so backends import no registry. */

/** Which VM a link NIC belongs to (vm/spec.ts re-exports it). */
export type VmRole = 'server' | 'client';

/** Whether this host can use a backend: `why` either way (shown by `up` and the doctor), `fix` when not. */
export type Availability<O = unknown> = { ok: true; why: string; options: O } | { ok: false; why: string; fix: string };

/** What every backend's plan gets: names unique to the VM dir, sizes, and a loopback port chosen for it. */
export interface LinkPlanInputs {
  /** Short, unique to this lab process: goes into interface and namespace names (IFNAMSIZ is 15). */
  tag: string;
  /** The larger vCPU count of the two VMs (multiqueue backends give each vCPU a queue pair). */
  cpus: number;
  mtu: number;
  /** A free TCP port on 127.0.0.1 (backends that need none ignore it). */
  port: number;
}

/** One VM's link netdev: QEMU's `-netdev TYPE,id=...,OPTIONS`, and its queue count (the NIC's vectors follow it). */
export interface Netdev {
  type: string;
  options: string[];
  queues: number;
}

export interface LinkBackend<S extends { backend: string }, O = unknown> {
  readonly id: S['backend'];
  /** Reads the host (no side effects). */
  availability(): Availability<O>;
  /** Pure: the state to persist in state.json, from the plan's inputs and the options availability gave. */
  plan(p: LinkPlanInputs, options: O): S;
  /** Pure: the netdev of role's link NIC. */
  netdev(s: S, role: VmRole): Netdev;
  /** Host-side resources, made before QEMU starts. */
  setup(s: S, log: (line: string) => void): Promise<void>;
  /** Removes what setup made; must succeed on a half-made link and when run twice. */
  teardown(s: S): Promise<void>;
  /** Prefix for host commands that must live where the link is (QEMU, and ssh to the forwarded ports). */
  hostWrapper(s: S): string[];
  /** ssh_config ProxyCommand for the same reason (undefined: connect directly). */
  sshProxyCommand(s: S): string | undefined;
  /** For the manifest and `up`, e.g. `tap (2 queues, vhost-net)`. */
  describe(s: S): string;
  /** Host-side resources the link holds until teardown, for `status`, e.g. `netns kflexlab-123`. */
  hostResources(s: S): string[];
}
