import { mkdir, writeFile, readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join, resolve } from 'node:path';
import type { Profile, ResolvedConfig } from './config.js';
import { probe } from './exec.js';
import { parseQemuVersion } from './doctor.js';
import type { StageOutput } from './stage.js';
import { LAB_ROOT } from './paths.js';
import type { Accel, VmAccel } from './accel.js';
import type { LinkFacts } from './testbed.js';

export { LAB_ROOT };

export function resultsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.KFLEX_LAB_RESULTS ?? join(process.cwd(), 'results'));
}

/** results/<UTC timestamp>-<profile>/, e.g. results/20261127T081500Z-smoke */
export function runDirName(profile: string, now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${profile}`;
}

export async function createRunDir(profile: string, root = resultsRoot()): Promise<string> {
  const dir = join(root, runDirName(profile));
  await mkdir(join(dir, 'logs'), { recursive: true });
  return dir;
}

export async function latestRun(root = resultsRoot()): Promise<string | undefined> {
  if (!existsSync(root)) return undefined;
  const runs = (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isDirectory() && /^\d{8}T\d{6}Z-/.test(d.name))
    .map((d) => d.name)
    .sort();
  return runs.length ? join(root, runs.at(-1)!) : undefined;
}

export interface HostFacts {
  cpu_model: string;
  cores: number;
  ram_gb: number;
  kernel: string;
  /** The VMs' accelerator; 'unknown' before the testbed is up and for real hosts. */
  accel: VmAccel | 'unknown';
  qemu: string | undefined;
  node: string;
  lab_commit: string | undefined;
}

export async function hostFacts(accel: HostFacts['accel'] = 'unknown'): Promise<HostFacts> {
  const qemu = await probe(['qemu-system-x86_64', '--version']);
  const commit = await probe(['git', '-C', LAB_ROOT, 'rev-parse', 'HEAD']);
  const dirty = commit ? await probe(['git', '-C', LAB_ROOT, 'status', '--porcelain', '--untracked-files=no']) : undefined;
  return {
    cpu_model: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ram_gb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    accel,
    qemu: qemu ? parseQemuVersion(qemu) : undefined,
    node: process.version,
    lab_commit: commit ? commit.trim() + (dirty?.trim() ? '+dirty' : '') : undefined,
  };
}

/** How a run was asked for: a resume must ask the same, or its cells would mix two plans. */
export interface RunRequest {
  profile: string;
  quick: boolean;
  only: string[];
  overrides: string[];
  testbed?: string;
}

/** Where a stage's source (or the image's memtier) came from, as its manifest records it. */
export interface FetchedSource {
  kind?: string;
  origin?: string;
  commit?: string;
  sha256?: string;
  version?: string;
  /** memtier: whether it was reachable, else why not. */
  available?: boolean;
  reason?: string;
}

/**
 * A stage's manifest (its stage.json) as manifest.json carries it. Each stage records its own facts; these are
 * the ones read back (the report's provenance, badges and timeline), optional as stages differ and older runs
 * lack some.
 */
export interface StageRecord {
  built_at?: string;
  build_seconds?: number;
  source?: FetchedSource;
  /** kernel */
  release?: string;
  base?: string;
  fragments?: string[];
  config_sha256?: string;
  gcc?: string;
  /** llvm */
  how?: string;
  clang?: string;
  clang_version?: string | number;
  /** image */
  suite?: string;
  mmdebstrap?: string;
  mirror?: string;
  image_sha256?: string;
  image_bytes?: number;
  memtier?: FetchedSource;
  /** kflex */
  heaps?: Record<string, number>;
  [fact: string]: unknown;
}

/** What a testbed recorded of itself (Testbed.facts): its kind, accelerator and link, and more per kind. */
export interface TestbedRecord {
  testbed?: string;
  accel?: Accel;
  link?: string;
  [fact: string]: unknown;
}

/**
 * The guests' capabilities as probed before the cells (experiments/types.ts's Capabilities is written here).
 * Runs from before the experiments declared their needs have no `programs` but three fixed answers.
 */
export interface CapabilityRecord {
  kernelRelease: string;
  btf?: Record<string, boolean>;
  programs?: Record<string, boolean>;
  la57?: boolean;
  serverMemoryMb?: number;
  kflexKernel?: boolean;
  kflexKernelWhy?: string;
  ffkx?: boolean;
  ffkxWhy?: string;
  memtier?: boolean;
}

/**
 * manifest.json: the one interface its writer (LabRun in lab/run.ts, at each checkpoint) and its readers (the
 * report, --resume) share. Fields after `deviations` appear as the run gets that far.
 */
export interface Manifest {
  lab: string;
  created: string;
  profile: string;
  config_file: string;
  overrides: Record<string, string>;
  host: HostFacts;
  /** The resolved profile the run used. */
  config: Profile;
  stages: Record<string, { fingerprint: string; dir: string; manifest: StageRecord }>;
  deviations: Deviation[];
  request?: RunRequest;
  testbed?: TestbedRecord;
  /** The link in one line (LinkFacts.describe). */
  link?: string;
  xdp_check?: LinkFacts['xdpCheck'];
  /** The server VM's memory and why (lab/sizing.ts). */
  server_memory?: { memoryMb: number; why: string };
  capabilities?: CapabilityRecord;
}

export function buildManifest(config: ResolvedConfig, host: HostFacts, stages: Record<string, StageOutput>, deviations: Deviation[] = []): Manifest {
  return {
    lab: 'kflex-lab',
    created: new Date().toISOString(),
    profile: config.profileName,
    config_file: config.file,
    overrides: config.overrides,
    host,
    config: config.profile,
    stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, { fingerprint: v.fingerprint, dir: v.dir, manifest: v.manifest }])),
    deviations,
  };
}

export async function writeManifest(runDir: string, m: Manifest): Promise<void> {
  await writeFile(join(runDir, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
}

export async function readManifest(runDir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(runDir, 'manifest.json'), 'utf8')) as Manifest;
}

/** Add facts to an existing manifest (e.g. the accelerator and link backend once the VMs are up). */
export async function amendManifest(runDir: string, patch: (m: Manifest) => void): Promise<void> {
  const m = await readManifest(runDir);
  patch(m);
  await writeManifest(runDir, m);
}

/** One way this run differs from the artifact: what the artifact does, what the lab did, and why. */
export interface Deviation {
  /** Short topic, e.g. 'client load', 'accelerator', 'toolchain'. */
  topic: string;
  artifact: string;
  lab: string;
  why: string;
  /** Which experiments or cells it affects ('all' when the whole run). */
  affects: string;
}
