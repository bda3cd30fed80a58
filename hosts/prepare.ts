import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KFLEX_GUEST_DIR } from '../core/guest.js';
import { KFLEX_RUNTIME_PACKAGES } from '../images/kflex.js';
import type { HostsConfig, Role } from './config.js';
import { hostName } from './config.js';
import { HostPair, inspectHosts, ROLES } from './check.js';
import type { HostFacts } from './facts.js';
import { installPlan, packageManagerOf, NOT_PACKAGED } from './packages.js';
import type { OpenSshHost } from './ssh.js';
import { allLedgersArgv, parseGuard } from '../core/processes.js';

/** What `prepare` changed on a host, so it can be listed and undone. */
export type InstallEntry =
  | { kind: 'apt'; at: string; requested: string[]; installed: string[]; command: string[] }
  | { kind: 'file'; at: string; path: string; from: string };

export interface InstallRecord {
  name: string;
  destination: string;
  entries: InstallEntry[];
}

export function recordPath(cacheRoot: string, name: string): string {
  return join(cacheRoot, 'hosts', name, 'installed.json');
}

export function readRecord(cacheRoot: string, name: string, destination: string): InstallRecord {
  const p = recordPath(cacheRoot, name);
  if (!existsSync(p)) return { name, destination, entries: [] };
  return JSON.parse(readFileSync(p, 'utf8')) as InstallRecord;
}

export async function writeRecord(cacheRoot: string, r: InstallRecord): Promise<void> {
  await mkdir(join(cacheRoot, 'hosts', r.name), { recursive: true });
  await writeFile(recordPath(cacheRoot, r.name), `${JSON.stringify(r, null, 2)}\n`);
}

/** `dpkg-query -W -f '${Package}\t${db:Status-Abbrev}\n'`: the packages whose status is installed. */
export function parseDpkgInstalled(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const [pkg, abbrev] = line.split('\t');
    // Status-Abbrev is desired/status/error, e.g. "ii "; "rc" is removed with its configuration left.
    if (pkg && abbrev?.[1] === 'i') out.add(pkg.split(':')[0]!);
  }
  return out;
}

/** Packages installed now that were not before: exactly what an install added (dependencies included). */
export function newlyInstalled(before: Set<string>, after: Set<string>): string[] {
  return [...after].filter((p) => !before.has(p)).sort();
}

/** Where the KFlex user space for hosts comes from: the kflex stage's build, if this profile has one. */
export interface KflexSource {
  /** The stage's output directory holding ffkx, ffkx-bench, ffkx-test and the BPF objects. */
  dir?: string;
  /** The Debian suite it was built for (and whose libraries it links). */
  suite: string;
  /** Why there is no build to copy, with the command that makes one. */
  why?: string;
}

export interface PrepareStep {
  host: Role;
  kind: 'apt' | 'copy-kflex' | 'note';
  packages?: string[];
  files?: string[];
  detail: string;
}

/** What prepare would do on one host, from its facts (pure: tested on captured facts). */
export function planPrepare(role: Role, f: HostFacts, kflex: KflexSource): PrepareStep[] {
  const steps: PrepareStep[] = [];
  const missing = Object.entries(f.binaries)
    .filter(([, p]) => !p)
    .map(([b]) => b);
  const plan = installPlan(missing, f.os, f.kernel);
  const kflexMissing = role === 'server' && Object.values(f.kflexFiles).some((p) => !p);
  const suiteMatches = f.os.id === 'debian' && f.os.codename === kflex.suite;
  const copyKflex = kflexMissing && !!kflex.dir && suiteMatches;
  const aptPkgs = [...plan.packages, ...(copyKflex && plan.manager === 'apt' ? KFLEX_RUNTIME_PACKAGES : [])];
  if (aptPkgs.length) steps.push({ host: role, kind: 'apt', packages: aptPkgs, detail: `apt-get install -y --no-install-recommends ${aptPkgs.join(' ')}` });
  for (const b of plan.unpackaged)
    steps.push({
      host: role,
      kind: 'note',
      detail: `${b}: ${NOT_PACKAGED[b] ?? `no package mapping for ${f.os.pretty}: install it with its package manager`}`,
    });
  if (kflexMissing) {
    if (copyKflex) {
      const files = readdirSync(kflex.dir!).sort();
      steps.push({
        host: role,
        kind: 'copy-kflex',
        files,
        detail:
          `copy the kflex stage's build for Debian ${kflex.suite} ` +
          `(${files.length} files: ${files.filter((x) => !x.endsWith('.o')).join(', ')} + BPF objects) ` +
          `to ${KFLEX_GUEST_DIR}`,
      });
    } else if (!kflex.dir) steps.push({ host: role, kind: 'note', detail: `ffkx, ffkx-bench: ${kflex.why}` });
    else
      steps.push({
        host: role,
        kind: 'note',
        detail:
          `ffkx, ffkx-bench: the kflex stage's build is for Debian ${kflex.suite}, and this host runs ${f.os.pretty}: ` +
          `its libraries (abseil, Google Benchmark, jemalloc, libbpf) would not match. ` +
          `Build KFlex on the host from its repository (the build needs clang >= 19 and libabsl-dev libjemalloc-dev libbenchmark-dev libbpf-dev libelf-dev; ` +
          `run CLANG=clang-19 ./build.sh and check that ffkx, ffkx-bench exist: build.sh exits 0 on failure) ` +
          `and put ffkx, ffkx-bench and bpf/*.bpf.o in ${KFLEX_GUEST_DIR}`,
      });
  }
  return steps;
}

export interface PrepareResult {
  steps: PrepareStep[];
  /** What was done per step (undefined on a dry run). */
  outcomes: Array<{ step: PrepareStep; ok: boolean; detail: string }>;
  unreachable: Partial<Record<Role, string>>;
  records: Partial<Record<Role, string>>;
}

async function installedPackages(h: OpenSshHost): Promise<Set<string>> {
  const r = await h.exec(['dpkg-query', '-W', '-f', '${Package}\t${db:Status-Abbrev}\n'], { allowFailure: true, timeoutMs: 60_000 });
  return parseDpkgInstalled(r.stdout);
}

/** apt-get install, recording exactly the packages it added (also when it failed halfway). */
async function aptInstall(
  h: OpenSshHost,
  packages: string[],
  log: (l: string) => void,
): Promise<{ ok: boolean; installed: string[]; command: string[]; said: string }> {
  const before = await installedPackages(h);
  const env = ['env', 'DEBIAN_FRONTEND=noninteractive'];
  // Stale lists make apt ask for versions the mirror no longer has; a failed update still lets the install try.
  await h.exec([...env, 'apt-get', 'update'], { allowFailure: true, timeoutMs: 10 * 60_000, onLine: log });
  const command = [...env, 'apt-get', 'install', '-y', '--no-install-recommends', ...packages];
  const r = await h.exec(command, { allowFailure: true, timeoutMs: 30 * 60_000, onLine: log });
  const installed = newlyInstalled(before, await installedPackages(h));
  const said = (r.stdout + r.stderr)
    .trim()
    .split('\n')
    .filter((l) => /^(E|W):/.test(l))
    .slice(-3)
    .join(' / ');
  return { ok: r.code === 0, installed, command, said };
}

/** Copy the kflex stage's files to KFLEX_GUEST_DIR: scp as the login user into /tmp, then install as root. */
async function copyKflex(h: OpenSshHost, dir: string, files: string[]): Promise<string[]> {
  const tmp = (await h.asLoginUser().exec(['mktemp', '-d', '/tmp/kflex-lab-XXXXXX'])).stdout.trim();
  const copied: string[] = [];
  try {
    for (const f of files) await h.copyIn(join(dir, f), `${tmp}/${f}`);
    await h.exec(['mkdir', '-p', KFLEX_GUEST_DIR]);
    for (const f of files) {
      await h.exec(['install', '-m', f.endsWith('.o') ? '0644' : '0755', `${tmp}/${f}`, `${KFLEX_GUEST_DIR}/${f}`]);
      copied.push(`${KFLEX_GUEST_DIR}/${f}`);
    }
  } finally {
    await h.asLoginUser().exec(['rm', '-rf', tmp], { allowFailure: true });
  }
  return copied;
}

/**
 * `hosts prepare`: install what the experiments need with each host's package manager and deploy KFlex's
 * user space where a matching build exists; record every change in <cache>/hosts/<name>/installed.json.
 */
export async function prepareHosts(
  cfg: HostsConfig,
  o: { cacheRoot: string; kflex: KflexSource; dryRun?: boolean; log?: (l: string) => void },
): Promise<PrepareResult> {
  const log = o.log ?? (() => {});
  const pair = HostPair.open(cfg);
  try {
    const ins = await inspectHosts(pair);
    const res: PrepareResult = { steps: [], outcomes: [], unreachable: ins.unreachable, records: {} };
    for (const role of ROLES) {
      const f = ins.facts[role];
      if (!f) continue;
      const steps = planPrepare(role, f, o.kflex);
      res.steps.push(...steps);
      if (o.dryRun) continue;
      const rootWhy = ins.refusals.find((r) => r.name === 'root' && r.host === role)?.why;
      const spec = cfg[role];
      const name = hostName(spec);
      const record = readRecord(o.cacheRoot, name, spec.destination);
      const h = pair.host(role);
      for (const step of steps) {
        if (step.kind === 'note') continue;
        if (rootWhy) {
          res.outcomes.push({ step, ok: false, detail: `not done: ${rootWhy}` });
          continue;
        }
        if (step.kind === 'apt') {
          if (packageManagerOf(f.os) !== 'apt') continue;
          log(`${role}: ${step.detail}`);
          const a = await aptInstall(h, step.packages!, (l) => log(`${role}: ${l}`));
          if (a.installed.length)
            record.entries.push({ kind: 'apt', at: new Date().toISOString(), requested: step.packages!, installed: a.installed, command: a.command });
          res.outcomes.push({
            step,
            ok: a.ok,
            detail: a.ok
              ? `installed ${a.installed.length} package(s): ${a.installed.join(' ') || 'none new'}`
              : `apt-get failed${a.said ? `: ${a.said}` : ''}; newly installed anyway: ${a.installed.join(' ') || 'none'}`,
          });
        } else if (step.kind === 'copy-kflex') {
          log(`${role}: ${step.detail}`);
          try {
            const copied = await copyKflex(h, o.kflex.dir!, step.files!);
            for (const p of copied)
              record.entries.push({ kind: 'file', at: new Date().toISOString(), path: p, from: join(o.kflex.dir!, p.split('/').at(-1)!) });
            res.outcomes.push({ step, ok: true, detail: `copied ${copied.length} files to ${KFLEX_GUEST_DIR}` });
          } catch (e) {
            res.outcomes.push({ step, ok: false, detail: `copy failed: ${(e as Error).message.split('\n')[0]}` });
          }
        }
      }
      if (record.entries.length) {
        await writeRecord(o.cacheRoot, record);
        res.records[role] = recordPath(o.cacheRoot, name);
      }
    }
    return res;
  } finally {
    await pair.close();
  }
}

/**
 * `hosts prepare --undo`: stop what the lab's cells started and still runs there (every ledger in
 * LEDGER_DIR, by PID and start time: nothing else), then remove what prepare recorded (packages it added,
 * files it copied), then forget it.
 */
export async function undoPrepare(
  cfg: HostsConfig,
  o: { cacheRoot: string; log?: (l: string) => void },
): Promise<Array<{ host: Role; stopped: string[]; removed: string[]; failed: string[] }>> {
  const pair = HostPair.open(cfg);
  const out: Array<{ host: Role; stopped: string[]; removed: string[]; failed: string[] }> = [];
  try {
    for (const role of ROLES) {
      const spec = cfg[role];
      const h = pair.host(role);
      const g = parseGuard((await h.exec(allLedgersArgv(10), { allowFailure: true, timeoutMs: 120_000 })).stdout);
      const stopped = g.stopped.map((p) => `${p.tag} ${p.pid}`);
      const record = readRecord(o.cacheRoot, hostName(spec), spec.destination);
      if (!record.entries.length) {
        out.push({ host: role, stopped, removed: [], failed: [] });
        continue;
      }
      const pkgs = [...new Set(record.entries.flatMap((e) => (e.kind === 'apt' ? e.installed : [])))];
      const files = record.entries.flatMap((e) => (e.kind === 'file' ? [e.path] : []));
      if (files.length) await h.exec(['rm', '-f', '--', ...files], { allowFailure: true });
      if (pkgs.length)
        await h.exec(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'remove', '-y', ...pkgs], {
          allowFailure: true,
          timeoutMs: 30 * 60_000,
          onLine: (l) => o.log?.(`${role}: ${l}`),
        });
      const still = await installedPackages(h);
      const left = await h.exec(['sh', '-c', 'for f in "$@"; do [ -e "$f" ] && echo "$f"; done; true', 'left', ...files], { allowFailure: true });
      const failed = [...pkgs.filter((p) => still.has(p)), ...left.stdout.split('\n').filter(Boolean)];
      record.entries = record.entries.filter((e) => (e.kind === 'apt' ? e.installed.some((p) => failed.includes(p)) : failed.includes(e.path)));
      await writeRecord(o.cacheRoot, record);
      out.push({ host: role, stopped, removed: [...pkgs, ...files].filter((x) => !failed.includes(x)), failed });
    }
    return out;
  } finally {
    await pair.close();
  }
}
