import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { homedir } from 'node:os';
import { parseDocument, LineCounter, isNode, stringify as stringifyYaml, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';

/**
 * hosts.yaml: two machines the lab reaches with the user's own OpenSSH (ssh_config, ProxyJump, agent, keys),
 * the experiment link on each, and whether commands go through sudo.
 */

// An OpenSSH destination: an ssh_config alias, host or user@host. A leading '-' would be read by ssh as an
// option; ssh:// URIs are refused because scp spells them differently (user: and port: say the same).
const Destination = z
  .string()
  .min(1, 'must not be empty')
  .regex(/^[^-\s][^\s]*$/, 'an OpenSSH destination (alias, host, user@host) without spaces and not starting with "-"')
  .refine((d) => !d.includes('://'), 'an ssh_config alias, host or user@host; instead of ssh://user@host:port write destination: host with user: and port:');
// Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', ':' or whitespace.
const Interface = z.string().regex(/^[^\s/:]{1,15}$/, 'a Linux interface name (1-15 characters, no "/", ":" or spaces), e.g. eth1 or enp1s0f0');
// A MAC address as ip prints it (or as a CloudLab manifest spells it, without colons): stored as aa:bb:cc:dd:ee:ff.
const Mac = z
  .string()
  .regex(/^(?:[0-9A-Fa-f]{2}[:-]?){5}[0-9A-Fa-f]{2}$/, 'a MAC address, e.g. 3c:fd:fe:55:f8:a2 (or 3cfdfe55f8a2)')
  .transform(normalizeMac);
const Ipv4 = z
  .string()
  .regex(
    /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/,
    'an IPv4 address without prefix length, e.g. 10.0.0.1 (the clients take host:port, so IPv6 is not supported)',
  );

const HostSchema = z
  .object({
    destination: Destination,
    /** Overrides the destination's user / port (ssh -o User= / -o Port=). */
    user: z
      .string()
      .regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*$/, 'a login name')
      .optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** Run every command as root through `sudo -n` (the login user must have passwordless sudo). */
    sudo: z.boolean().default(false),
    /** Names this host's record of what `hosts prepare` installed (default: the destination). */
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'")
      .optional(),
    link: z
      .object({
        /** The link NIC by name; or by `mac:` (resolved on the host by `hosts check` and the testbed); at least one. */
        interface: Interface.optional(),
        /** The link NIC by MAC address, as a testbed's manifest gives it (names differ between images and kernels). */
        mac: Mac.optional(),
        /** Discovered with `ip -j addr show dev IF` (its first IPv4 address) when left out. */
        address: Ipv4.optional(),
      })
      .strict(),
  })
  .strict();

const HostsSchema = z
  .object({
    /** Passed to ssh and scp as -F; default: the user's ~/.ssh/config (OpenSSH's own default). */
    ssh_config: z.string().min(1).optional(),
    server: HostSchema,
    client: HostSchema,
  })
  .strict();

export type HostSpec = z.infer<typeof HostSchema>;
export type Role = 'server' | 'client';

export interface HostsConfig {
  file: string;
  /** Absolute path of the ssh_config to use, or undefined for OpenSSH's default. */
  sshConfig?: string;
  server: HostSpec;
  client: HostSpec;
}

/** aa:bb:cc:dd:ee:ff, lower case, from any of 3CFDFE55F8A2, 3c-fd-fe-55-f8-a2, 3c:fd:fe:55:f8:a2. */
export function normalizeMac(mac: string): string {
  const hex = mac.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}

/** The name under which a host's installs are recorded (`<cache>/hosts/<name>/installed.json`). */
export function hostName(h: HostSpec): string {
  return h.name ?? h.destination.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** Parse and validate hosts.yaml; every problem is `FILE:LINE:COL: field.path: what is wrong`. */
export function parseHostsConfig(text: string, file: string, opts: { home?: string } = {}): HostsConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length)
    throw new ConfigError(
      doc.errors.map((e) => {
        const p = lc.linePos(e.pos[0]);
        return `${file}:${p.line}:${p.col}: YAML syntax: ${e.message.split('\n')[0]}`;
      }),
    );
  const r = validateHosts(doc.toJS() as unknown, { file, baseDir: dirname(file), where: (path) => locate(doc, lc, file, path), home: opts.home });
  if (!r.config) throw new ConfigError(r.problems);
  return r.config;
}

/** Where hosts.yaml's content sits: its own file, or lab.yaml's `testbed.hosts` (fields then carry that prefix). */
export interface HostsSource {
  /** Recorded as the testbed's file (the manifest, messages). */
  file: string;
  /** Relative ssh_config paths resolve against this directory. */
  baseDir: string;
  /** The position of a field, by its path inside the hosts content. */
  where: (path: (string | number)[]) => string;
  /** Printed before each field path, e.g. 'testbed.hosts' inside lab.yaml. */
  prefix?: string;
  home?: string;
}

/** The hosts content (parsed YAML) validated: the config, or every problem at once. */
export function validateHosts(raw: unknown, src: HostsSource): { config?: HostsConfig; problems: string[] } {
  const { where } = src;
  const field = (path: (string | number)[]) => {
    const f = path.map(String).join('.');
    return src.prefix ? [src.prefix, ...(f ? [f] : [])].join('.') : f || '(file)';
  };
  const parsed = HostsSchema.safeParse(raw ?? {});
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => `${where(i.path)}: ${field(i.path)}: ${describe(i)}`) };
  const c = parsed.data;
  const problems: string[] = [];
  let sshConfig: string | undefined;
  if (c.ssh_config) {
    const expanded = c.ssh_config.replace(/^~(?=\/|$)/, src.home ?? homedir());
    sshConfig = resolve(src.baseDir, expanded);
    if (!existsSync(sshConfig))
      problems.push(
        `${where(['ssh_config'])}: ${field(['ssh_config'])}: no file ${sshConfig}; ` +
          `give the ssh_config to pass to ssh -F (relative paths are relative to ${src.baseDir}), or leave it out for ~/.ssh/config`,
      );
  }
  for (const role of ['server', 'client'] as const)
    if (!c[role].link.interface && !c[role].link.mac)
      problems.push(
        `${where([role, 'link'])}: ${field([role, 'link'])}: names no NIC; ` +
          'give interface: (e.g. enp1s0f0) or mac: (e.g. 3c:fd:fe:55:f8:a2, resolved on the host)',
      );
  const same = (a: HostSpec, b: HostSpec) => a.destination === b.destination && a.user === b.user && a.port === b.port;
  if (same(c.server, c.client))
    problems.push(
      `${where(['client', 'destination'])}: ${field(['client', 'destination'])}: '${c.client.destination}' is the server's destination too; ` +
        `the server and the client must be two machines`,
    );
  if (c.server.link.address && c.server.link.address === c.client.link.address)
    problems.push(
      `${where(['client', 'link', 'address'])}: ${field(['client', 'link', 'address'])}: ${c.client.link.address} is the server's ` +
        'link address too; give each side its own address (or leave them out to discover them)',
    );
  else if (hostName(c.server) === hostName(c.client))
    problems.push(
      `${where(['client'])}: ${field(['client'])}: records under the same name '${hostName(c.client)}' as the server; set client.name (or server.name)`,
    );
  if (problems.length) return { problems };
  return { config: { file: src.file, sshConfig, server: c.server, client: c.client }, problems };
}

/** hosts.yaml's text for a validated config (ssh_config absolute): the form a profile's inline hosts are handed to the testbed in. */
export function hostsYamlOf(c: Omit<HostsConfig, 'file'>): string {
  return stringifyYaml({ ...(c.sshConfig ? { ssh_config: c.sshConfig } : {}), server: c.server, client: c.client });
}

export function loadHostsConfig(path: string): HostsConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([
      `${file}: cannot read the testbed file (${(e as Error).message}); pass --testbed hosts.yaml (see README, "Bare metal / your own machines")`,
    ]);
  }
  return parseHostsConfig(text, file);
}

function describe(issue: z.ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.received === 'undefined' ? `missing; expected ${issue.expected}` : `expected ${issue.expected}, got ${issue.received}`;
    case 'unrecognized_keys':
      return `unknown field(s) ${issue.keys.join(', ')}; allowed: ${allowedAt(issue.path).join(', ')}`;
    default:
      return issue.message;
  }
}

function allowedAt(path: (string | number)[]): string[] {
  if (path.length === 0) return Object.keys(HostsSchema.shape);
  if (path.length === 1) return Object.keys(HostSchema.shape);
  return Object.keys(HostSchema.shape.link.shape);
}

function locate(doc: Document, lc: LineCounter, file: string, path: (string | number)[]): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) {
      const p = lc.linePos(node.range[0]);
      return `${file}:${p.line}:${p.col}`;
    }
  }
  return `${file}:1:1`;
}
