import { basename } from 'node:path';
import type { OsRelease } from './facts.js';
import { guestPrograms } from '../experiments/index.js';

/** The package managers the lab can drive on a user's machine (others get the binaries' names and a note). */
export type PackageManager = 'apt' | undefined;

export function packageManagerOf(os: OsRelease): PackageManager {
  return os.id === 'debian' || os.id === 'ubuntu' || os.idLike.includes('debian') || os.idLike.includes('ubuntu') ? 'apt' : undefined;
}

/** Binaries no distribution package provides, and what to do instead: as the experiments declare them (by name). */
export const NOT_PACKAGED: Record<string, string> = Object.fromEntries(
  (['server', 'client'] as const).flatMap((role) =>
    guestPrograms(role)
      .filter((p) => p.notPackaged)
      .map((p) => [basename(p.name), p.notPackaged!]),
  ),
);
NOT_PACKAGED['ffkx-bench'] = 'built with ffkx (see ffkx)';

/** Debian/Ubuntu packages that provide each binary: the harness's here, the experiments' as they declare them. */
export function aptPackagesFor(binary: string, os: OsRelease, kernelRelease: string): string[] | undefined {
  const ubuntu = os.id === 'ubuntu' || os.idLike.includes('ubuntu');
  const table: Record<string, string[]> = {
    // Ubuntu ships bpftool in the kernel's tools package; Debian has its own.
    bpftool: ubuntu ? ['linux-tools-common', `linux-tools-${kernelRelease}`] : ['bpftool'],
    ip: ['iproute2'],
    ss: ['iproute2'],
    taskset: ['util-linux'],
    dmesg: ['util-linux'],
    pgrep: ['procps'],
    ping: ['iputils-ping'],
    ethtool: ['ethtool'],
    bash: ['bash'],
  };
  const declared = (['server', 'client'] as const).flatMap((role) => guestPrograms(role)).find((p) => p.name === binary && p.apt);
  return table[binary] ?? declared?.apt;
}

/** What to install for a list of missing binaries: packages (deduplicated, in order), and binaries no package has. */
export function installPlan(missing: string[], os: OsRelease, kernelRelease: string): { manager: PackageManager; packages: string[]; unpackaged: string[] } {
  const manager = packageManagerOf(os);
  const packages: string[] = [];
  const unpackaged: string[] = [];
  for (const b of missing) {
    const pkgs = manager === 'apt' ? aptPackagesFor(b, os, kernelRelease) : undefined;
    if (!pkgs) unpackaged.push(b);
    else for (const p of pkgs) if (!packages.includes(p)) packages.push(p);
  }
  return { manager, packages, unpackaged };
}

/** The one line a user pastes on that host; undefined when nothing installable is missing. */
export function installLine(plan: { manager: PackageManager; packages: string[]; unpackaged: string[] }, asRoot: boolean, os: OsRelease): string | undefined {
  if (plan.manager === 'apt' && plan.packages.length) return `${asRoot ? '' : 'sudo '}apt-get install -y ${plan.packages.join(' ')}`;
  if (!plan.manager && plan.unpackaged.length) return `(no package mapping for ${os.pretty}: install ${plan.unpackaged.join(', ')} with its package manager)`;
  return undefined;
}
