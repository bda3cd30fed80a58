import type { ResolvedConfig } from '../core/config.js';
import type { KflexPlan, planRun } from '../lab/plan.js';

type Planned = Awaited<ReturnType<typeof planRun>>;

/** `plan --json`: the resolved profile, the stages, the host judged and each cell's forecast. */
export function planJson(config: ResolvedConfig, planned: Planned): string {
  const { stages, host, server, cells, kflex } = planned;
  return JSON.stringify({ profile: config.profileName, config: config.profile, stages, host, server, cells, ...(kflex ? { kflex } : {}) }, null, 2);
}

/** `plan`: the profile, its sources, stages and estimates, then which cells the host will run. */
export function planText(config: ResolvedConfig, planned: Planned): string {
  return [profileText(config), stagesText(config, planned), forecastText(planned), ...(planned.kflex ? [kflexText(planned.kflex)] : [])].join('\n\n');
}

export function describeSource(s: ResolvedConfig['profile']['sources'][string]): string {
  switch (s.kind) {
    case 'git':
      return `git ${s.url} @ ${s.commit ?? s.ref}`;
    case 'tarball':
      return `tarball ${s.url} sha256 ${s.sha256.slice(0, 12)}…`;
    case 'path':
      return `local path ${s.path}`;
    case 'debian-package':
      return `Debian package ${s.package}${s.version ? ` ${s.version}` : ''} (${s.suite ?? "host's suites"})`;
  }
}

/** What the profile resolves to: description, overrides, sources, toolchain, kernel, image, VMs, experiments. */
export function profileText(config: ResolvedConfig): string {
  const p = config.profile;
  const out = [`profile ${config.profileName} (${config.file})\n  ${p.description.trim()}`];
  if (Object.keys(config.overrides).length)
    out.push(
      `\noverrides:\n${Object.entries(config.overrides)
        .map(([k, v]) => `  ${k}  <- ${v}`)
        .join('\n')}`,
    );
  out.push('\nsources:', ...Object.entries(p.sources).map(([name, s]) => `  ${name.padEnd(8)} ${describeSource(s)}`));
  out.push(
    `\ntoolchain: policy ${p.toolchain.policy}, clang >= ${p.toolchain.min_version}${p.toolchain.package ? ` (package ${p.toolchain.package})` : ''}`,
    `kernel:    ${p.kernel.base} + fragments ${p.kernel.fragments.join(', ')}` +
      `${Object.keys(p.kernel.extra).length ? ` + extra ${JSON.stringify(p.kernel.extra)}` : ''}`,
    `image:     Debian ${p.image.suite}, ${p.image.size_mb} MiB, ${p.image.packages.length} packages${p.image.kflex ? ' + KFlex user space' : ''}`,
    `vms:       server ${p.vms.server.cpus} vCPU / ${p.vms.server.memory_mb} MiB, client ${p.vms.client.cpus} vCPU / ${p.vms.client.memory_mb} MiB, ` +
      `accel ${p.vms.accel}, link ${p.vms.link.backend} (mtu ${p.vms.link.mtu})`,
    ...(p.testbed?.kind === 'hosts'
      ? [
          `testbed:   two hosts over SSH (${p.testbed.file ? `file ${p.testbed.file}` : 'inline hosts'}` +
            `${p.testbed.cloudlab ? `; CloudLab ${p.testbed.cloudlab.hardware_type}` : ''}; --testbed FILE overrides): the vms above are not used`,
        ]
      : []),
    `experiments: ${Object.entries(p.experiments)
      .filter(([, e]) => e.enabled)
      .map(([id, e]) => `${id} [${e.variants.join(', ')}] x${e.repetitions}`)
      .join('; ')}`,
  );
  return out.join('\n');
}

/** The stage graph with fingerprints and what is cached, then the time and disk estimate. */
export function stagesText(config: ResolvedConfig, planned: Planned): string {
  const p = config.profile;
  const lines = planned.stages.map(
    (s) =>
      `  ${s.id.padEnd(7)} ${s.fingerprint}  ${s.cached ? 'cached        ' : `~${s.minutes.toFixed(0).padStart(3)} min build`}  deps: ` +
      `${s.deps.join(', ') || '-'}   ${s.description}`,
  );
  return [
    'stages (dependency order):',
    ...lines,
    `\nestimate on this host (${planned.cpus} CPUs): ~${planned.totalMinutes.toFixed(0)} min end to end (stages that do not depend on each other overlap), ` +
      `~${p.estimates.disk_gb} GiB disk, ~${p.estimates.ram_gb} GiB RAM`,
    `cache: ${config.cacheRoot}`,
  ].join('\n');
}

/** Which cells the host (this one or an assumed one) will run, and why not: the contract `plan --assume-host` answers. */
export function forecastText(planned: Pick<Planned, 'host' | 'server' | 'cells'>): string {
  const h = planned.host;
  const bare = planned.server.bareMetal;
  const head =
    `will ${h.source === 'this host' ? 'this host' : 'the assumed host'} run it? ` +
    `(${(h.ramMb / 1024).toFixed(0)} GiB RAM, ${h.cpus} CPUs, LA57 ${h.la57 ? 'yes' : 'no'}, ${bare ? 'bare metal' : `KVM ${h.kvm ? 'yes' : 'no'}`})`;
  const cells = planned.cells.map(
    (c) =>
      `  ${`${c.experiment}/${c.variant}`.padEnd(26)} ` +
      `${(c.heapGiB ? `heap ${c.heapGiB} GiB${c.scaled ? ' (scaled)' : ''}` : '').padEnd(22)} ` +
      `${c.verdict === 'run' ? 'runs' : `skipped: ${c.reason}`}`,
  );
  return [head, `  server${bare ? '' : ' VM'}: ${(planned.server.memoryMb / 1024).toFixed(1)} GiB (${planned.server.why})`, ...cells].join('\n');
}

/** What the paper path sets up around its KFlex cells: servers' open-file limits, the heap-free wait, the bench kfuncs, the link's queues. */
export function kflexText(k: KflexPlan): string {
  const h = k.heapFree;
  const width = Math.max(0, ...k.servers.map((s) => s.params.length));
  const servers = k.servers.map(
    (s) =>
      `    ${s.cell.padEnd(20)} ${s.params.padEnd(width)}  ${s.counted}: ${s.connections} connections -> nofile ${s.nofile}` +
      `${s.runs ? '' : ' (the cell is skipped on this host)'}`,
  );
  const kfuncs = k.benchKfuncs.map(
    (b) =>
      `  kfuncs: ${b.cell} needs the ${b.kfuncs.length} ${b.kfuncs[0]?.replace(/^(bpf_bench)_.*/, '$1')}_* kfuncs in the server kernel's BTF ` +
      `(${b.kfuncs[0]} ... ${b.kfuncs.at(-1)}): ` +
      `${b.planned ? "this profile's KFlex-linux builds them into vmlinux" : "this profile's kernel has none: the cell is skipped"}` +
      `${b.readBy.length ? `; ${b.readBy.join(', ')} reads its kernel log and needs the same` : ''}`,
  );
  const l = k.link;
  const link = l.bareMetal
    ? "  link NIC: two hosts: the server NIC's own queues (no VM link)"
    : `  link NIC (vms.link.backend ${l.backend}): tap link ${l.tapQueuePairs} queue pairs ` +
      `(2 x ${l.vcpus} vCPUs: one per vCPU for the stack, one per vCPU for XDP_TX); ` +
      `socket link ${l.socketQueuePairs} (XDP_TX shares the stack's queue under a lock: a deviation when the kernel warns)`;
  return [
    'KFlex cells:',
    `  server open files (ulimit -n): the connections the cell's client opens + ${k.nofileMargin}, in steps of 1024 (ffkx keeps every connection)`,
    ...servers,
    `  heap-free wait: before each KFlex cell after the first (${h.waits} of the ${h.heapCells} cells with a KFlex heap that run), ` +
      `until the server's MemAvailable is back within ${h.marginMiB} MiB of its level before the first; ` +
      `at most ${h.boundS} s each (${h.boundTcgS} s under TCG), read every ${h.pollS} s`,
    ...kfuncs,
    link,
  ].join('\n');
}
