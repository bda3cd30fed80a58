import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lab, explain } from './cli.js';
import { ROOT, tempDir } from '../helpers.js';

// The paper profile's kernel is KFlex-linux (v6.9), which cannot be fetched here. Its configuration step
// (defconfig + the shared fragments + olddefconfig + verification; nothing compiled) runs against a kernel
// newer than the smoke profile's 6.1 that apt provides, so a fragment that suits only 6.1 is caught here.
describe('the paper profile configures on a newer kernel (linux-source-6.12 from trixie)', () => {
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

  it('defconfig + vm-guest + bpf-xdp: every option sticks after olddefconfig', async () => {
    const r = await lab(['build', 'kernel', '--configure-only', '--config', file, '--profile', 'paper-on-6-12']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/^kernel 6\.12\.\d+ from linux-source-6\.12 \S+ \(trixie\): configuration verified, \d+ options from 3 fragments$/m);
  });

  it("the smoke profile's tinyconfig-only fragment is refused there, named (BASE_FULL is gone after v6.9)", async () => {
    const r = await lab([
      'build',
      'kernel',
      '--configure-only',
      '--config',
      file,
      '--profile',
      'paper-on-6-12',
      '--set',
      'kernel.fragments=[tiny,vm-guest,bpf-xdp]',
    ]);
    expect(r.code, explain(r)).toBe(3);
    expect(r.stderr).toMatch(/CONFIG_BASE_FULL=y \(fragment tiny\.config\) ended as absent/);
  });
});
