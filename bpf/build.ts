import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { LAB_ROOT } from '../core/paths.js';

export const BPF_DIR = join(LAB_ROOT, 'bpf');
export const XDP_PROBE_SRC = join(BPF_DIR, 'xdp_probe.bpf.c');

/** argv to compile one BPF C file for --target=bpf with the chosen clang. */
export function bpfCompileArgv(clang: string, src: string, out: string): string[] {
  // asm/types.h lives under the multiarch include dir, which --target=bpf does not search.
  const multiarch = ['/usr/include/x86_64-linux-gnu', '/usr/include/aarch64-linux-gnu'].filter((d) => existsSync(d));
  return [clang, '--target=bpf', '-O2', '-g', '-Wall', '-Werror', ...multiarch.flatMap((d) => ['-I', d]), '-c', src, '-o', out];
}
