import { constants, accessSync, existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

/**
 * Whether KVM really runs guests. /dev/kvm can open, and even run firmware, while a Linux guest never
 * starts (seen on this workplace's nested hosts), so with a kernel the probe boots it and waits for its
 * banner on the serial port; without one it waits for SeaBIOS's banner on the debug port.
 */
export async function kvmUsable(kernel?: string): Promise<{ ok: boolean; why: string }> {
  if (!existsSync('/dev/kvm')) return { ok: false, why: '/dev/kvm does not exist' };
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, why: '/dev/kvm is not readable and writable by this user' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'kflex-kvm-'));
  const log = join(dir, 'console.log');
  const [argv, banner, what] = kernel
    ? [['-m', '256', '-serial', `file:${log}`, '-kernel', kernel, '-append', 'console=ttyS0 panic=-1'], 'Linux version', 'a Linux guest']
    : [['-m', '64', '-chardev', `file,id=dbg,path=${log}`, '-device', 'isa-debugcon,iobase=0x402,chardev=dbg'], 'SeaBIOS', 'guest firmware'];
  const child = spawn('qemu-system-x86_64', ['-machine', 'pc', '-accel', 'kvm', '-cpu', 'host', '-display', 'none', '-nodefaults', ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => (exited = true));
  try {
    for (let t = 0; t < 8000 && !exited; t += 200) {
      await new Promise((r) => setTimeout(r, 200));
      if (existsSync(log) && readFileSync(log, 'utf8').includes(banner)) return { ok: true, why: `${what} ran under KVM` };
    }
    return {
      ok: false,
      why: exited
        ? `qemu -accel kvm fails: ${
            stderr
              .trim()
              .split('\n')
              .filter((l) => !/warning/.test(l))
              .at(-1) ?? 'exited'
          }`
        : `/dev/kvm opens but ${what} printed nothing under KVM within 8 s (broken nested virtualization?)`,
    };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
