/**
 * The experiment link between the server and client VMs, behind one interface. A backend decides whether
 * this host can use it (and why), plans the state a VM directory persists, makes and removes its host-side
 * resources, and names the QEMU netdev of each VM's link NIC. A new backend is one file in this folder
 * plus its entry in LINK_BACKENDS.
 */
import { LabError, ExitCode } from '../../core/errors.js';
import { tapLink } from './tap.js';
import { socketLink } from './socket.js';

export type { Availability, LinkPlanInputs, Netdev, LinkBackend } from './types.js';
import type { Availability, LinkBackend, LinkPlanInputs } from './types.js';

/** Every backend, in order of preference for `vms.link.backend: auto`. */
export const LINK_BACKENDS = [tapLink, socketLink] as const;

type StateOf<B> = B extends LinkBackend<infer S, infer _O> ? S : never;
/** What state.json records about the link: a union tagged by `backend`, one member per backend. */
export type LinkState = StateOf<(typeof LINK_BACKENDS)[number]>;
export type LinkBackendId = LinkState['backend'];
export type AnyLinkBackend = LinkBackend<LinkState, unknown>;

export function linkBackend(id: string): AnyLinkBackend | undefined {
  // The registry's entries are typed per backend; callers pair each with its own state (see linkBackendOf).
  return (LINK_BACKENDS as readonly unknown[]).find((b) => (b as AnyLinkBackend).id === id) as AnyLinkBackend | undefined;
}

/** The backend that made (or will make) this state. */
export function linkBackendOf(s: LinkState): AnyLinkBackend {
  const b = linkBackend(s.backend);
  if (!b)
    throw new LabError(
      `state.json: link.backend '${s.backend}' is not one of ` +
        `${LINK_BACKENDS.map((x) => x.id).join(', ')}; remove the VM directory by hand (stop its QEMUs first)`,
      ExitCode.infra,
    );
  return b;
}

export const describeLink = (s: LinkState): string => linkBackendOf(s).describe(s);
export const linkHostResources = (s: LinkState): string[] => linkBackendOf(s).hostResources(s);

export type LinkAvailability = Record<string, Availability>;

/** Ask every backend whether this host can use it. */
export function linkAvailability(): LinkAvailability {
  return Object.fromEntries(LINK_BACKENDS.map((b) => [b.id, (b as AnyLinkBackend).availability()]));
}

export interface LinkChoice {
  backend: LinkBackendId;
  /** Why this backend (and, under auto, why not the ones preferred to it). */
  why: string;
  /** The backend's own options from its availability (e.g. tap: vhost). */
  options: unknown;
}

/** Pure: the backend `vms.link.backend` asks for, or under auto the first one this host allows. */
export function chooseLink(wanted: string, avail: LinkAvailability): LinkChoice {
  const ids = LINK_BACKENDS.map((b) => b.id);
  const of = (id: string): Availability => avail[id] ?? { ok: false, why: 'not probed', fix: 'probe it with linkAvailability()' };
  if (wanted !== 'auto') {
    if (!ids.includes(wanted as LinkBackendId))
      throw new LabError(`vms.link.backend: '${wanted}' is not a link backend; allowed: auto, ${ids.join(', ')}`, ExitCode.usage);
    const a = of(wanted);
    if (!a.ok)
      throw new LabError(`vms.link.backend is ${wanted} but this host cannot use it: ${a.why}; ${a.fix}, or set vms.link.backend: auto`, ExitCode.infra);
    return { backend: wanted as LinkBackendId, why: `vms.link.backend: ${wanted}; ${a.why}`, options: a.options };
  }
  const refused: string[] = [];
  for (const id of ids) {
    const a = of(id);
    if (a.ok) return { backend: id, why: `auto: ${refused.length ? refused.join('; ') : a.why}`, options: a.options };
    refused.push(`${id} unavailable (${a.why})`);
  }
  throw new LabError(`no link backend works on this host: ${refused.join('; ')}`, ExitCode.infra);
}

/** Pure: the state of the chosen backend. */
export function planLink(choice: LinkChoice, p: LinkPlanInputs): LinkState {
  const b = linkBackend(choice.backend);
  if (!b) throw new Error(`planLink: no backend '${choice.backend}' (a LinkChoice comes from chooseLink)`);
  return b.plan(p, choice.options);
}

export { tapCapability, tapCapabilityFrom, readTapHostFacts, tapNames, tapSetupArgv, tapTeardownArgv, type TapLinkState, type TapHostFacts } from './tap.js';
export type { SocketLinkState } from './socket.js';
