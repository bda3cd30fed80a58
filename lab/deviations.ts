import type { ResolvedConfig } from '../core/config.js';
import type { Deviation } from '../core/rundir.js';
import type { Accel } from '../core/accel.js';
import type { CellRecord, ExperimentCell } from '../experiments/cells.js';
import { paramsSlug } from '../experiments/cells.js';
import { heapDeviations } from './sizing.js';
import { bmcCacheEntries, bmcDeviations } from '../images/bmc.js';
import type { Capabilities } from '../experiments/types.js';
import { clientLoad, NOFILE_MARGIN, serverNofile } from '../experiments/server.js';
import { HEAP_FREE_MARGIN_KB, heapFreeBoundSeconds } from '../experiments/heaps.js';
import { plannedCapabilities } from '../experiments/requirements.js';

/** Differences every run of the lab has from the artifact's manual procedure, whatever the profile (an experiment's own are in its file). */
export const ALWAYS: Deviation[] = [
  {
    topic: 'XDP left attached',
    artifact: 'ffkx exits with its XDP program still attached to the NIC',
    lab: 'detaches XDP (ip link set dev IF xdp off) after every KFlex cell',
    why: 'the next cell (a baseline on the same NIC) would otherwise be measured through the previous XDP program',
    affects: 'memcache, redis-getset, redis-zadd',
  },
  {
    topic: 'host tuning',
    artifact: "the authors' scripts isolate CPUs and tune the host (isolate.sh, bench_preq.sh) before measuring",
    lab: "no host tuning inside the VMs beyond pinning ffkx-bench to CPU 0 (taskset -c 0, as the authors' script)",
    why: "the VMs' vCPUs are host threads the guest cannot isolate; tuning belongs to the host, which the lab does not change",
    affects: 'all',
  },
];

/** The toolchain and kernel configuration the profile builds, against the artifact's. */
function buildDeviations(config: ResolvedConfig): Deviation[] {
  const p = config.profile;
  const out: Deviation[] = [
    {
      topic: 'toolchain',
      artifact: "its own LLVM built from llvm-project main (> 18) for the BPF objects, the host's g++ for user space, the committed bpftool binary",
      lab:
        `clang >= ${p.toolchain.min_version} (policy ` +
        `${p.toolchain.policy}${p.toolchain.package ? `, package ${p.toolchain.package}` : ''}); ` +
        `user space built with clang-19/clang++-19 in a Debian ${p.image.suite} root; the ` +
        `distribution's bpftool`,
      why:
        'a packaged clang-19 takes a minute instead of hours; the committed bpftool needs glibc >= ' +
        "2.38; the guest suite's libraries must match the binaries",
      affects: 'all KFlex cells',
    },
  ];
  const src = p.sources[p.kernel.source];
  const isKflex = src?.kind === 'git' && /KFlex-linux/i.test(src.url);
  const kernelSource = isKflex
    ? 'KFlex-linux at the pinned commit'
    : src?.kind === 'debian-package'
      ? `Debian's ${src.package} (not a KFlex kernel)`
      : `${src?.kind ?? 'unknown'} source`;
  out.push({
    topic: 'kernel',
    artifact: "KFlex-linux (v6.9 fork) configured from the host distribution's .config plus make olddefconfig",
    lab:
      `${kernelSource}, ` +
      `configured from ${p.kernel.base} + fragments ` +
      `${p.kernel.fragments.join(', ')}${Object.keys(p.kernel.extra).length ? ` + ${JSON.stringify(p.kernel.extra)}` : ''}, ` +
      `every option verified`,
    why: isKflex
      ? 'a distribution config differs per evaluator; defconfig plus the lab fragments is reproducible and verified'
      : 'the smoke profile runs where the KFlex kernel cannot be built or booted: KFlex cells are skipped',
    affects: isKflex ? 'all' : 'all KFlex cells (skipped)',
  });
  // BMC as built for this profile: the lab's patch for upstream, its cache scaled to the server VM.
  if (p.image.bmc) out.push(...bmcDeviations({ variant: p.image.bmc, cache: { entries: bmcCacheEntries(p.vms.server.memory_mb) } }));
  if (!p.image.kflex)
    out.push({
      topic: 'KFlex user space',
      artifact: 'ffkx, ffkx-bench built from the artifact',
      lab: "not built into this profile's image",
      why: 'the profile has no KFlex kernel to run it on (image.kflex: false)',
      affects: 'all KFlex cells (skipped)',
    });
  return out;
}

/** A profile whose grid or measurement time differs from the artifact's load, per experiment. */
export function loadDeviations(cells: ExperimentCell[]): Deviation[] {
  const out: Deviation[] = [];
  const seen = new Set<string>();
  for (const c of cells) {
    const a = c.experiment.artifact;
    if (!a) continue;
    const diffs = Object.entries(a.params)
      .filter(([k, v]) => String(c.params[k]) !== String(v))
      .map(([k, v]) => `${k} ${c.params[k] === undefined ? '(not set)' : c.params[k]} (artifact ${v})`);
    const extra = Object.keys(c.params).filter((k) => !(k in a.params) && !a.inCommand?.includes(k));
    if (a.duration_s !== undefined && c.settings.duration_s !== a.duration_s) diffs.push(`measurement ${c.settings.duration_s} s (artifact ${a.duration_s} s)`);
    if (extra.length) diffs.push(`also sets ${extra.map((k) => `${k}=${c.params[k]}`).join(', ')}, which the artifact leaves at the client's default`);
    if (c.settings.warmup_s > 0) diffs.push(`${c.settings.warmup_s} s warm-up before measuring (the artifact has none)`);
    if (!diffs.length) continue;
    const key = `${c.experiment.id}\u0000${paramsSlug(c.params)}\u0000${diffs.join()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      topic: 'client load',
      artifact: a.command,
      lab: diffs.join('; '),
      why: 'the profile scales the load (smoke, --quick or a --set override) to what the host can run',
      affects: `${c.experiment.id} ${paramsSlug(c.params)}`,
    });
  }
  return out;
}

/** The server's link NIC has too few queue pairs for XDP_TX queues of its own (the kernel said so when the
 * lab's probe attached): XDP_TX then shares the stack's queues under a lock, which slows the in-kernel caches
 * that answer with XDP_TX. The tap link gives 2 x vCPU queue pairs; the socket link and some NICs cannot. */
export function xdpQueueDeviations(cells: ExperimentCell[], warnings: string[] = []): Deviation[] {
  if (!warnings.some((w) => /locked mode/.test(w))) return [];
  // The variants that declare native XDP (BMC, KFlex's memcache) answer from XDP with XDP_TX.
  const xdpTx = [...new Set(cells.filter((c) => c.variant.requires.some((r) => r.kind === 'native-xdp')).map((c) => `${c.experiment.id} (${c.variant.id})`))];
  if (!xdpTx.length) return [];
  return [
    {
      topic: 'XDP TX queues',
      artifact: "a NIC with an XDP TX queue per CPU (the paper's testbed)",
      lab: "the server's link NIC has fewer than 2 x vCPU queue pairs: XDP_TX shares the stack's queues under a lock",
      why: 'the link backend cannot give more queues (the socket link has one); the kernel printed its locked-mode warning when the probe attached',
      affects: xdpTx.join(', '),
    },
  ];
}

/**
 * The open-file limit each KFlex server cell's server gets (one row per cell and grid point): the client argv the
 * cell builds (Experiment.clientArgv, with the probed or planned programs), its connections, serverNofile of them.
 */
export function kflexServerLimits(
  cells: ExperimentCell[],
  caps: Capabilities,
): Array<{ cell: string; params: string; client: string[]; counted: string; connections: number; nofile: number; ofCell: ExperimentCell }> {
  const out = new Map<string, ReturnType<typeof kflexServerLimits>[number]>();
  for (const c of cells) {
    const argv = c.heapGiB ? c.experiment.clientArgv?.({ params: c.params, settings: c.settings, caps, serverIp: '<server>' }, c.variant) : undefined;
    if (!argv) continue;
    const cell = `${c.experiment.id}/${c.variant.id}`;
    const params = paramsSlug(c.params);
    const load = clientLoad(argv);
    out.set(`${cell} ${params}`, {
      cell,
      params,
      client: argv,
      counted: load.how,
      connections: load.connections,
      nofile: serverNofile(load.connections),
      ofCell: c,
    });
  }
  return [...out.values()];
}

/**
 * What the lab sets up around KFlex cells that the artifact's manual runs do not: each server's open-file limit
 * (the artifact starts ffkx under the default soft limit, 1024) and the wait for the last heap's memory between
 * KFlex cells (the artifact runs them back to back). Only for a profile that builds KFlex (image.kflex).
 */
export function kflexDeviations(config: ResolvedConfig, cells: ExperimentCell[], accel: Accel = 'kvm'): Deviation[] {
  const p = config.profile;
  const heapCells = cells.filter((c) => c.heapGiB && !c.variant.logOf);
  if (!p.image.kflex || !heapCells.length) return [];
  const experiments = [...new Set(cells.map((c) => c.experiment))];
  const caps = plannedCapabilities(p, experiments, { serverMemoryMb: 0, serverCpus: p.vms.server.cpus, la57: true, accel });
  const limits = kflexServerLimits(cells, caps);
  const variants = (cs: ExperimentCell[]) => [...new Set(cs.map((c) => `${c.experiment.id} (${c.variant.id})`))].join(', ');
  // Cells that hold more than one of their heaps at once (datastructures/kflex): lab/sizing.ts sizeServer makes room where the host can.
  const multi = [...new Set(heapCells.filter((c) => (c.variant.heapCopies ?? 1) > 1).map((c) => `${c.experiment.id}/${c.variant.id}`))].join(', ');
  const out: Deviation[] = [];
  if (limits.length)
    out.push({
      topic: 'server open files',
      artifact: "ffkx started from the evaluator's shell, under the default soft limit of 1024 open files",
      lab:
        `every server started with ulimit -n = the connections its cell's client opens + ${NOFILE_MARGIN}, in steps of 1024 ` +
        `(${[...new Set(limits.map((l) => `${l.cell} ${l.nofile} for ${l.connections}`))].join('; ')}); recorded per cell as server_nofile`,
      why:
        'ffkx keeps every accepted connection open, and a failed accept4 ends an accept loop (KFlex 567387b src/Socket.cpp:58-64; ' +
        'src/Main.cpp:222-228 --kredis exits, :376-391 and :550-591 --kmemcached/--kmemcache lose one of 16 accept threads): at 1024 ' +
        "the artifact's memtier load (-t 64 x 50 clients = 3,200 connections) would run out; a server that stops accepting fails its cell",
      affects: variants(limits.map((l) => l.ofCell)),
    });
  out.push({
    topic: 'heap-free wait',
    artifact: 'the KFlex experiments run back to back, each ffkx or ffkx-bench started as the last one exits',
    lab:
      `before each KFlex cell after the first, a wait (the cell's heap-free phase, heap-free.json) until the server's MemAvailable is back ` +
      `within ${HEAP_FREE_MARGIN_KB / 1024} MiB of its level before the first, at most ${heapFreeBoundSeconds(accel)} s` +
      (multi ? `; inside ${multi}, which frees and reallocates its heap per benchmark, ` : '') +
      (multi ? 'the server VM is sized for two of its heaps where the host holds them' : ''),
    why:
      'a heap is freed after its process exits, through an RCU grace period and a workqueue (KFlex-linux kernel/bpf/syscall.c bpf_map_put, ' +
      'kernel/bpf/heap.c heap_map_free); the server VM holds one heap and the guest, so the next heap could fail to allocate',
    affects: variants(heapCells),
  });
  return out;
}

/** Everything that makes this run's numbers differ from the artifact's, for the manifest and the report. */
export function runDeviations(
  config: ResolvedConfig,
  facts: { accel?: Accel; cells: ExperimentCell[]; records?: CellRecord[]; xdpWarnings?: string[] },
): Deviation[] {
  const out: Deviation[] = [];
  out.push(...xdpQueueDeviations(facts.cells, facts.xdpWarnings));
  if (facts.accel === 'tcg')
    out.push({
      topic: 'accelerator',
      artifact: 'bare metal (two servers, 10G NIC)',
      lab: 'VMs under TCG (software emulation, no usable KVM)',
      why: 'this host has no usable KVM: every number is functional only, not performance-comparable with the paper',
      affects: 'all',
    });
  else if (facts.accel === 'kvm')
    out.push({
      topic: 'testbed',
      artifact: 'bare metal (two servers, 10G NIC)',
      lab: 'two KVM VMs joined by a virtio-net link (native XDP verified)',
      why: 'the lab builds its own testbed; bare-metal numbers need the SSH testbed',
      affects: 'all',
    });
  // Each experiment of the run declares its own standing differences (errata of the artifact, say).
  const experiments = [...new Set(facts.cells.map((c) => c.experiment))];
  const declared = experiments.flatMap((e) => e.deviations?.(config.profile) ?? []);
  out.push(...buildDeviations(config), ...heapDeviations(config.profile), ...ALWAYS, ...declared, ...loadDeviations(facts.cells));
  out.push(...kflexDeviations(config, facts.cells, facts.accel));
  // What a cell itself reported, e.g. a substituted client.
  const bySubst = new Map<string, string[]>();
  for (const r of facts.records ?? []) for (const d of r.deviations ?? []) bySubst.set(d, [...(bySubst.get(d) ?? []), `${r.experiment}/${r.variant}`]);
  for (const [d, cells] of bySubst) {
    const affects = [...new Set(cells)].join(', ');
    if (d.startsWith('kflex-lab: kernel log'))
      out.push({
        topic: 'kernel log',
        artifact: 'dmesg read after the run',
        lab: d.replace(/^kflex-lab: /, ''),
        why: 'the printk ring buffer is smaller than what the cell logged',
        affects,
      });
    else
      out.push({ topic: 'substitution', artifact: 'the client the artifact names', lab: d, why: 'the named client is not available in this image', affects });
  }
  return out;
}
