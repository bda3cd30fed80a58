import { totalmem, cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import type { Profile, ResolvedConfig } from '../core/config.js';
import { ARTIFACT_HEAPS } from '../core/config.js';
import type { Deviation } from '../core/rundir.js';
import { LabError, ExitCode } from '../core/errors.js';
import { heapVmMemoryMb, heapPlacement } from '../experiments/heaps.js';
import { plannedCapabilities, unmetRequirement } from '../experiments/requirements.js';
import type { ExperimentCell } from '../experiments/cells.js';
import type { Capabilities } from '../experiments/types.js';

/** The machine a plan is for: this host, or one described with --assume-host. */
export interface HostShape {
  ramMb: number;
  cpus: number;
  la57: boolean;
  kvm: boolean;
  source: 'this host' | 'assumed';
}

/** Parse `ram=256G,cpus=64,la57,kvm` (flags present = true; `nola57`/`nokvm` = false). */
export function parseAssumeHost(spec: string, base: HostShape): HostShape {
  const h: HostShape = { ...base, source: 'assumed' };
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [k, v] = part.split('=') as [string, string | undefined];
    if (k === 'ram') {
      const m = v?.match(/^(\d+(?:\.\d+)?)\s*([GMT])i?B?$/i);
      if (!m) throw new LabError(`--assume-host ram=${v}: give a size such as 256G or 65536M`, ExitCode.usage);
      h.ramMb = Math.round(Number(m[1]) * ({ M: 1, G: 1024, T: 1024 * 1024 } as const)[m[2]!.toUpperCase() as 'M' | 'G' | 'T']);
    } else if (k === 'cpus' && v && /^\d+$/.test(v)) h.cpus = Number(v);
    else if (k === 'la57' || k === 'kvm') h[k] = v === undefined ? true : v === 'yes' || v === 'true' || v === '1';
    else if (k === 'nola57') h.la57 = false;
    else if (k === 'nokvm') h.kvm = false;
    else throw new LabError(`--assume-host ${part}: unknown; use ram=SIZE, cpus=N, la57 or nola57, kvm or nokvm`, ExitCode.usage);
  }
  return h;
}

/** What this host looks like to the plan, before any VM boots (KVM as the doctor found it). */
export function thisHost(kvm: boolean): HostShape {
  let la57 = false;
  try {
    la57 = /\bla57\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    /* not Linux: no LA57 */
  }
  return { ramMb: Math.round(totalmem() / 2 ** 20), cpus: cpus().length, la57, kvm, source: 'this host' };
}

/**
 * The server VM's RAM for vms.server.memory_mb: auto: enough for the largest heap that will run (plus the
 * guest and its page bookkeeping), within what the host can give after the client VM and a reserve. A cell
 * that holds more than one of its heaps at once (VariantDef.heapCopies: ffkx-bench frees and reallocates its
 * heap per benchmark, and freeing is asynchronous) counts them all; when they do not fit but one does, the VM
 * is sized for one and `why` says so (the cell still runs, and an overlap can fail its allocation).
 */
export function sizeServer(profile: Profile, host: HostShape, cells: ExperimentCell[]): { memoryMb: number; why: string } {
  const m = profile.vms.server.memory_mb;
  if (m !== 'auto') return { memoryMb: m, why: 'vms.server.memory_mb' };
  const available = host.ramMb - profile.vms.client.memory_mb - profile.vms.host_reserve_mb;
  const heaps = [...new Set(cells.map((c) => c.heapGiB).filter((h): h is number => !!h))].sort((a, b) => a - b);
  const floor = 4096;
  const fits = (gib: number) => heapVmMemoryMb(gib) <= available;
  const multi = heapCopyNeeds(cells);
  // The largest heap (or set of a cell's heaps held at once) that fits in what the host can give decides; larger ones are skipped with the numbers.
  const fitting = [...heaps, ...multi.map((n) => n.gib)].filter(fits).sort((a, b) => a - b);
  const want = fitting.length ? heapVmMemoryMb(fitting.at(-1)!) : floor;
  const memoryMb = Math.max(floor, Math.min(want, Math.max(floor, available)));
  const skipped = heaps.filter((h) => !fits(h));
  const top = fitting.at(-1);
  const topMulti = multi.find((n) => n.gib === top && !heaps.includes(n.gib));
  const decides = topMulti ? `${topMulti.copies} heaps of ${topMulti.heap} GiB` : `the ${top} GiB heap`;
  // A cell whose one heap does not fit is skipped (named above with what it would need): no copies to speak of.
  const copies = multi
    .filter((n) => fits(n.heap))
    .map((n) =>
      fits(n.gib)
        ? `${n.cell}'s ${n.heap} GiB heap counted ${n.copies === 2 ? 'twice' : `${n.copies} times`} (${n.why})`
        : `${n.cell}'s ${n.copies} heaps of ${n.heap} GiB at once would need ${(heapVmMemoryMb(n.gib) / 1024).toFixed(0)} GiB: sized for one (${n.why})`,
    );
  return {
    memoryMb,
    why:
      `auto: ${top === undefined ? 'no KFlex heap fits' : `${decides} + the guest, its struct pages and page tables`}; ` +
      `host ${(host.ramMb / 1024).toFixed(0)} GiB - client ${profile.vms.client.memory_mb / 1024} GiB - ` +
      `reserve ${profile.vms.host_reserve_mb / 1024} GiB = ${(available / 1024).toFixed(1)} GiB available` +
      `${skipped.length ? `; ${skipped.map((h) => `${h} GiB`).join(', ')} heap(s) would need ` : ''}` +
      `${skipped.length ? skipped.map((h) => `${(heapVmMemoryMb(h) / 1024).toFixed(0)} GiB`).join(', ') : ''}` +
      `${copies.length ? `; ${copies.join('; ')}` : ''}`,
  };
}

/** The planned cells that hold more than one heap at once (heapCopies > 1): the GiB held together, and why. */
function heapCopyNeeds(cells: ExperimentCell[]): Array<{ cell: string; heap: number; copies: number; gib: number; why: string }> {
  const out = new Map<string, { cell: string; heap: number; copies: number; gib: number; why: string }>();
  for (const c of cells) {
    const copies = c.variant.heapCopies ?? 1;
    if (!c.heapGiB || copies < 2) continue;
    const cell = `${c.experiment.id}/${c.variant.id}`;
    const why = 'it frees and reallocates its heap per benchmark, and a heap is freed asynchronously';
    out.set(`${cell}/${c.heapGiB}`, { cell, heap: c.heapGiB, copies, gib: c.heapGiB * copies, why });
  }
  return [...out.values()];
}

/** The config with vms.server.memory_mb resolved to a number, for everything that boots. */
export function sizedConfig(config: ResolvedConfig, memoryMb: number): ResolvedConfig {
  const p = config.profile;
  return { ...config, profile: { ...p, vms: { ...p.vms, server: { ...p.vms.server, memory_mb: memoryMb } } } };
}

/** One row of `plan`'s answer to "will my host run it?". */
export interface CellForecast {
  experiment: string;
  variant: string;
  heapGiB?: number;
  scaled: boolean;
  serverMemoryMb: number;
  la57: boolean;
  kvm: boolean;
  verdict: 'run' | 'skip';
  reason?: string;
}

/**
 * Which cells would run on a host of this shape, judged by the same rules the run applies after its probe
 * (a KFlex kernel and ffkx are assumed present when the profile builds them).
 */
export function forecast(
  config: ResolvedConfig,
  cells: ExperimentCell[],
  host: HostShape,
): { server: { memoryMb: number; why: string; bareMetal?: boolean }; rows: CellForecast[]; caps: Capabilities } {
  const p = config.profile;
  // A profile whose testbed is two machines of yours runs the servers on the host itself: no VM, no TCG.
  const bare = p.testbed?.kind === 'hosts';
  const server = bare
    ? { memoryMb: host.ramMb, why: "bare metal, the profile's testbed is two hosts: the server's own RAM, no VM", bareMetal: true }
    : sizeServer(p, host, cells);
  const caps: Capabilities = {
    ...plannedCapabilities(p, [...new Set(cells.map((c) => c.experiment))], {
      serverMemoryMb: server.memoryMb,
      serverCpus: bare ? host.cpus : p.vms.server.cpus,
      // under TCG QEMU's -cpu max emulates LA57; under KVM, or on bare metal, it is the host's CPU
      la57: host.la57 || (!bare && !host.kvm),
      accel: bare ? 'native' : host.kvm ? 'kvm' : 'tcg',
    }),
    kernelRelease: 'of this profile',
  };
  const seen = new Set<string>();
  const rows: CellForecast[] = [];
  for (const c of cells) {
    const key = `${c.experiment.id}/${c.variant.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const why = unmetRequirement(c.variant, caps, c.heapGiB);
    const artifactHeap = c.variant.heap ? ARTIFACT_HEAPS[c.variant.heap] : c.variant.heapGiB;
    rows.push({
      experiment: c.experiment.id,
      variant: c.variant.id,
      heapGiB: c.heapGiB,
      scaled: !!c.heapGiB && !!artifactHeap && c.heapGiB < artifactHeap,
      serverMemoryMb: server.memoryMb,
      la57: caps.la57,
      kvm: host.kvm,
      verdict: why ? 'skip' : 'run',
      reason: why,
    });
  }
  return { server, rows, caps };
}

/** Scaled heaps are a deviation: what the artifact allocates, what this profile does, why. */
export function heapDeviations(profile: Profile): Deviation[] {
  const out: Deviation[] = [];
  for (const [prog, gib] of Object.entries(profile.kflex.heap_gib) as Array<[keyof typeof ARTIFACT_HEAPS, number]>) {
    const a = ARTIFACT_HEAPS[prog];
    if (gib !== a)
      out.push({
        topic: 'scaled heap',
        artifact: `ffkx_heap(${a}): a ${a} GiB heap for ${prog}`,
        lab: `ffkx_heap(${gib}) rewritten into the ${prog} program at build time (${gib} GiB)`,
        why: `the host cannot hold a ${a} GiB heap in the server VM; kflex.heap_gib.${prog} scales it`,
        affects: prog === 'bench' ? 'datastructures, guards' : { kmemcache: 'memcache', kmemcached: 'redis-getset', kredis: 'redis-zadd' }[prog],
      });
  }
  return out;
}

export { heapPlacement };
