import type { ResolvedConfig } from '../core/config.js';
import type { planRun } from '../lab/plan.js';

type Planned = Awaited<ReturnType<typeof planRun>>;

/** `plan --json`: the resolved profile, the stages, the host judged and each cell's forecast. */
export function planJson(config: ResolvedConfig, planned: Planned): string {
  const { stages, host, server, cells } = planned;
  return JSON.stringify({ profile: config.profileName, config: config.profile, stages, host, server, cells }, null, 2);
}

/** `plan`: the profile, its sources, stages and estimates, then which cells the host will run. */
export function planText(config: ResolvedConfig, planned: Planned): string {
  return [profileText(config), stagesText(config, planned), forecastText(planned)].join('\n\n');
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
