import { ConfigError } from '../core/errors.js';
import { shQuote } from '../core/shell.js';
import type { Role } from './config.js';
import { neededBinaries, type OsRelease } from './facts.js';
import { installPlan, NOT_PACKAGED } from './packages.js';

/**
 * `hosts cloudlab-profile`: a geni-lib profile.py for a repository-based CloudLab profile. Two raw nodes (or
 * more clients), one link between them with fixed addresses, and a startup script that installs with apt
 * exactly what `hosts prepare` would install for each role (derived from neededBinaries and the package
 * table, never a hand list). `hosts from-manifest` (hosts/manifest.ts) turns the booked experiment back into
 * hosts.yaml.
 */

/** A CloudLab hardware type offered in the profile, with why it is offered. */
export interface HardwareChoice {
  type: string;
  label: string;
}

/**
 * The default is c6420 (CloudLab Clemson): a dual-port Intel X710 10 GbE NIC (i40e, which has native XDP),
 * the NIC of the paper's testbed; 2x Xeon Gold 6142 (32 cores) and 384 GB of RAM, which hold the 256 GiB
 * heaps of --kmemcached/--kredis. Its Skylake CPUs have no 5-level paging (LA57), so the 64 and 128 GiB
 * heaps cannot be placed there (experiments/heaps.ts): those cells are skipped with the reason, and
 * `kflex-lab plan --assume-host ram=384G,cpus=64,kvm` says so before booking. The NIC facts come from
 * third-party write-ups that quote CloudLab's node-type page (found with the code search); nothing here
 * asked CloudLab itself.
 */
export const CLOUDLAB_HARDWARE: readonly HardwareChoice[] = [
  { type: 'c6420', label: 'c6420 (Clemson): Intel X710 10 GbE (i40e, native XDP), 2x Xeon Gold 6142, 384 GB; no LA57' },
  { type: 'c220g5', label: 'c220g5 (Wisconsin): 10 GbE, 2x Xeon Silver 4114, 192 GB; no LA57 (NIC model not checked here)' },
  { type: 'c6525-25g', label: 'c6525-25g: 25 GbE, AMD EPYC, 128 GB; no LA57 (NIC model not checked here)' },
  { type: 'xl170', label: 'xl170 (Utah): 25 GbE, 64 GB: too little RAM for the paper heaps (NIC model not checked here)' },
];
export const DEFAULT_HARDWARE = 'c6420';

export interface ImageChoice {
  urn: string;
  label: string;
}

/** Emulab's standard Ubuntu 24.04 image (the URN other CloudLab profiles use); any other image URN can be typed in. */
export const CLOUDLAB_IMAGES: readonly ImageChoice[] = [
  { urn: 'urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU24-64-STD', label: 'Ubuntu 24.04 (emulab-ops standard image)' },
  { urn: 'urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU22-64-STD', label: 'Ubuntu 22.04 (emulab-ops standard image)' },
];

/** The link's fixed addresses: the server is .1, client i (1-based) is .(i+1). */
export const LINK_SUBNET = { prefix: '10.0.0', netmask: '255.255.255.0' } as const;
export function linkAddressOf(index: number): string {
  return `${LINK_SUBNET.prefix}.${index + 1}`;
}
/** Node names in the profile (and so client_ids in its manifest): server, client, client2, client3, ... */
export function nodeNameOf(index: number): string {
  return index === 0 ? 'server' : index === 1 ? 'client' : `client${index}`;
}

export interface CloudlabProfileOptions {
  hardwareType?: string;
  nodeCount?: number;
  image?: string;
  /** Written into the header, e.g. "kflex-lab 0.1.0". */
  generator?: string;
}

/** The shell word the startup script expands to the running kernel's release (Ubuntu's bpftool package is per kernel). */
const KERNEL_RELEASE = '$(uname -r)';

/** The distributions the startup script handles, as os-release would describe them. */
const DISTROS: Record<'debian' | 'ubuntu', OsRelease> = {
  debian: { id: 'debian', idLike: [], pretty: 'Debian' },
  ubuntu: { id: 'ubuntu', idLike: ['debian'], pretty: 'Ubuntu' },
};

/** What `hosts prepare` installs for a role on a fresh host of that distribution: every needed binary missing. */
export function startupPackages(role: Role, distro: keyof typeof DISTROS): { packages: string[]; unpackaged: string[] } {
  const plan = installPlan(neededBinaries(role), DISTROS[distro], KERNEL_RELEASE);
  for (const p of plan.packages)
    if (!/^[a-z0-9][a-z0-9.+-]*$/.test(p.replace(KERNEL_RELEASE, 'x')))
      throw new Error(`package name ${JSON.stringify(p)} cannot go into the startup script unquoted`);
  return { packages: plan.packages, unpackaged: plan.unpackaged };
}

/**
 * The startup script (bash, run as root by CloudLab's Execute service with the role as $1): apt-get installs
 * what `hosts prepare` would, logs to /var/log/kflex-lab-startup.log and leaves /var/lib/kflex-lab/startup.done.
 * Packages it installs are not in `hosts prepare --list`/`--undo` (the node is reloaded when the experiment ends).
 */
export function startupScript(): string {
  const list = (role: Role, d: keyof typeof DISTROS) => startupPackages(role, d).packages.join(' ');
  const unpackaged = [...new Set([...startupPackages('server', 'debian').unpackaged, ...startupPackages('client', 'debian').unpackaged])];
  const notes = unpackaged.map((b) => `echo ${shQuote(`kflex-lab: ${b} is not installed by this script: ${NOT_PACKAGED[b] ?? 'no package provides it'}`)}`);
  const lines = [
    '#!/bin/bash',
    '# kflex-lab startup script: installs what `kflex-lab hosts prepare` would (generated from hosts/facts.ts neededBinaries',
    '# and hosts/packages.ts; regenerate the profile rather than editing this).',
    'set -u',
    'role="${1:?usage: startup server|client}"',
    'mkdir -p /var/lib/kflex-lab',
    'exec >>/var/log/kflex-lab-startup.log 2>&1',
    'echo "kflex-lab startup: role $role, $(date -u +%FT%TZ)"',
    '. /etc/os-release',
    'case "$ID:$role" in',
    `  ubuntu:server) pkgs="${list('server', 'ubuntu')}" ;;`,
    `  ubuntu:client) pkgs="${list('client', 'ubuntu')}" ;;`,
    `  debian:server) pkgs="${list('server', 'debian')}" ;;`,
    `  debian:client) pkgs="${list('client', 'debian')}" ;;`,
    '  *) echo "kflex-lab startup: no package list for $ID/$role; run kflex-lab hosts prepare"; exit 1 ;;',
    'esac',
    'export DEBIAN_FRONTEND=noninteractive',
    'for try in 1 2 3; do',
    '  apt-get update && apt-get install -y --no-install-recommends $pkgs && ok=1 && break',
    '  ok=0; sleep 30',
    'done',
    ...notes,
    'if [ "$ok" != 1 ]; then echo "kflex-lab startup: apt-get failed"; exit 1; fi',
    'echo "$pkgs" >/var/lib/kflex-lab/startup.done',
    'echo "kflex-lab startup: done"',
    '',
  ];
  return lines.join('\n');
}

/** A Python string literal (JSON's escapes are Python's too). */
function py(s: string): string {
  return JSON.stringify(s);
}

function pyChoices(pairs: Array<[string, string]>): string {
  return `[\n${pairs.map(([v, l]) => `    (${py(v)}, ${py(l)}),`).join('\n')}\n]`;
}

/** The profile's parameters, defaults and their checks (Python). */
function parameterLines(o: Required<Omit<CloudlabProfileOptions, 'generator'>>): string[] {
  const hw = CLOUDLAB_HARDWARE.some((h) => h.type === o.hardwareType)
    ? CLOUDLAB_HARDWARE
    : [...CLOUDLAB_HARDWARE, { type: o.hardwareType, label: o.hardwareType }];
  const images = CLOUDLAB_IMAGES.some((i) => i.urn === o.image) ? CLOUDLAB_IMAGES : [{ urn: o.image, label: o.image }, ...CLOUDLAB_IMAGES];
  return [
    `HARDWARE = ${pyChoices(hw.map((h) => [h.type, h.label]))}`,
    `IMAGES = ${pyChoices(images.map((i) => [i.urn, i.label]))}`,
    '',
    'pc.defineParameter(',
    `    "hardware_type", "Hardware type", portal.ParameterType.NODETYPE, ${py(o.hardwareType)}, HARDWARE,`,
    '    longDescription="All nodes get this type. The paper used Intel X710 NICs; the server NIC needs native (driver-mode) XDP for the XDP cells, ' +
      'and the heaps need RAM (256 GiB for --kmemcached/--kredis) and, for the 64/128 GiB heaps, 5-level paging (LA57).")',
    'pc.defineParameter(',
    `    "node_count", "Number of nodes", portal.ParameterType.INTEGER, ${o.nodeCount},`,
    '    longDescription="The first node is the server, the others clients (kflex-lab uses the server and one client; more are spares).")',
    'pc.defineParameter(',
    `    "os_image", "OS image", portal.ParameterType.IMAGE, ${py(o.image)}, IMAGES,`,
    '    longDescription="Debian or Ubuntu: the startup script installs with apt. A KFlex kernel is installed afterwards (kflex-lab build kernel --deb).")',
    'params = pc.bindParameters()',
    '',
    'if params.node_count < 2:',
    '    pc.reportError(portal.ParameterError("kflex-lab needs a server and a client: at least 2 nodes", ["node_count"]))',
    'pc.verifyParameters()',
  ];
}

/** The request: nodes, the link with fixed addresses, the startup service on each node (Python). */
function requestLines(): string[] {
  return [
    'request = pc.makeRequestRSpec()',
    '',
    '# Two nodes: one point-to-point link; more: one LAN. Fixed addresses, so hosts.yaml and the README agree.',
    'link = request.Link("link") if params.node_count == 2 else request.LAN("lan")',
    '',
    'for i in range(params.node_count):',
    `    name = "server" if i == 0 else ("client" if i == 1 else "client%d" % i)`,
    '    role = "server" if i == 0 else "client"',
    '    node = request.RawPC(name)',
    '    node.hardware_type = params.hardware_type',
    '    node.disk_image = params.os_image',
    '    iface = node.addInterface("if0")',
    `    iface.addAddress(pg.IPv4Address("${LINK_SUBNET.prefix}.%d" % (i + 1), ${py(LINK_SUBNET.netmask)}))`,
    '    link.addInterface(iface)',
    '    node.addService(pg.Execute(shell="bash", command="sudo bash -c " + quote(STARTUP) + " startup " + role))',
    '',
    'pc.printRequestRSpec(request)',
  ];
}

/** profile.py: valid Python (2.7 and 3) for CloudLab's geni-lib. */
export function cloudlabProfile(opts: CloudlabProfileOptions = {}): string {
  const o = { hardwareType: opts.hardwareType ?? DEFAULT_HARDWARE, nodeCount: opts.nodeCount ?? 2, image: opts.image ?? CLOUDLAB_IMAGES[0]!.urn };
  if (!Number.isInteger(o.nodeCount) || o.nodeCount < 2) throw new ConfigError([`--nodes: ${o.nodeCount}; kflex-lab needs a server and a client: 2 or more`]);
  if (!/^[A-Za-z0-9._-]+$/.test(o.hardwareType))
    throw new ConfigError([`--hardware-type: ${JSON.stringify(o.hardwareType)} is not a CloudLab node type (e.g. c6420)`]);
  if (!o.image.startsWith('urn:publicid:IDN+'))
    throw new ConfigError([`--image: ${JSON.stringify(o.image)} is not an image URN (urn:publicid:IDN+...+image+...)`]);
  const script = startupScript();
  if (script.includes("'''")) throw new Error("the startup script contains ''' and cannot be embedded in profile.py");
  return [
    '"""Two bare-metal nodes joined by one link, for reproducing KFlex (SOSP \'24) with kflex-lab.',
    '',
    'Instructions:',
    "When the experiment is ready (and each node's startup script has finished: /var/lib/kflex-lab/startup.done),",
    "save the experiment's manifest (the Manifest tab) as manifest.xml and, on your own machine, in kflex-lab:",
    '',
    '    npx kflex-lab hosts from-manifest manifest.xml > hosts.yaml',
    '    npx kflex-lab hosts check   --testbed hosts.yaml',
    '    npx kflex-lab hosts prepare --testbed hosts.yaml',
    '    npx kflex-lab reproduce     --testbed hosts.yaml',
    '',
    `Generated by \`kflex-lab hosts cloudlab-profile\`${opts.generator ? ` (${opts.generator})` : ''}; regenerate rather than edit.`,
    '"""',
    '',
    'import geni.portal as portal',
    'import geni.rspec.pg as pg',
    '',
    'try:',
    '    from shlex import quote',
    'except ImportError:  # Python 2',
    '    from pipes import quote',
    '',
    'pc = portal.Context()',
    '',
    ...parameterLines(o),
    '',
    `# Installs what \`kflex-lab hosts prepare\` would for the node's role (server or client), with apt.`,
    `STARTUP = r'''${script}'''`,
    '',
    ...requestLines(),
    '',
  ].join('\n');
}
