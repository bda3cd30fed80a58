import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Document } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { normalizeMac, parseHostsConfig, type Role } from './config.js';

/**
 * `hosts from-manifest`: a GENI RSpec v3 manifest (what CloudLab shows on an experiment's Manifest tab)
 * into hosts.yaml. Each node's SSH destination and login come from its <services><login>; the link NIC is
 * named by its MAC (resolved on the host by `hosts check`) and its fixed address, from the <interface> on
 * the <link> that joins the server and the client.
 */

export interface ManifestLogin {
  hostname: string;
  port: number;
  username: string;
  authentication?: string;
}

export interface ManifestInterface {
  clientId: string;
  mac?: string;
  address?: string;
  netmask?: string;
}

export interface ManifestNode {
  clientId: string;
  hardwareType?: string;
  /** The physical node's name (emulab:vnode), e.g. clnode201. */
  physical?: string;
  logins: ManifestLogin[];
  interfaces: ManifestInterface[];
}

export interface Manifest {
  file: string;
  /** The rspec element's type attribute (CloudLab writes "manifest", sometimes "request"). */
  type?: string;
  nodes: ManifestNode[];
  links: Array<{ clientId: string; interfaces: string[] }>;
}

type X = Record<string, unknown>;
const ARRAYS = new Set(['node', 'interface', 'ip', 'login', 'link', 'interface_ref', 'services', 'vnode', 'hardware_type']);
const attr = (x: unknown, name: string): string | undefined => {
  const v = (x as X | undefined)?.[`@_${name}`];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
};
const list = (x: unknown, name: string): X[] => ((x as X | undefined)?.[name] as X[] | undefined) ?? [];

/** Parse a manifest; not well-formed XML or no <rspec> root is an error naming the file (and line). */
export function parseManifest(text: string, file: string): Manifest {
  const v = XMLValidator.validate(text);
  if (v !== true)
    throw new ConfigError([
      `${file}:${v.err.line}:${v.err.col}: not well-formed XML (${v.err.msg}); save the manifest again from the experiment page (its Manifest tab)`,
    ]);
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    removeNSPrefix: true,
    parseTagValue: false,
    isArray: (name, _path, _leaf, isAttribute) => !isAttribute && ARRAYS.has(name),
  }).parse(text) as X;
  const rspec = doc.rspec as X | undefined;
  if (!rspec || typeof rspec !== 'object')
    throw new ConfigError([
      `${file}: no <rspec> root element: not a GENI RSpec; give the experiment's manifest (CloudLab: the Manifest tab of the experiment)`,
    ]);
  const nodes = list(rspec, 'node').map(
    (n): ManifestNode => ({
      clientId: attr(n, 'client_id') ?? '',
      hardwareType: attr(list(n, 'hardware_type')[0], 'name') ?? attr(list(n, 'vnode')[0], 'hardware_type'),
      physical: attr(list(n, 'vnode')[0], 'name'),
      logins: list(n, 'services')
        .flatMap((s) => list(s, 'login'))
        .map((l) => ({
          hostname: attr(l, 'hostname') ?? '',
          port: Number(attr(l, 'port') ?? 22),
          username: attr(l, 'username') ?? '',
          authentication: attr(l, 'authentication'),
        })),
      interfaces: list(n, 'interface').map((i) => {
        const ip = list(i, 'ip').find((a) => (attr(a, 'type') ?? 'ipv4') === 'ipv4');
        return { clientId: attr(i, 'client_id') ?? '', mac: attr(i, 'mac_address'), address: attr(ip, 'address'), netmask: attr(ip, 'netmask') };
      }),
    }),
  );
  const links = list(rspec, 'link').map((l) => ({
    clientId: attr(l, 'client_id') ?? '(unnamed link)',
    interfaces: list(l, 'interface_ref').flatMap((r) => attr(r, 'client_id') ?? []),
  }));
  return { file, type: attr(rspec, 'type'), nodes, links };
}

export interface FromManifestOptions {
  /** client_id of the server node (default: the node named "server", else the first of exactly two). */
  server?: string;
  client?: string;
  /** client_id of the link to use when several join the two nodes. */
  link?: string;
  /** The login name (a manifest lists one login per project member). */
  user?: string;
  /** The local user name: picked when it is among the logins and no --user is given. */
  localUser?: string;
  /** Written into the header comment. */
  generatedAt?: string;
}

/** The server and client nodes: by option, by the profile's names, or the only two nodes there are. */
function pickNodes(m: Manifest, o: FromManifestOptions, problems: string[]): Partial<Record<Role, ManifestNode>> {
  const ids = m.nodes.map((n) => n.clientId);
  const byId = (id: string, opt: string) => {
    const n = m.nodes.find((x) => x.clientId === id);
    if (!n) problems.push(`${m.file}: ${opt} ${id}: no <node client_id="${id}">; the nodes are ${ids.join(', ')}`);
    return n;
  };
  if (o.server || o.client) {
    if (!o.server || !o.client) problems.push(`${m.file}: give both --server and --client (the nodes are ${ids.join(', ')})`);
    return { server: o.server ? byId(o.server, '--server') : undefined, client: o.client ? byId(o.client, '--client') : undefined };
  }
  const server = m.nodes.find((n) => n.clientId === 'server');
  const client = m.nodes.find((n) => n.clientId === 'client');
  if (server && client) return { server, client };
  if (m.nodes.length === 2) return { server: m.nodes[0], client: m.nodes[1] };
  problems.push(
    `${m.file}: ${m.nodes.length} <node> elements (${ids.join(', ') || 'none'}) and none named server/client: ` + 'say which with --server NODE --client NODE',
  );
  return {};
}

/** The link joining the two nodes, and each node's interface on it. */
function pickLink(m: Manifest, s: ManifestNode, c: ManifestNode, o: FromManifestOptions, problems: string[]) {
  const owns = (n: ManifestNode, ref: string) => n.interfaces.find((i) => i.clientId === ref);
  const joining = m.links.filter((l) => l.interfaces.some((r) => owns(s, r)) && l.interfaces.some((r) => owns(c, r)));
  let link = joining[0];
  if (o.link) {
    link = joining.find((l) => l.clientId === o.link);
    if (!link) problems.push(`${m.file}: --link ${o.link}: no <link> of that name joins ${s.clientId} and ${c.clientId}; those that do: ${names(joining)}`);
  } else if (joining.length > 1)
    problems.push(`${m.file}: ${joining.length} links join ${s.clientId} and ${c.clientId} (${names(joining)}): choose one with --link NAME`);
  else if (!link)
    problems.push(
      `${m.file}: no <link> joins ${s.clientId} and ${c.clientId} (links: ${names(m.links)}): ` +
        'the lab needs a link between the server and the client (the profile from `kflex-lab hosts cloudlab-profile` has one)',
    );
  if (!link || (joining.length > 1 && !o.link)) return undefined;
  const iface = (n: ManifestNode) => n.interfaces.find((i) => link.interfaces.includes(i.clientId))!;
  return { link, server: iface(s), client: iface(c) };
}

const names = (ls: Array<{ clientId: string }>) => ls.map((l) => l.clientId).join(', ') || 'none';

/** The login to use on a node: --user, else the only one, else the local user's. */
function pickLogin(file: string, n: ManifestNode, o: FromManifestOptions, problems: string[]): ManifestLogin | undefined {
  const logins = n.logins.filter((l) => l.hostname && l.username);
  const users = [...new Set(logins.map((l) => l.username))];
  if (!logins.length) {
    problems.push(
      `${file}: node ${n.clientId} has no <services><login hostname=... username=...>: ` +
        'this is not the manifest of a running experiment (a profile request RSpec has none); save the manifest from the experiment page',
    );
    return undefined;
  }
  const want = o.user ?? (users.length === 1 ? users[0] : o.localUser && users.includes(o.localUser) ? o.localUser : undefined);
  const l = want ? logins.find((x) => x.username === want) : undefined;
  if (!l)
    problems.push(
      o.user
        ? `${file}: node ${n.clientId} has no login for --user ${o.user}; its logins: ${users.join(', ')}`
        : `${file}: node ${n.clientId} lists ${users.length} logins (${users.join(', ')}): say which is yours with --user NAME`,
    );
  return l;
}

function checkInterface(file: string, n: ManifestNode, i: ManifestInterface, problems: string[]): void {
  if (!i.mac)
    problems.push(
      `${file}: node ${n.clientId} interface ${i.clientId} has no mac_address: the lab cannot tell which NIC is the link ` +
        '(a request RSpec has none; save the manifest of the running experiment)',
    );
  else if (!/^(?:[0-9A-Fa-f]{2}[:-]?){5}[0-9A-Fa-f]{2}$/.test(i.mac))
    problems.push(`${file}: node ${n.clientId} interface ${i.clientId}: mac_address ${i.mac} is not a MAC address`);
}

/** hosts.yaml text from a manifest (checked by the hosts.yaml parser before it is returned). */
export function hostsYamlFromManifest(m: Manifest, o: FromManifestOptions = {}): string {
  const problems: string[] = [];
  if (!m.nodes.length) throw new ConfigError([`${m.file}: no <node> elements: not the manifest of an experiment with nodes`]);
  const { server: s, client: c } = pickNodes(m, o, problems);
  if (!s || !c) throw new ConfigError(problems);
  const logins = { server: pickLogin(m.file, s, o, problems), client: pickLogin(m.file, c, o, problems) };
  const chosen = pickLink(m, s, c, o, problems);
  if (chosen) {
    checkInterface(m.file, s, chosen.server, problems);
    checkInterface(m.file, c, chosen.client, problems);
  }
  if (problems.length || !chosen) throw new ConfigError(problems);
  const host = (i: ManifestInterface, l: ManifestLogin) => ({
    destination: l.hostname,
    user: l.username,
    ...(l.port !== 22 ? { port: l.port } : {}),
    // CloudLab gives every experiment user passwordless sudo (root needs none).
    sudo: l.username !== 'root',
    link: { mac: normalizeMac(i.mac!), ...(i.address ? { address: i.address } : {}) },
  });
  const doc = new Document({ server: host(chosen.server, logins.server!), client: host(chosen.client, logins.client!) });
  const describe = (n: ManifestNode, i: ManifestInterface) =>
    `${n.clientId} = ${n.physical ?? '?'}${n.hardwareType ? ` (${n.hardwareType})` : ''}, link interface ${i.clientId} ${i.address ?? ''}`.trim();
  doc.commentBefore = [
    ` hosts.yaml from ${m.file} (kflex-lab hosts from-manifest${o.generatedAt ? `, ${o.generatedAt}` : ''})`,
    ` server: ${describe(s, chosen.server)}`,
    ` client: ${describe(c, chosen.client)}`,
    ` link: ${chosen.link.clientId}; each NIC is found by its MAC on the host (kflex-lab hosts check prints its name)`,
  ].join('\n');
  const text = doc.toString({ lineWidth: 0 });
  // What this writes must be what the testbed reads.
  parseHostsConfig(text, `${m.file} (converted)`);
  return text;
}
