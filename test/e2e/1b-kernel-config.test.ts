import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lab, explain } from './cli.js';
import { ROOT, tempDir } from '../helpers.js';

// The paper profile's kernel is KFlex-linux (v6.9), which cannot be fetched here. Its configuration step
// (defconfig + the shared fragments + olddefconfig + verification; nothing compiled) runs against
// Debian's 6.12 (trixie), and the upstream profile's against the pinned 7.3 (trixie-backports): the
// fragments' version guards must pick, for each, options that all stick.
describe('the fragments hold per kernel version (6.12 from trixie, 7.3 from trixie-backports)', () => {
  const file = join(tempDir(), 'lab.yaml');
  writeFileSync(
    file,
    `${readFileSync(join(ROOT, 'lab.yaml'), 'utf8')}
  paper-on-6-12:
    extends: paper
    sources:
      kernel: { kind: debian-package, package: linux-source-6.12, suite: trixie }
`,
  );
  const configure = (...args: string[]) => lab(['build', 'kernel', '--configure-only', '--config', file, ...args]);

  it('paper on 6.12: defconfig + vm-guest + bpf-xdp, every option sticks; 6.12 is still asked PROC_SYSCTL and X86_5LEVEL', async () => {
    const r = await configure('--profile', 'paper-on-6-12');
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/^kernel 6\.12\.\d+ from linux-source-6\.12 \S+ \(trixie\): configuration verified, \d+ options from 3 fragments$/m);
    expect(r.stdout).toMatch(/^ {2}vm-guest\.config: not asked of 6\.12\.\d+ \(version guards\): CONFIG_SYSCTL$/m);
    expect(r.stdout).toMatch(/^ {2}bpf-xdp\.config: not asked of 6\.12\.\d+ \(version guards\): CONFIG_PGTABLE_LEVELS$/m);
  });

  it("smoke's tinyconfig fragments on 6.12: BASE_FULL is gone after v6.9, the guard asks BASE_SMALL off instead", async () => {
    const r = await configure('--profile', 'paper-on-6-12', '--set', 'kernel.base=tinyconfig', '--set', 'kernel.fragments=[tiny,vm-guest,bpf-xdp,bpf-cells]');
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/^ {2}tiny\.config: not asked of 6\.12\.\d+ \(version guards\): CONFIG_BASE_FULL$/m);
  });

  it('upstream on 7.3 (pinned): defconfig + vm-guest + bpf-xdp + bpf-cells, the three options no 7.3 Kconfig defines replaced', async () => {
    const r = await configure('--profile', 'upstream');
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(
      /^kernel 7\.3\.4 from linux-source-7\.3 7\.3\.4-1~bpo13\+1 \(trixie-backports\): configuration verified, \d+ options from 4 fragments$/m,
    );
    expect(r.stdout).toMatch(/^ {2}vm-guest\.config: not asked of 7\.3\.4 \(version guards\): CONFIG_PROC_SYSCTL$/m);
    expect(r.stdout).toMatch(/^ {2}bpf-xdp\.config: not asked of 7\.3\.4 \(version guards\): CONFIG_X86_5LEVEL$/m);
  });

  it('an option a version does not have, asked without a guard, still stops the configuration, named', async () => {
    const r = await configure('--profile', 'upstream', '--set', 'kernel.extra.X86_5LEVEL=y', '--set', 'kernel.extra.BASE_FULL=y');
    expect(r.code, explain(r)).toBe(3);
    expect(r.stderr).toMatch(/CONFIG_X86_5LEVEL=y \(fragment lab-extra\.config\) ended as absent: no Kconfig defines this symbol/);
    expect(r.stderr).toMatch(/CONFIG_BASE_FULL=y \(fragment lab-extra\.config\) ended as absent: no Kconfig defines this symbol/);
  });

  it('a pinned version the archive no longer has: the newest version there, the --set and the --source way out', async () => {
    const r = await configure('--profile', 'upstream', '--set', 'sources.kernel.version=7.3.0-1~bpo13+1');
    expect(r.code, explain(r)).toBe(2);
    expect(r.stderr).toMatch(
      /source kernel: Debian package linux-source-7\.3 7\.3\.0-1~bpo13\+1 is not in trixie-backports any more .*newest there: linux-source-7\.\d+ \S+/,
    );
    expect(r.stderr).toMatch(/fix: pin what is there .*--set sources\.kernel\.version=\S+\n {2}or: build from a tree you have: --source kernel=/);
  });
});
