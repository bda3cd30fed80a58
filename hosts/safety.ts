import type { HostFacts, IfAddr } from './facts.js';

/**
 * The refusals that keep the lab from damaging a user's machines. Each is pure (facts in, reason out) so a
 * unit test can show it refuses; the testbed and `hosts check` call them before anything is attached.
 */

/** Two destinations that lead to one machine would make the "link" a loopback and the numbers meaningless. */
export function sameMachineRefusal(
  server: Pick<HostFacts, 'machineId' | 'bootId' | 'hostname'>,
  client: Pick<HostFacts, 'machineId' | 'bootId' | 'hostname'>,
): string | undefined {
  if (server.machineId && server.machineId === client.machineId)
    return (
      `server and client are the same machine (both report /etc/machine-id ${server.machineId}, host name ${server.hostname}); ` +
      `point client.destination at the other machine. ` +
      `(A cloned machine that kept its machine-id: give it its own with 'rm /etc/machine-id && systemd-machine-id-setup'.)`
    );
  // Containers on one kernel share the boot id even when their machine-ids differ: one NIC, one kernel.
  if (server.bootId && server.bootId === client.bootId)
    return (
      `server and client run on the same kernel (both report boot_id ${server.bootId}): ` +
      `two containers or namespaces of one machine are not a testbed; use two machines`
    );
  return undefined;
}

/**
 * The interfaces that carry this SSH session: the one holding $SSH_CONNECTION's server address, and the one
 * the kernel routes replies to the SSH client through (they differ with asymmetric routing).
 */
export function sshInterfaces(f: Pick<HostFacts, 'ssh' | 'sshRouteDev' | 'interfaces'>): string[] {
  const out = new Set<string>();
  if (f.ssh) for (const i of f.interfaces) if (i.addrs.some((a) => a.local === f.ssh!.serverIp)) out.add(i.ifname);
  if (f.sshRouteDev) out.add(f.sshRouteDev);
  return [...out];
}

/** XDP attached to the NIC that carries the SSH session can cut the lab (and the user) off the machine. */
export function sshInterfaceRefusal(f: Pick<HostFacts, 'role' | 'destination' | 'ssh' | 'sshRouteDev' | 'interfaces' | 'linkIf'>): string | undefined {
  if (!f.ssh)
    return (
      `cannot tell which interface carries the SSH session on the ${f.role} (${f.destination}): $SSH_CONNECTION is empty there; ` +
      `the lab will not attach XDP without knowing (is the login shell resetting the environment?)`
    );
  const ifs = sshInterfaces(f);
  if (ifs.includes(f.linkIf))
    return (
      `${f.role}.link.interface ${f.linkIf} carries this SSH session (${f.ssh.serverIp}:${f.ssh.serverPort} from ${f.ssh.clientIp}); ` +
      `attaching XDP there can cut the lab off the machine. Use a second NIC for the experiment link, ` +
      `or reach the ${f.role} through another interface (e.g. a management network or ProxyJump)`
    );
  return undefined;
}

/** The configured link NIC must exist; the lab touches no other interface. */
export function linkInterfaceRefusal(f: Pick<HostFacts, 'role' | 'destination' | 'interfaces' | 'linkIf' | 'linkError'>): string | undefined {
  if (f.interfaces.some((i) => i.ifname === f.linkIf)) return undefined;
  const names = f.interfaces.map((i) => i.ifname).filter((n) => n !== 'lo');
  return (
    `${f.role}.link.interface: ${f.linkIf} does not exist on ${f.destination}${f.linkError ? ` (ip: ${f.linkError.split('\n')[0]})` : ''}` +
    `; its interfaces: ${names.join(', ') || 'none'}`
  );
}

/**
 * The link NIC named by its MAC (hosts.yaml `mac:`, e.g. from a CloudLab manifest), among the host's
 * interfaces (`ip -j link`); a configured `interface:` must be that same NIC.
 */
export function linkByMac(
  ifs: IfAddr[],
  o: { role: string; destination: string; mac: string; configuredIf?: string },
): { ifname: string; refusal?: undefined } | { ifname?: undefined; refusal: string } {
  const hits = ifs.filter((i) => i.mac?.toLowerCase() === o.mac && i.ifname !== 'lo');
  const seen = ifs
    .filter((i) => i.ifname !== 'lo')
    .map((i) => `${i.ifname} ${i.mac ?? '?'}`)
    .join(', ');
  if (!hits.length) return { refusal: `${o.role}.link.mac: no interface on ${o.destination} has MAC ${o.mac}; its interfaces: ${seen || 'none'}` };
  // A bond or VLAN can share its parent's MAC: only an unambiguous match names the NIC.
  const physical = hits.length > 1 ? hits.filter((i) => !/[.@]/.test(i.ifname)) : hits;
  if (physical.length !== 1)
    return { refusal: `${o.role}.link.mac: ${hits.map((i) => i.ifname).join(', ')} on ${o.destination} all have MAC ${o.mac}; name the NIC with interface:` };
  const ifname = physical[0]!.ifname;
  if (o.configuredIf && o.configuredIf !== ifname)
    return { refusal: `${o.role}.link: interface ${o.configuredIf} and mac ${o.mac} disagree: on ${o.destination} that MAC is ${ifname}; fix one of them` };
  return { ifname };
}

/** A configured address must be on the link NIC; a missing one is discovered there. */
export function linkAddress(f: Pick<HostFacts, 'role' | 'interfaces' | 'linkIf'>, configured: string | undefined): { address?: string; refusal?: string } {
  const nic = f.interfaces.find((i) => i.ifname === f.linkIf);
  const v4 = (nic?.addrs ?? []).filter((a) => a.family === 'inet').map((a) => a.local);
  if (configured) {
    if (v4.includes(configured)) return { address: configured };
    const elsewhere = f.interfaces.find((i: IfAddr) => i.addrs.some((a) => a.local === configured));
    return {
      refusal:
        `${f.role}.link.address: ${configured} is not on ${f.linkIf}${elsewhere ? ` but on ${elsewhere.ifname}` : ''}` +
        `; ${f.linkIf} has ${v4.join(', ') || 'no IPv4 address'}`,
    };
  }
  if (v4[0]) return { address: v4[0] };
  return {
    refusal:
      `${f.role}.link.interface ${f.linkIf} has no IPv4 address to discover; ` +
      `give it one (ip addr add 10.0.0.X/24 dev ${f.linkIf}) or set ${f.role}.link.address`,
  };
}

/** The client must reach the server's link address through its own link NIC, else the experiments measure another network. */
export function clientRouteRefusal(clientLinkIf: string, routeDev: string | undefined, serverIp: string): string | undefined {
  if (!routeDev) return `the client has no route to the server's link address ${serverIp}`;
  if (routeDev !== clientLinkIf)
    return (
      `the client reaches the server's link address ${serverIp} through ${routeDev}, not its link NIC ${clientLinkIf}: ` +
      `the experiments would not cross the link; put both link NICs in one subnet (or fix the client's routes)`
    );
  return undefined;
}

/** An XDP program someone else attached to the link NIC would be replaced by the lab's: refuse instead. */
export function foreignXdpRefusal(f: Pick<HostFacts, 'linkIf' | 'linkXdp' | 'role'>): string | undefined {
  if (!f.linkXdp?.attached) return undefined;
  return (
    `an XDP program${f.linkXdp.progId ? ` (id ${f.linkXdp.progId})` : ''} is already attached to the ${f.role}'s ${f.linkIf}; the lab would replace it. ` +
    `Detach it first (ip link set dev ${f.linkIf} xdp off) if it is not needed`
  );
}

/** XDP, BPF maps and the servers' ports need root: directly, or through passwordless sudo. */
export function rootRefusal(role: string, loginUid: number, sudo: boolean, sudoUid: number | undefined, sudoError?: string): string | undefined {
  if (sudo)
    return sudoUid === 0
      ? undefined
      : `${role}: sudo -n does not give root (${sudoError?.trim().split('\n').at(-1) ?? `uid ${sudoUid}`}); ` +
          `allow passwordless sudo for the login user, or log in as root and set sudo: false`;
  return loginUid === 0 ? undefined : `${role}: the login user is uid ${loginUid}, not root; set ${role}.sudo: true (passwordless sudo) or log in as root`;
}
