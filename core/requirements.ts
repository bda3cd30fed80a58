import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { LAB_ROOT } from './paths.js';
import { delimiter, join } from 'node:path';
import type { Profile, Source } from './config.js';
import { LabError, ExitCode } from './errors.js';

/**
 * One thing the host must have for a part of the lab: a program (looked up on PATH as `command -v`
 * does) or, with `file`, a header/keyring that has no program. Each names the Debian package that
 * provides it: the doctor folds the missing ones into its apt-get line and .ci/install-deps installs
 * the union of every declared package (.ci/host-packages, generated from these declarations).
 */
export interface HostNeed {
  name: string;
  /** Checked by existence instead of PATH lookup. */
  file?: string;
  package: string;
  /** Who runs it and for what: the doctor prints this when it is missing. */
  why: string;
  /** A doctor check that covers it more precisely (e.g. any clang >= the minimum, not only clang-19): not checked by name. */
  checkedBy?: string;
  /** Set when the lab works without it: what is lost. The doctor warns instead of failing; install-deps still installs it. */
  optional?: string;
}

/** The needs of one stage (or of the testbed, or of the tests), as the doctor reports them. */
export interface NeedGroup {
  stage: string;
  needs: readonly HostNeed[];
}

/** What materializing a source runs on the host, by its kind (core/sources.ts). */
export const SOURCE_NEEDS: Record<Source['kind'], readonly HostNeed[]> = {
  git: [
    { name: 'git', package: 'git', why: 'fetches the pinned commit of a git source (git init/fetch/checkout)' },
    // git only recommends it, and install-deps installs no recommends.
    {
      name: 'ca-certificates',
      file: '/etc/ssl/certs/ca-certificates.crt',
      package: 'ca-certificates',
      why: "git checks the https:// source hosts' certificates against it",
    },
  ],
  'debian-package': [
    { name: 'apt-get', package: 'apt', why: 'downloads the Debian source package (apt-get download)' },
    { name: 'apt-cache', package: 'apt', why: 'names the versions the archive has when a pinned version has left it (apt-cache madison)' },
    { name: 'dpkg-deb', package: 'dpkg', why: 'unpacks the downloaded .deb' },
    { name: 'tar', package: 'tar', why: 'unpacks the source tarball the package ships (/usr/src/*.tar.xz)' },
    { name: 'xz', package: 'xz-utils', why: 'tar calls xz for the .tar.xz that linux-source-* ships' },
  ],
  // A tarball is unpacked by the tar npm package; a path is used as it is (git is only probed, optional).
  tarball: [],
  path: [],
};

/** The VMs and the link between them (vm/, core/keys.ts, core/ssh.ts): every `up`, `run` and `reproduce`. */
export const TESTBED_NEEDS: readonly HostNeed[] = [
  { name: 'qemu-system-x86_64', package: 'qemu-system-x86', why: 'runs the server and client VMs (and the KVM probe)' },
  { name: 'qemu-img', package: 'qemu-utils', why: 'makes the per-run qcow2 overlays of the base image' },
  { name: 'ssh', package: 'openssh-client', why: 'runs every command in the guests' },
  { name: 'scp', package: 'openssh-client', why: 'copies the XDP probe into the server and files out of the guests' },
  { name: 'ssh-keygen', package: 'openssh-client', why: "makes the lab's SSH identity and the guests' pinned host key" },
  { name: 'ip', package: 'iproute2', why: 'makes the network namespace, bridge and taps of the link (tap backend)' },
  { name: 'nc', package: 'netcat-openbsd', why: "the ssh_config that `up` writes reaches a VM in the lab's namespace with `ip netns exec NS nc`" },
  { name: 'dmesg', package: 'util-linux', why: "reads the host's TSC frequency from its kernel log, for a TCG guest's clock (vm/clock.ts)" },
];

/** What only the test suites and `npm run bench` run (not the lab): installed by .ci/install-deps, not checked by the doctor. */
export const TEST_NEEDS: readonly HostNeed[] = [
  {
    name: 'chromium',
    file: '/usr/bin/chromium',
    package: 'chromium',
    why: "test/e2e/3-reproduce opens the report in a headless browser (playwright-core drives the system's chromium)",
  },
  { name: 'pgrep', package: 'procps', why: 'the e2e VM tests look for leftover QEMUs' },
  { name: 'pkill', package: 'procps', why: 'npm run bench stops the bare QEMU it timed' },
  { name: 'chroot', package: 'coreutils', why: 'test/e2e/0-fresh-host runs .ci/install-deps in a minimal Debian root' },
  { name: 'python3', package: 'python3', why: 'test/unit/cloudlab parses the generated CloudLab profile.py with Python' },
];

/** The toolchain packages a profile names (toolchain.package, e.g. clang-19, and its llvm-19 for llc). */
export function toolchainNeeds(t: Profile['toolchain']): HostNeed[] {
  if (t.policy === 'source' || t.path || !t.package) return [];
  const llvm = t.package.replace(/^clang/, 'llvm');
  const llc = t.package.replace(/^clang/, 'llc');
  return [
    { name: t.package, package: t.package, why: `toolchain.package: compiles bpf/xdp_probe.bpf.c (and KFlex's BPF code) for --target=bpf`, checkedBy: 'clang' },
    { name: llc, package: llvm, why: 'tells whether the clang has the BPF target (llc --version)', checkedBy: 'clang' },
  ];
}

/** Whether `name` is an executable file in one of PATH's directories (what `command -v` finds). */
export function findOnPath(name: string, path: string | undefined = process.env.PATH): string | undefined {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const f = join(dir, name);
    try {
      if (!statSync(f).isFile()) continue;
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export interface MissingNeed {
  need: HostNeed;
  /** Every group (stage) that declared it. */
  stages: string[];
}

/** The declared needs that are absent on this host, each once, with every stage that needs it. */
export function missingNeeds(groups: readonly NeedGroup[], path: string | undefined = process.env.PATH): MissingNeed[] {
  const byKey = new Map<string, MissingNeed>();
  for (const g of groups)
    for (const need of g.needs) {
      if (need.checkedBy) continue;
      const present = need.file ? existsSync(need.file) : !!findOnPath(need.name, path);
      if (present) continue;
      const key = need.file ?? need.name;
      const seen = byKey.get(key);
      if (seen) {
        if (!seen.stages.includes(g.stage)) seen.stages.push(g.stage);
      } else byKey.set(key, { need, stages: [g.stage] });
    }
  return [...byKey.values()];
}

/** One line per missing need: what, who needs it and why. */
export function describeMissing(m: MissingNeed): string {
  const what = m.need.file ? `${m.need.file} (${m.need.name})` : m.need.name;
  return `${what} not found; the ${m.stages.join(' and ')} ${m.stages.length > 1 ? 'stages need' : 'stage needs'} it: ${m.need.why}`;
}

/**
 * Fail a stage at its start, not minutes into its build, when a program it runs is missing
 * (the same declarations the doctor checks, for `build`, which runs no doctor).
 */
export function requireNeeds(stage: string, needs: readonly HostNeed[], path: string | undefined = process.env.PATH): void {
  const missing = missingNeeds([{ stage, needs }], path).filter((m) => !m.need.optional);
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map((m) => m.need.package))];
  throw new LabError(
    `${missing.map(describeMissing).join('\n')}\ninstall: apt-get install -y ${pkgs.join(' ')} (or run: bash .ci/install-deps)`,
    ExitCode.infra,
  );
}

/** Every package the groups declare, sorted, each with the programs that need it (for .ci/host-packages). */
export function packageTable(groups: readonly NeedGroup[]): Array<{ package: string; needs: string[] }> {
  const m = new Map<string, Set<string>>();
  for (const g of groups) for (const n of g.needs) (m.get(n.package) ?? m.set(n.package, new Set()).get(n.package)!).add(`${g.stage}: ${n.name}`);
  return [...m.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([pkg, needs]) => ({ package: pkg, needs: [...needs].sort() }));
}

export const HOST_PACKAGES_FILE = join(LAB_ROOT, '.ci', 'host-packages');

/** The text of .ci/host-packages: one package a line, what needs it in a comment; bash reads it before `npm ci`. */
export function renderHostPackages(groups: readonly NeedGroup[]): string {
  const head = [
    '# Debian packages .ci/install-deps installs: the union of every host program the lab declares',
    '# (core/requirements.ts, llvm/stage.ts, kernel/stage.ts, kernel/deb.ts, images/stage.ts, images/kflex.ts; gathered by lab/requirements.ts).',
    '# Generated; do not edit. Regenerate: npx tsx lab/requirements.ts --write (a unit test checks it is current).',
  ];
  return `${[...head, ...packageTable(groups).map((r) => `${r.package.padEnd(24)} # ${r.needs.join(', ')}`)].join('\n')}\n`;
}
