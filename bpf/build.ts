import { join } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { LAB_ROOT } from '../core/paths.js';

export const BPF_DIR = join(LAB_ROOT, 'bpf');
export const XDP_PROBE_SRC = join(BPF_DIR, 'xdp_probe.bpf.c');
/** The lab's mechanism probes (one small program per KFlex mechanism and its upstream equivalent) and their shared header. */
export const MECHANISMS_DIR = join(BPF_DIR, 'mechanisms');

/** The mechanism probes' files, sorted: every `*.bpf.c` (each compiles to `<name>.bpf.o`) and the headers they include. */
export function mechanismFiles(dir = MECHANISMS_DIR): { sources: string[]; headers: string[] } {
  const names = readdirSync(dir).sort();
  return { sources: names.filter((n) => n.endsWith('.bpf.c')), headers: names.filter((n) => n.endsWith('.h')) };
}

/** argv to compile one BPF C file for --target=bpf with the chosen clang. */
export function bpfCompileArgv(clang: string, src: string, out: string): string[] {
  // asm/types.h lives under the multiarch include dir, which --target=bpf does not search.
  const multiarch = ['/usr/include/x86_64-linux-gnu', '/usr/include/aarch64-linux-gnu'].filter((d) => existsSync(d));
  return [clang, '--target=bpf', '-O2', '-g', '-Wall', '-Werror', ...multiarch.flatMap((d) => ['-I', d]), '-c', src, '-o', out];
}
