import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CONFIG } from '../../core/config.js';
import { ConfigError, LabError } from '../../core/errors.js';
import { labConfig } from '../../lab/config.js';
import { chooseTestbed } from '../../lab/testbeds.js';
import { hostsFileFor } from '../../lab/hosts.js';
import { loadHostsConfig } from '../../hosts/config.js';
import { tempDir, writeConfig } from '../helpers.js';

const base = readFileSync(DEFAULT_CONFIG, 'utf8');
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

/** lab.yaml with one more profile (extends paper) whose body is `body`, indented under it. */
function withProfile(body: string): string {
  return writeConfig(`${base}\n  mine:\n    extends: paper\n${body.replace(/^/gm, '    ')}\n`);
}

/** A hosts.yaml as `hosts from-manifest` writes it (MAC-named link NICs, sudo). */
const FROM_MANIFEST = `server:
  destination: alice@pc1.clemson.cloudlab.us
  sudo: true
  link: { mac: 3c:fd:fe:55:a1:c0, address: 10.0.0.1 }
client:
  destination: alice@pc2.clemson.cloudlab.us
  sudo: true
  link: { mac: 3c:fd:fe:55:a1:c4, address: 10.0.0.2 }
`;

describe('lab.yaml testbed: section', () => {
  it('paper-cloudlab is paper on two booked hosts: the hosts file the user wrote, the CloudLab type named', () => {
    const c = labConfig({ profile: 'paper-cloudlab' });
    const paper = labConfig({ profile: 'paper' });
    expect(c.profile.testbed).toEqual({ kind: 'hosts', file: 'hosts.yaml', cloudlab: { hardware_type: 'c6420' } });
    expect(c.profile.sources).toEqual(paper.profile.sources);
    expect(c.profile.experiments).toEqual(paper.profile.experiments);
    expect(paper.profile.testbed).toBeUndefined();
    expect(c.testbedOrigin).toBe(`${DEFAULT_CONFIG}:${lineOf(base, 'file: hosts.yaml')}:13`);
  });

  it('override order: --testbed FILE, then --set testbed.file, then lab.yaml, else the VMs', () => {
    const dir = tempDir();
    for (const f of ['a.yaml', 'b.yaml']) writeFileSync(join(dir, f), FROM_MANIFEST);
    expect(chooseTestbed(labConfig({ profile: 'paper' }))).toEqual({ kind: 'vm', origin: 'default' });
    const file = withProfile(`testbed: { kind: hosts, file: ${join(dir, 'a.yaml')} }`);
    const fromFile = labConfig({ file, profile: 'mine' });
    expect(chooseTestbed(fromFile)).toEqual({ kind: 'hosts', file: join(dir, 'a.yaml'), origin: expect.stringMatching(/lab\.yaml:\d+:\d+$/) });
    const fromSet = labConfig({ file, profile: 'mine', set: [`testbed.file=${join(dir, 'b.yaml')}`] });
    expect(chooseTestbed(fromSet)).toEqual({ kind: 'hosts', file: join(dir, 'b.yaml'), origin: `--set testbed.file=${join(dir, 'b.yaml')}` });
    expect(chooseTestbed(fromSet, join(dir, 'a.yaml'))).toEqual({ kind: 'hosts', file: join(dir, 'a.yaml'), origin: `--testbed ${join(dir, 'a.yaml')}` });
    // --testbed also puts a VM profile on hosts; a child profile can go back to the VMs.
    expect(chooseTestbed(labConfig({ profile: 'paper' }), join(dir, 'a.yaml')).kind).toBe('hosts');
    expect(chooseTestbed(labConfig({ profile: 'paper-cloudlab', set: ['testbed={kind: vm}'] })).kind).toBe('vm');
  });

  it("a profile's hosts file that is not there names the lab.yaml line and how to write it", () => {
    const cwd = process.cwd();
    process.chdir(tempDir());
    try {
      const c = labConfig({ profile: 'paper-cloudlab' });
      const p = problems(() => chooseTestbed(c));
      expect(p).toEqual([
        `${DEFAULT_CONFIG}:${lineOf(base, 'file: hosts.yaml')}:13: testbed.file: no file ${join(process.cwd(), 'hosts.yaml')} ` +
          "(profile paper-cloudlab; relative to the working directory); write it with 'kflex-lab hosts from-manifest manifest.xml > hosts.yaml' here, " +
          'or pass --testbed FILE, or --set testbed.file=PATH',
      ]);
      // Written as the walkthrough says, the hosts verbs and reproduce find it.
      writeFileSync('hosts.yaml', FROM_MANIFEST);
      expect(hostsFileFor(c)).toBe(join(process.cwd(), 'hosts.yaml'));
      expect(loadHostsConfig(hostsFileFor(c)).server.link.mac).toBe('3c:fd:fe:55:a1:c0');
    } finally {
      process.chdir(cwd);
    }
  });

  it('the hosts verbs on a VM profile say what to pass', () => {
    try {
      hostsFileFor(labConfig({ profile: 'smoke' }));
      throw new Error('expected a LabError');
    } catch (e) {
      expect(e).toBeInstanceOf(LabError);
      expect((e as LabError).message).toBe("profile smoke runs on the lab's VMs: the hosts verbs need two machines of yours");
      expect((e as LabError).hint).toMatch(/--testbed hosts\.yaml, or a profile with a testbed: \{ kind: hosts \} section \(e\.g\. --profile paper-cloudlab\)/);
    }
  });

  it('inline hosts are checked by the hosts rules with lab.yaml positions, and handed to the testbed as a hosts.yaml', () => {
    const inline = `testbed:\n  kind: hosts\n  hosts:\n${FROM_MANIFEST.replace(/^/gm, '    ')}`;
    const file = withProfile(inline);
    const cache = tempDir();
    const c = labConfig({ file, profile: 'mine', set: [] });
    const t = chooseTestbed({ ...c, cacheRoot: cache });
    expect(t.kind).toBe('hosts');
    expect(t.file!.startsWith(join(cache, 'testbeds', 'mine-'))).toBe(true);
    const h = loadHostsConfig(t.file!);
    expect(h.server).toEqual({ destination: 'alice@pc1.clemson.cloudlab.us', sudo: true, link: { mac: '3c:fd:fe:55:a1:c0', address: '10.0.0.1' } });
    expect(h.client.link.address).toBe('10.0.0.2');

    const bad = withProfile(
      inline.replace('link: { mac: 3c:fd:fe:55:a1:c4, address: 10.0.0.2 }', 'link: { address: 10.0.0.2 }').replace('sudo: true', 'sudo: yes please'),
    );
    const text = readFileSync(bad, 'utf8');
    expect(problems(() => labConfig({ file: bad, profile: 'mine' }))).toEqual([
      `${bad}:${lineOf(text, 'sudo: yes please')}:17: testbed.hosts.server.sudo: expected boolean, got string`,
    ]);
    const noNic = withProfile(inline.replace('link: { mac: 3c:fd:fe:55:a1:c4, address: 10.0.0.2 }', 'link: { address: 10.0.0.2 }'));
    const t2 = readFileSync(noNic, 'utf8');
    expect(problems(() => labConfig({ file: noNic, profile: 'mine' }))).toEqual([
      `${noNic}:${lineOf(t2, 'link: { address: 10.0.0.2 }')}:17: testbed.hosts.client.link: names no NIC; ` +
        'give interface: (e.g. enp1s0f0) or mac: (e.g. 3c:fd:fe:55:f8:a2, resolved on the host)',
    ]);
    // An override inside the inline hosts is named as the cause.
    const same = problems(() => labConfig({ file, profile: 'mine', set: ['testbed.hosts.client.destination=alice@pc1.clemson.cloudlab.us'] }));
    expect(same[0]).toBe(
      "--set testbed.hosts.client.destination=alice@pc1.clemson.cloudlab.us: testbed.hosts.client.destination: 'alice@pc1.clemson.cloudlab.us' " +
        "is the server's destination too; the server and the client must be two machines",
    );
    expect(same[1]).toMatch(/lab\.yaml:\d+:11: testbed\.hosts\.client: records under the same name 'alice_pc1\.clemson\.cloudlab\.us' as the server/);
  });

  it('names the field, the line and the fix for a wrong testbed section', () => {
    const both = withProfile('testbed: { kind: hosts, file: hosts.yaml, hosts: { server: {} } }');
    expect(problems(() => labConfig({ file: both, profile: 'mine' }))).toEqual([
      `${both}:${lineOf(readFileSync(both, 'utf8'), 'testbed: { kind: hosts, file')}:54: testbed: gives both file: (hosts.yaml) and hosts:; ` +
        'keep one (a profile extending one with file: drops it with file: null)',
    ]);
    const none = withProfile('testbed: { kind: hosts }');
    expect(problems(() => labConfig({ file: none, profile: 'mine' }))[0]).toMatch(
      /lab\.yaml:\d+:14: testbed: kind hosts names no machines; give file: hosts\.yaml \(what 'kflex-lab hosts from-manifest manifest\.xml > /,
    );
    expect(problems(() => labConfig({ profile: 'paper-cloudlab', set: ['testbed.kind=cloudlab'] }))).toEqual([
      '--set testbed.kind=cloudlab: testbed.kind: unknown kind; allowed: vm, hosts',
    ]);
    expect(problems(() => labConfig({ profile: 'paper-cloudlab', set: ['testbed.cloudlab.hardware_type=C6420 '] }))).toEqual([
      '--set testbed.cloudlab.hardware_type=C6420 : testbed.cloudlab.hardware_type: a CloudLab hardware type such as c6420',
    ]);
    const typo = withProfile('testbed: { kind: hosts, file: hosts.yaml, hardware_type: c6420 }');
    expect(problems(() => labConfig({ file: typo, profile: 'mine' }))[0]).toMatch(
      /lab\.yaml:\d+:\d+: testbed: unknown field\(s\) hardware_type; check the spelling against lab\.yaml/,
    );
    // A child profile replaces the parent's file with inline hosts by dropping it.
    const swap = `${base}\n  mine:\n    extends: paper-cloudlab\n    testbed:\n      file: null\n      hosts:\n${FROM_MANIFEST.replace(/^/gm, '        ')}\n`;
    const c = labConfig({ file: writeConfig(swap), profile: 'mine' });
    expect(c.profile.testbed).toMatchObject({ kind: 'hosts', file: null, cloudlab: { hardware_type: 'c6420' } });
  });
});
