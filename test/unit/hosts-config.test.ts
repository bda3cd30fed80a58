import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHostsConfig, loadHostsConfig, hostName } from '../../hosts/config.js';
import { ConfigError } from '../../core/errors.js';
import { openSshArgv, openScpArgv, withSudo, scpRemote } from '../../hosts/ssh.js';
import { tempDir } from '../helpers.js';

const GOOD = `ssh_config: ./ssh_config
server:
  destination: server
  link: { interface: eth1 }
client:
  destination: kflex@client.example
  sudo: true
  link:
    interface: enp1s0f0
    address: 10.77.0.2
`;

function problems(text: string, file = '/x/hosts.yaml'): string[] {
  try {
    parseHostsConfig(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).exitCode).toBe(2);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('hosts.yaml', () => {
  it('parses a good file: ssh_config relative to the file, sudo defaults to false, address optional', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'ssh_config'), 'Host server\n  HostName 127.0.0.1\n');
    writeFileSync(join(dir, 'hosts.yaml'), GOOD);
    const c = loadHostsConfig(join(dir, 'hosts.yaml'));
    expect(c.sshConfig).toBe(join(dir, 'ssh_config'));
    expect(c.server).toEqual({ destination: 'server', sudo: false, link: { interface: 'eth1' } });
    expect(c.client.sudo).toBe(true);
    expect(c.client.link.address).toBe('10.77.0.2');
    expect(hostName(c.client)).toBe('kflex_client.example');
  });

  it('a missing ssh_config names the line and the path it looked for', () => {
    const p = problems(GOOD, '/nonexistent/hosts.yaml');
    expect(p).toEqual([expect.stringMatching(/^\/nonexistent\/hosts\.yaml:1:13: ssh_config: no file \/nonexistent\/ssh_config; /)]);
  });

  it('reports each bad field with file:line:col, the field path and what is allowed', () => {
    const text = `server:
  destination: -oProxyCommand=evil
  link: { interface: eth1/x, address: 10.0.0.300 }
client:
  destination: client
  sudo: yes please
  link: { interface: eth1, adress: 10.0.0.2 }
`;
    const p = problems(text);
    expect(p).toContainEqual(expect.stringMatching(/^\/x\/hosts\.yaml:2:16: server\.destination: an OpenSSH destination .* not starting with "-"/));
    expect(p).toContainEqual(expect.stringMatching(/^\/x\/hosts\.yaml:3:22: server\.link\.interface: a Linux interface name/));
    expect(p).toContainEqual(expect.stringMatching(/^\/x\/hosts\.yaml:3:39: server\.link\.address: an IPv4 address/));
    expect(p).toContainEqual(expect.stringMatching(/^\/x\/hosts\.yaml:6:9: client\.sudo: expected boolean, got string/));
    expect(p).toContainEqual(expect.stringMatching(/^\/x\/hosts\.yaml:7:9: client\.link: unknown field\(s\) adress; allowed: interface, mac, address/));
  });

  it('a missing section or field says so at the nearest enclosing line', () => {
    expect(problems('server:\n  destination: a\n  link: { interface: eth1 }\n')).toEqual(['/x/hosts.yaml:1:1: client: missing; expected object']);
    expect(problems('server:\n  destination: a\nclient:\n  destination: b\n  link: { interface: eth1 }\n')).toEqual([
      '/x/hosts.yaml:2:3: server.link: missing; expected object',
    ]);
  });

  it('unknown top-level fields, ssh:// URIs and YAML syntax errors are refused with positions', () => {
    expect(problems(`${GOOD.replace('ssh_config: ./ssh_config\n', '')}sever: {}\n`)).toEqual([
      expect.stringMatching(/^\/x\/hosts\.yaml:1:1: \(file\): unknown field\(s\) sever; allowed: ssh_config, server, client$/),
    ]);
    expect(problems(GOOD.replace('ssh_config: ./ssh_config\n', '').replace('destination: server', 'destination: ssh://root@h:2222'))[0]).toMatch(
      /:2:16: server\.destination: .*write destination: host with user: and port:/,
    );
    expect(problems('server: [\n')[0]).toMatch(/^\/x\/hosts\.yaml:\d+:\d+: YAML syntax: /);
  });

  it('refuses one destination for both roles and one address on both sides', () => {
    const p = problems(
      GOOD.replace('ssh_config: ./ssh_config\n', '')
        .replace('kflex@client.example', 'server')
        .replace('address: 10.77.0.2', 'address: 10.77.0.2')
        .replace('link: { interface: eth1 }', 'link: { interface: eth1, address: 10.77.0.2 }'),
    );
    expect(p).toEqual([
      expect.stringMatching(/:5:16: client\.destination: 'server' is the server's destination too/),
      expect.stringMatching(/:9:14: client\.link\.address: 10\.77\.0\.2 is the server's link address too/),
    ]);
  });
});

describe("OpenSSH argv for the user's machines", () => {
  const t = { role: 'server', destination: 'lab-server', sshConfig: '/home/u/.ssh/kflex_config', controlPath: '/tmp/kflex-ssh-x/%C' };

  it("uses the user's ssh config and batch mode, never the lab's key or a known_hosts of its own", () => {
    const argv = openSshArgv(t, ['sh', '-c', 'echo "$1"', 'x', 'a b']);
    expect(argv.slice(0, 3)).toEqual(['ssh', '-F', '/home/u/.ssh/kflex_config']);
    expect(argv).toContain('BatchMode=yes');
    expect(argv.join(' ')).not.toMatch(/IdentityFile|UserKnownHostsFile|StrictHostKeyChecking|\/dev\/null/);
    // The destination follows '--', and the remote command is one quoted word per argv element.
    expect(argv.slice(-3)).toEqual(['--', 'lab-server', `sh -c 'echo "$1"' x 'a b'`]);
    // POSIX quoting, not bash's $'...': the login shell may be dash or zsh.
    expect(openSshArgv(t, ['echo', "it's"]).at(-1)).toBe(`echo 'it'\\''s'`);
    expect(argv).toContain('ControlPath=/tmp/kflex-ssh-x/%C');
  });

  it('without ssh_config, OpenSSH reads ~/.ssh/config by itself: no -F', () => {
    expect(openSshArgv({ role: 'client', destination: 'c' }, ['true'])).not.toContain('-F');
    expect(openSshArgv({ role: 'client', destination: 'c', user: 'bob', port: 2222 }, ['true'])).toEqual(expect.arrayContaining(['User=bob', 'Port=2222']));
  });

  it('sudo is argv, non-interactive; scp goes to dest:path', () => {
    expect(withSudo(['ip', 'link'], true)).toEqual(['sudo', '-n', '--', 'ip', 'link']);
    expect(withSudo(['ip', 'link'], false)).toEqual(['ip', 'link']);
    expect(openScpArgv(t, '/a/b.o', scpRemote(t, '/tmp/b.o')).slice(-3)).toEqual(['--', '/a/b.o', 'lab-server:/tmp/b.o']);
  });
});
