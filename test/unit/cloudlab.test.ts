import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudlabProfile, startupPackages, startupScript, CLOUDLAB_HARDWARE, DEFAULT_HARDWARE } from '../../hosts/cloudlab.js';
import { parseManifest, hostsYamlFromManifest, type FromManifestOptions } from '../../hosts/manifest.js';
import { parseHostsConfig } from '../../hosts/config.js';
import { neededBinaries, parseGather, type HostFacts } from '../../hosts/facts.js';
import { linkByMac } from '../../hosts/safety.js';
import { planPrepare } from '../../hosts/prepare.js';
import { ConfigError } from '../../core/errors.js';
import { FIXTURES, tempDir } from '../helpers.js';

const fixture = (f: string) => join(FIXTURES, 'cloudlab', f);
const convert = (f: string, o: FromManifestOptions = {}) => hostsYamlFromManifest(parseManifest(readFileSync(fixture(f), 'utf8'), fixture(f)), o);
const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
};

describe('hosts cloudlab-profile: the geni-lib profile.py', () => {
  const dir = tempDir('kflex-cloudlab-');
  const write = (text: string) => {
    const f = join(dir, `profile-${Math.random().toString(36).slice(2)}.py`);
    writeFileSync(f, text);
    return f;
  };

  it('is valid Python (python3 parses it)', () => {
    for (const o of [{}, { nodeCount: 3, hardwareType: 'c220g5' }, { image: 'urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU22-64-STD' }]) {
      const f = write(cloudlabProfile(o));
      execFileSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', f], { stdio: 'pipe' });
    }
    // The check can fail: a profile with a Python syntax error is refused.
    const broken = write(`${cloudlabProfile()}\nif True\n`);
    expect(() => execFileSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', broken], { stdio: 'pipe' })).toThrow();
  });

  it('has the structure geni-lib expects: a portal context, parameters, raw nodes, one link with fixed addresses, startup services', () => {
    const p = cloudlabProfile();
    // The statements, in the order a portal profile needs them.
    const order = [
      'import geni.portal as portal',
      'import geni.rspec.pg as pg',
      'pc = portal.Context()',
      'pc.defineParameter(\n    "hardware_type", "Hardware type", portal.ParameterType.NODETYPE, "c6420", HARDWARE,',
      'pc.defineParameter(\n    "node_count", "Number of nodes", portal.ParameterType.INTEGER, 2,',
      'pc.defineParameter(\n    "os_image", "OS image", portal.ParameterType.IMAGE, "urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU24-64-STD", IMAGES,',
      'params = pc.bindParameters()',
      'pc.verifyParameters()',
      'request = pc.makeRequestRSpec()',
      'link = request.Link("link") if params.node_count == 2 else request.LAN("lan")',
      'node = request.RawPC(name)',
      'node.hardware_type = params.hardware_type',
      'node.disk_image = params.os_image',
      'iface = node.addInterface("if0")',
      'iface.addAddress(pg.IPv4Address("10.0.0.%d" % (i + 1), "255.255.255.0"))',
      'link.addInterface(iface)',
      'node.addService(pg.Execute(shell="bash", command="sudo bash -c " + quote(STARTUP) + " startup " + role))',
      'pc.printRequestRSpec(request)',
    ];
    let at = 0;
    for (const s of order) {
      const i = p.indexOf(s, at);
      expect(i, `'${s}' after position ${at}`).toBeGreaterThanOrEqual(0);
      at = i + s.length;
    }
    expect(p).toContain('"server" if i == 0 else ("client" if i == 1 else "client%d" % i)');
    expect(DEFAULT_HARDWARE).toBe('c6420');
    expect(CLOUDLAB_HARDWARE[0]!.label).toMatch(/Intel X710/);
    expect(cloudlabProfile({ hardwareType: 'd6515', nodeCount: 3 })).toMatch(/portal\.ParameterType\.NODETYPE, "d6515", HARDWARE,[\s\S]*INTEGER, 3,/);
  });

  it('refuses options that cannot make a two-machine testbed, naming the option', () => {
    expect(problems(() => cloudlabProfile({ nodeCount: 1 }))).toEqual(['--nodes: 1; kflex-lab needs a server and a client: 2 or more']);
    expect(problems(() => cloudlabProfile({ hardwareType: 'c6420; rm' }))[0]).toMatch(/^--hardware-type: /);
    expect(problems(() => cloudlabProfile({ image: 'UBUNTU24' }))[0]).toMatch(/^--image: "UBUNTU24" is not an image URN/);
  });

  it('embeds a startup script that bash accepts, and that installs exactly what hosts prepare would on a fresh host', () => {
    const script = startupScript();
    execFileSync('bash', ['-n', '-c', script], { stdio: 'pipe' });
    expect(() => execFileSync('bash', ['-n', '-c', `${script}\nif then`], { stdio: 'pipe' })).toThrow();
    expect(cloudlabProfile()).toContain(`STARTUP = r'''${script}'''`);
    // A host with nothing the experiments need: prepare's apt step is the script's list for that role and distribution.
    const cap = (f: string, role: 'server' | 'client') =>
      parseGather(readFileSync(join(FIXTURES, 'hosts', f), 'utf8'), { role, destination: role, linkIf: 'eth1' });
    const fresh = (f: HostFacts, os: 'debian' | 'ubuntu'): HostFacts => ({
      ...f,
      kernel: '6.8.0-31-generic',
      os: os === 'debian' ? f.os : { id: 'ubuntu', idLike: ['debian'], versionId: '24.04', codename: 'noble', pretty: 'Ubuntu 24.04 LTS' },
      // What gather asks a host for (neededBinaries), none of it there.
      binaries: Object.fromEntries(neededBinaries(f.role).map((b) => [b, undefined])),
    });
    for (const [role, f] of [
      ['server', 'gather-server.txt'],
      ['client', 'gather-client.txt'],
    ] as const)
      for (const os of ['debian', 'ubuntu'] as const) {
        const apt = planPrepare(role, fresh(cap(f, role), os), { suite: 'trixie', why: 'x' }).find((s) => s.kind === 'apt')!;
        const script = startupPackages(role, os).packages.map((p) => p.replace('$(uname -r)', '6.8.0-31-generic'));
        expect([...script].sort(), `${role} on ${os}`).toEqual([...apt.packages!].sort());
        expect(startupScript()).toContain(`${os}:${role}) pkgs="${startupPackages(role, os).packages.join(' ')}" ;;`);
      }
    expect(startupPackages('server', 'ubuntu').packages).toContain('linux-tools-$(uname -r)');
    expect(startupPackages('client', 'debian').unpackaged).toEqual(['memtier_benchmark']);
  });

  // Opt-in: Utah's geni-lib, fetched (never committed), e.g. commit baea02a with `python3 setup.py egg_info` run
  // in it, and Debian's python3-lxml python3-requests python3-wrapt python3-six python3-cryptography.
  // KFLEX_LAB_GENI_LIB=/path/to/geni-lib [KFLEX_LAB_GENI_PYTHON=/usr/bin/python3]
  const geniLib = process.env.KFLEX_LAB_GENI_LIB;
  it.skipIf(!geniLib)('runs under the real geni-lib: the request RSpec it prints has the nodes, link, addresses and startup (KFLEX_LAB_GENI_LIB)', () => {
    const py = process.env.KFLEX_LAB_GENI_PYTHON ?? 'python3';
    const f = write(cloudlabProfile());
    const run = (args: string[]) =>
      execFileSync(py, [f, ...args], { env: { ...process.env, PYTHONPATH: `${geniLib}:${join(geniLib!, 'tools', 'ipython')}` }, encoding: 'utf8' });
    for (const [args, n] of [
      [[], 2],
      [['--node_count', '3'], 3],
    ] as const) {
      const rspec = parseManifest(run([...args]), `geni-lib output ${args.join(' ')}`);
      expect(rspec.type).toBe('request');
      expect(rspec.nodes.map((x) => [x.clientId, x.hardwareType, x.interfaces.map((i) => i.address)])).toEqual(
        ['server', 'client', 'client2'].slice(0, n).map((name, i) => [name, 'c6420', [`10.0.0.${i + 1}`]]),
      );
      expect(rspec.links).toEqual([{ clientId: n === 2 ? 'link' : 'lan', interfaces: rspec.nodes.map((x) => `${x.clientId}:if0`) }]);
    }
    // The Execute command unquotes (by a real shell) to exactly the generated script, with the role after it.
    const xml = run([]);
    const cmd = xml
      .match(/<execute shell="bash" command="([^"]*)"/)![1]!
      .replace(/&#10;/g, '\n')
      .replace(/&quot;/g, '"')
      .replace(/&gt;/g, '>')
      .replace(/&lt;/g, '<')
      .replace(/&amp;/g, '&');
    const words = execFileSync('bash', ['-c', `eval "set -- $1"; printf '%s\\0' "$@"`, 'x', cmd], { encoding: 'utf8' }).split('\0');
    expect(words.slice(0, 3)).toEqual(['sudo', 'bash', '-c']);
    expect(words[3]).toBe(startupScript());
    expect(words.slice(4, 6)).toEqual(['startup', 'server']);
  });
});

describe('hosts from-manifest: a CloudLab manifest into hosts.yaml', () => {
  it('two nodes, one link: SSH destination and login per node, the link NIC by MAC and address; the hosts.yaml parser accepts it', () => {
    const text = convert('two-nodes-one-link.xml', { user: 'alice' });
    expect(text).toMatch(/^# hosts\.yaml from .*two-nodes-one-link\.xml \(kflex-lab hosts from-manifest\)\n# server: server = clnode201 \(c6420\)/);
    const cfg = parseHostsConfig(text, 'hosts.yaml');
    expect(cfg.server).toEqual({
      destination: 'clnode201.clemson.cloudlab.us',
      user: 'alice',
      sudo: true,
      link: { mac: '3c:fd:fe:55:f8:a2', address: '10.0.0.1' },
    });
    expect(cfg.client).toEqual({
      destination: 'clnode214.clemson.cloudlab.us',
      user: 'alice',
      sudo: true,
      link: { mac: '3c:fd:fe:55:a1:c0', address: '10.0.0.2' },
    });
  });

  it('asks which login when the manifest lists several, unless --user or the local user decides', () => {
    expect(problems(() => convert('two-nodes-one-link.xml'))).toEqual([
      `${fixture('two-nodes-one-link.xml')}: node server lists 2 logins (alice, bob): say which is yours with --user NAME`,
      `${fixture('two-nodes-one-link.xml')}: node client lists 2 logins (alice, bob): say which is yours with --user NAME`,
    ]);
    expect(parseHostsConfig(convert('two-nodes-one-link.xml', { localUser: 'bob' }), 'h.yaml').client.user).toBe('bob');
    expect(problems(() => convert('two-nodes-one-link.xml', { user: 'mallory' }))[0]).toMatch(
      /node server has no login for --user mallory; its logins: alice, bob$/,
    );
  });

  it('a node with several interfaces: the one on the link that joins the chosen server and client, whatever its order', () => {
    expect(problems(() => convert('several-interfaces.xml'))).toEqual([
      `${fixture('several-interfaces.xml')}: 3 <node> elements (node-0, node-1, node-2) and none named server/client: ` +
        'say which with --server NODE --client NODE',
    ]);
    const a = parseHostsConfig(convert('several-interfaces.xml', { server: 'node-0', client: 'node-1' }), 'h.yaml');
    expect(a.server).toMatchObject({ destination: 'hp041.utah.cloudlab.us', user: 'carol', link: { mac: '98:03:9b:a1:00:01', address: '10.10.1.1' } });
    expect(a.client).toMatchObject({ destination: 'hp052.utah.cloudlab.us', link: { mac: '98:03:9b:a1:01:01', address: '10.10.1.2' } });
    const b = parseHostsConfig(convert('several-interfaces.xml', { server: 'node-0', client: 'node-2' }), 'h.yaml');
    expect(b.server.link).toEqual({ mac: '98:03:9b:a1:00:02', address: '10.10.2.1' });
    expect(b.client).toMatchObject({ destination: 'hp063.utah.cloudlab.us', port: 2222, link: { address: '10.10.2.2' } });
    expect(problems(() => convert('several-interfaces.xml', { server: 'node-1', client: 'node-2' }))).toEqual([
      `${fixture('several-interfaces.xml')}: no <link> joins node-1 and node-2 (links: link-1, lan-2): ` +
        'the lab needs a link between the server and the client (the profile from `kflex-lab hosts cloudlab-profile` has one)',
    ]);
    expect(problems(() => convert('several-interfaces.xml', { server: 'node-9', client: 'node-1' }))[0]).toMatch(
      /: --server node-9: no <node client_id="node-9">; the nodes are node-0, node-1, node-2$/,
    );
  });

  it('two links between the same nodes: asks for --link, and uses the one named', () => {
    const f = fixture('two-nodes-one-link.xml');
    const text = readFileSync(f, 'utf8')
      .replace(
        '    <emulab:vnode name="clnode201"',
        '    <interface client_id="server:if1" mac_address="3cfdfe55f8a3"><ip address="10.0.1.1" type="ipv4" netmask="255.255.255.0"/></interface>\n' +
          '    <emulab:vnode name="clnode201"',
      )
      .replace(
        '    <emulab:vnode name="clnode214"',
        '    <interface client_id="client:if1" mac_address="3cfdfe55a1c1"><ip address="10.0.1.2" type="ipv4" netmask="255.255.255.0"/></interface>\n' +
          '    <emulab:vnode name="clnode214"',
      )
      .replace('</rspec>', '  <link client_id="link2"><interface_ref client_id="server:if1"/><interface_ref client_id="client:if1"/></link>\n</rspec>');
    const m = parseManifest(text, f);
    expect(problems(() => hostsYamlFromManifest(m, { user: 'alice' }))).toEqual([
      `${f}: 2 links join server and client (link, link2): choose one with --link NAME`,
    ]);
    expect(parseHostsConfig(hostsYamlFromManifest(m, { user: 'alice', link: 'link2' }), 'h.yaml').server.link).toEqual({
      mac: '3c:fd:fe:55:f8:a3',
      address: '10.0.1.1',
    });
  });

  it('a request RSpec saved instead of the manifest: every missing login and MAC, each naming the file', () => {
    const f = fixture('malformed-request.xml');
    expect(problems(() => convert('malformed-request.xml'))).toEqual([
      `${f}: node server has no <services><login hostname=... username=...>: this is not the manifest of a running experiment ` +
        '(a profile request RSpec has none); save the manifest from the experiment page',
      `${f}: node client has no <services><login hostname=... username=...>: this is not the manifest of a running experiment ` +
        '(a profile request RSpec has none); save the manifest from the experiment page',
      `${f}: node server interface server:if0 has no mac_address: the lab cannot tell which NIC is the link ` +
        '(a request RSpec has none; save the manifest of the running experiment)',
      `${f}: node client interface client:if0 has no mac_address: the lab cannot tell which NIC is the link ` +
        '(a request RSpec has none; save the manifest of the running experiment)',
    ]);
  });

  it('XML that is cut off or is no RSpec: the file, the line and what is wrong', () => {
    const whole = readFileSync(fixture('two-nodes-one-link.xml'), 'utf8');
    const cut = whole.slice(0, whole.indexOf('mac_address="3cfdfe55a1c0"') + 20);
    expect(problems(() => parseManifest(cut, 'manifest.xml'))[0]).toMatch(/^manifest\.xml:\d+:\d+: not well-formed XML \(.+\); save the manifest again/);
    expect(problems(() => parseManifest('<html><body>Sign in</body></html>', 'manifest.xml'))).toEqual([
      "manifest.xml: no <rspec> root element: not a GENI RSpec; give the experiment's manifest (CloudLab: the Manifest tab of the experiment)",
    ]);
    expect(problems(() => hostsYamlFromManifest(parseManifest('<rspec type="manifest"/>', 'm.xml')))).toEqual([
      'm.xml: no <node> elements: not the manifest of an experiment with nodes',
    ]);
  });
});

describe('hosts.yaml: the link NIC by MAC', () => {
  const base = 'server:\n  destination: a\n  link: LINK\nclient:\n  destination: b\n  link: { interface: eth1 }\n';
  it('accepts mac: (normalized), requires interface: or mac:, refuses what is not a MAC', () => {
    expect(parseHostsConfig(base.replace('LINK', '{ mac: 3C-FD-FE-55-F8-A2 }'), 'h.yaml').server.link).toEqual({ mac: '3c:fd:fe:55:f8:a2' });
    expect(problems(() => parseHostsConfig(base.replace('LINK', '{ address: 10.0.0.1 }'), 'h.yaml'))).toEqual([
      'h.yaml:3:9: server.link: names no NIC; give interface: (e.g. enp1s0f0) or mac: (e.g. 3c:fd:fe:55:f8:a2, resolved on the host)',
    ]);
    expect(problems(() => parseHostsConfig(base.replace('LINK', '{ mac: 3c:fd:fe }'), 'h.yaml'))[0]).toMatch(
      /^h\.yaml:3:\d+: server\.link\.mac: a MAC address, e\.g\. 3c:fd:fe:55:f8:a2/,
    );
  });

  it("resolves to the host's interface with that MAC (captured ip -j addr of the lab's VM), or says why not", () => {
    const s = parseGather(readFileSync(join(FIXTURES, 'hosts', 'gather-server.txt'), 'utf8'), { role: 'server', destination: 'server', linkIf: 'eth1' });
    const mac = s.interfaces.find((i) => i.ifname === 'eth1')!.mac!;
    const o = { role: 'server', destination: 'server' };
    expect(linkByMac(s.interfaces, { ...o, mac })).toEqual({ ifname: 'eth1' });
    expect(linkByMac(s.interfaces, { ...o, mac, configuredIf: 'eth1' })).toEqual({ ifname: 'eth1' });
    expect(linkByMac(s.interfaces, { ...o, mac, configuredIf: 'eth0' }).refusal).toBe(
      `server.link: interface eth0 and mac ${mac} disagree: on server that MAC is eth1; fix one of them`,
    );
    expect(linkByMac(s.interfaces, { ...o, mac: '02:00:00:00:00:99' }).refusal).toMatch(
      /^server\.link\.mac: no interface on server has MAC 02:00:00:00:00:99; its interfaces: eth0 52:54:00:77:00:01, eth1 52:54:00:77:01:01/,
    );
    // A VLAN on the link NIC shares its MAC: the physical NIC is meant.
    const vlan = [...s.interfaces, { ...s.interfaces.find((i) => i.ifname === 'eth1')!, ifname: 'eth1.100', ifindex: 9 }];
    expect(linkByMac(vlan, { ...o, mac })).toEqual({ ifname: 'eth1' });
  });
});
