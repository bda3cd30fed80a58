import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { resolve, join, isAbsolute, dirname } from 'node:path';
import { homedir } from 'node:os';
import { parseDocument, LineCounter, parse as parseYaml, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { LAB_ROOT } from './paths.js';
import { VM_ACCELS } from './accel.js';

const sha1 = z.string().regex(/^[0-9a-f]{40}$/, 'a full 40-hex-digit git commit');
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a 64-hex-digit sha256');

/** Where a piece of source code comes from. Every kind can be replaced with `--source NAME=/path`. */
export const SourceSchema = z
  .discriminatedUnion('kind', [
    z
      .object({
        kind: z.literal('git'),
        url: z.string().min(1),
        commit: sha1.optional(),
        ref: z.string().optional(),
      })
      .strict(),
    z.object({ kind: z.literal('tarball'), url: z.string().min(1), sha256 }).strict(),
    z.object({ kind: z.literal('path'), path: z.string().min(1) }).strict(),
    z
      .object({
        kind: z.literal('debian-package'),
        package: z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'a Debian package name'),
        /** The exact package version (e.g. 7.3.4-1~bpo13+1): a suite drops old versions, so a pin can leave it. */
        version: z
          .string()
          .regex(/^(\d+:)?[0-9][A-Za-z0-9.+~-]*$/, 'a Debian package version such as 7.3.4-1~bpo13+1')
          .optional(),
        /** A suite of the host's Debian mirror (e.g. trixie-backports) instead of the host's own suites. */
        suite: z.string().optional(),
      })
      .strict(),
  ])
  .superRefine((s, ctx) => {
    if (s.kind === 'git' && !s.commit && !s.ref)
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a git source needs `commit` (a pinned 40-digit hash) or `ref` (a tag)' });
  });
export type Source = z.infer<typeof SourceSchema>;

const VmSize = z.object({ cpus: z.number().int().min(1).max(256), memory_mb: z.number().int().min(256) }).strict();
/** The server may be sized from the host: enough for the largest heap that will run, within what the host can give. */
const ServerVmSize = z.object({ cpus: z.number().int().min(1).max(256), memory_mb: z.union([z.number().int().min(256), z.literal('auto')]) }).strict();
/** KFlex heap sizes in GiB per ffkx program; the artifact's are 128 (kmemcache), 256 (kmemcached, kredis), 64 (bench). */
const HeapGiB = z
  .number()
  .int()
  .min(1)
  .refine((n) => (n & (n - 1)) === 0, 'a power of two (ffkx_heap(N) needs one)');
export const ARTIFACT_HEAPS = { kmemcache: 128, kmemcached: 256, kredis: 256, bench: 64 } as const;
export type HeapProgram = keyof typeof ARTIFACT_HEAPS;
// ffkx pre-fills ~5.8 GiB of pools inside the heap and the fill takes about twice that; ffkx-bench ~0.9 GB, twice.
const SERVER_HEAP_MIN = 'at least 32 GiB: ffkx fills ~6 GiB of allocator pools inside the heap before it is ready, and the fill takes about twice that';
const BENCH_HEAP_MIN = 'at least 8 GiB: ffkx-bench fills ~0.9 GB of pools inside the heap, and the fill takes about twice that';

/** A VM's RAM once the lab has sized it: 'auto' is resolved before anything boots (lab/sizing.ts). */
export function fixedMemoryMb(m: number | 'auto', minimum = 4096): number {
  return m === 'auto' ? minimum : m;
}
const GridValue = z.union([z.number(), z.string(), z.boolean()]);

export const ExperimentSettingsSchema = z
  .object({
    enabled: z.boolean().default(true),
    variants: z.array(z.string()).min(1),
    repetitions: z.number().int().min(1).default(3),
    warmup_s: z.number().min(0).default(0),
    duration_s: z.number().min(1).default(30),
    grid: z.record(z.array(GridValue).min(1)).default({}),
    /** What `--quick` replaces: fewer repetitions, shorter, one grid point. */
    quick: z
      .object({
        repetitions: z.number().int().min(1).optional(),
        duration_s: z.number().min(1).optional(),
        grid: z.record(z.array(GridValue).min(1)).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();
export type ExperimentSettings = z.infer<typeof ExperimentSettingsSchema>;

/** A CloudLab hardware type as CloudLab spells its node types (c6420, c6525-25g, xl170). */
const HardwareType = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'a CloudLab hardware type such as c6420');

/**
 * Where the cells run: `vm` (the default: the lab's own VMs) or `hosts` (two machines of yours over OpenSSH,
 * from a hosts.yaml, `file:`, e.g. what `hosts from-manifest` wrote, or with hosts.yaml's fields inline,
 * `hosts:`). `--testbed FILE` on the command line overrides it. Relative files are taken from the working
 * directory, as `--testbed` is.
 */
export const TestbedSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('vm') }).strict(),
  z
    .object({
      kind: z.literal('hosts'),
      /** A hosts.yaml; null drops a parent profile's (to give `hosts:` instead). */
      file: z.string().min(1).nullable().optional(),
      /** hosts.yaml's fields (ssh_config, server, client) inline; validated by the hosts testbed's own rules. */
      hosts: z.record(z.unknown()).nullable().optional(),
      /** What to book: `hosts cloudlab-profile` writes this type as the profile's default. */
      cloudlab: z.object({ hardware_type: HardwareType }).strict().optional(),
    })
    .strict(),
]);
export type TestbedSection = z.infer<typeof TestbedSchema>;

export const ProfileSchema = z
  .object({
    description: z.string(),
    sources: z.record(SourceSchema),
    toolchain: z
      .object({
        policy: z.enum(['auto', 'system', 'package', 'source']),
        min_version: z.number().int().min(10),
        /** Debian/Ubuntu package to install under policy package (e.g. clang-19). */
        package: z.string().optional(),
        /** A clang binary to use under policy system, instead of searching PATH. */
        path: z.string().optional(),
        /** Name of the llvm-project source under policy source. */
        source: z.string().default('llvm'),
      })
      .strict(),
    kernel: z
      .object({
        source: z.string(),
        /** tinyconfig, defconfig, or a path to a full .config (e.g. a distribution's). */
        base: z.string(),
        fragments: z.array(z.string()).min(1),
        extra: z.record(z.union([z.string(), z.number(), z.boolean()])).default({}),
      })
      .strict(),
    image: z
      .object({
        suite: z.string().regex(/^[a-z]+$/, 'a Debian suite name such as trixie'),
        /** Debian mirror URL; empty = the host's apt configuration, else mmdebstrap's default. */
        mirror: z.string().default(''),
        size_mb: z.number().int().min(512),
        packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'a Debian package name')).min(1),
        /** Build KFlex user space (ffkx, ffkx-bench) into the image. */
        kflex: z.boolean(),
        /** Build memtier_benchmark from this source when it is reachable. */
        memtier: z.string().optional(),
        /** Build BMC (sources.bmc) into the image: as published (`artifact`, the KFlex kernel) or with the lab's patch for upstream 7.x. */
        bmc: z.union([z.literal(false), z.enum(['artifact', 'upstream'])]).default(false),
        /** Build the arena data-structure benchmark (bpf/arena) against the profile's kernel tree (Linux 7.x: libarena). */
        arena: z.boolean().default(false),
      })
      .strict(),
    vms: z
      .object({
        accel: z.enum(['auto', ...VM_ACCELS]),
        boot_timeout_s: z.number().int().min(10),
        server: ServerVmSize,
        client: VmSize,
        /** What 'auto' leaves the host: RAM (MiB) beyond the client VM. */
        host_reserve_mb: z.number().int().min(0).default(4096),
        link: z
          .object({
            backend: z.enum(['auto', 'tap', 'socket']),
            mtu: z.number().int().min(576).max(3500),
          })
          .strict(),
      })
      .strict(),
    /** KFlex heap sizes; any value below the artifact's is a scaled heap, rewritten into ffkx at build time and recorded. */
    kflex: z
      .object({
        heap_gib: z
          .object({
            kmemcache: HeapGiB.refine((n) => n >= 32, SERVER_HEAP_MIN),
            kmemcached: HeapGiB.refine((n) => n >= 32, SERVER_HEAP_MIN),
            kredis: HeapGiB.refine((n) => n >= 32, SERVER_HEAP_MIN),
            bench: HeapGiB.refine((n) => n >= 8, BENCH_HEAP_MIN),
          })
          .strict()
          .default({ ...ARTIFACT_HEAPS }),
      })
      .strict()
      .default({ heap_gib: { ...ARTIFACT_HEAPS } }),
    experiments: z.record(ExperimentSettingsSchema),
    testbed: TestbedSchema.optional(),
    estimates: z
      .object({
        disk_gb: z.number().positive(),
        ram_gb: z.number().positive(),
        /** Cold minutes per stage on a 2-core host without KVM; scaled by core count in `plan`. */
        minutes: z.record(z.number().nonnegative()),
      })
      .strict(),
  })
  .strict();
export type Profile = z.infer<typeof ProfileSchema>;

export interface ResolvedConfig {
  file: string;
  profileName: string;
  profile: Profile;
  /** Where each overridden value came from (path -> origin), for the manifest and error messages. */
  overrides: Record<string, string>;
  /** Where stage outputs live (KFLEX_LAB_CACHE, else ~/.cache/kflex-lab). */
  cacheRoot: string;
  /** Where the profile's `testbed:` section was set (FILE:LINE:COL or the override), for messages about it. */
  testbedOrigin?: string;
}

export function cacheRootFrom(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.KFLEX_LAB_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kflex-lab'));
}

export interface LoadOptions {
  file?: string;
  profile?: string;
  /** `key.path=value` pairs (value parsed as YAML), applied to the selected profile. */
  set?: string[];
  /** `NAME=/local/path` pairs replacing a source by a local tree or file. */
  sources?: string[];
  env?: NodeJS.ProcessEnv;
  /**
   * Experiment id -> its variant ids and grid keys (from experiments/, which core/ must not import). Given,
   * every experiment under `experiments` must be one of these, name only its own variants and grid keys.
   */
  knownExperiments?: Record<string, KnownExperiment>;
  /** The directory of named kernel fragments (`<name>.config`); given, every named fragment must be a file in it. */
  fragmentsDir?: string;
  /** Checks a `testbed.hosts` section with the hosts testbed's own rules (hosts/, which core/ must not import). */
  inlineHosts?: InlineHostsCheck;
}

/** The problems of inline hosts (hosts.yaml's fields), each as `POSITION: testbed.hosts.FIELD: what is wrong`. */
export type InlineHostsCheck = (raw: unknown, src: { file: string; baseDir: string; where: (path: (string | number)[]) => string; prefix: string }) => string[];

type ParamValue = string | number | boolean;

/** What the configuration knows of one experiment: its variants and the grid keys it reads (lab/config.ts passes the experiments' own). */
export interface KnownExperiment {
  variants: readonly string[];
  grid: Record<string, { check: (v: ParamValue) => boolean; allowed: string }>;
}

export const DEFAULT_CONFIG = join(LAB_ROOT, 'lab.yaml');

type Where = (path: (string | number)[]) => string;
type RawRoot = { default_profile?: string; profiles: Record<string, Record<string, unknown>> };

/** The file parsed with positions: a YAML error or a file without `profiles:` is reported with its line. */
function readDocument(file: string): { root: RawRoot; where: Where } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot read the configuration (${(e as Error).message}); pass --config FILE`]);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const where = (path: (string | number)[]) => locate(doc, lc, file, path);
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const p = lc.linePos(e.pos[0]);
        return `${file}:${p.line}:${p.col}: YAML syntax: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const root = doc.toJS() as Partial<RawRoot> | null;
  if (!root || typeof root !== 'object' || !root.profiles || typeof root.profiles !== 'object') {
    throw new ConfigError([`${where([])}: profiles: missing; the file must have a \`profiles:\` map (see lab.yaml in the repository)`]);
  }
  return { root: root as RawRoot, where };
}

/** The `extends` chain of a profile, the profile itself first; a cycle or a missing parent names its line. */
function extendsChain(root: RawRoot, name: string, where: Where): string[] {
  const chain: string[] = [];
  for (let p: string | undefined = name; p; ) {
    if (chain.includes(p)) throw new ConfigError([`${where(['profiles', p, 'extends'])}: profiles.${p}.extends: cycle ${[...chain, p].join(' -> ')}`]);
    const prof: Record<string, unknown> | undefined = root.profiles[p];
    if (!prof)
      throw new ConfigError([
        `${where(['profiles', chain.at(-1)!, 'extends'])}: profiles.${chain.at(-1)}.extends: no ` +
          `profile named ${p}; known: ${Object.keys(root.profiles).join(', ')}`,
      ]);
    chain.push(p);
    p = prof.extends as string | undefined;
  }
  return chain;
}

/** Apply `--set`, KFLEX_LAB__* and `--source` to the merged profile; returns which override set each path. */
function applyOverrides(merged: Record<string, unknown>, opts: LoadOptions, env: NodeJS.ProcessEnv, name: string): Record<string, string> {
  const overrides: Record<string, string> = {};
  const problems: string[] = [];
  const sets: Array<[string, string]> = (opts.set ?? []).map((s) => [s, `--set ${s}`]);
  for (const [k, v] of Object.entries(env)) {
    // KFLEX_LAB__VMS__SERVER__MEMORY_MB=4096 sets vms.server.memory_mb
    if (k.startsWith('KFLEX_LAB__') && v !== undefined) sets.push([`${k.slice(11).toLowerCase().split('__').join('.')}=${v}`, `environment ${k}`]);
  }
  for (const [s, origin] of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) {
      problems.push(`${origin}: expected key.path=value, e.g. vms.server.memory_mb=4096`);
      continue;
    }
    const key = s.slice(0, eq);
    setPath(merged, key.split('.'), parseYaml(s.slice(eq + 1)));
    overrides[key] = origin;
  }
  for (const s of opts.sources ?? []) {
    const eq = s.indexOf('=');
    const srcName = s.slice(0, eq);
    const sources = (merged.sources ?? {}) as Record<string, unknown>;
    if (eq <= 0 || !s.slice(eq + 1)) problems.push(`--source ${s}: expected NAME=/local/path, e.g. kflex=/src/KFlex`);
    else if (!(srcName in sources)) problems.push(`--source ${s}: profile ${name} has no source named ${srcName}; known: ${Object.keys(sources).join(', ')}`);
    else {
      sources[srcName] = { kind: 'path', path: resolve(s.slice(eq + 1)) };
      overrides[`sources.${srcName}`] = `--source ${s}`;
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return overrides;
}

/** Where a problem at `path` comes from: the override that set it (or a parent), else its line in the file, else an override below it. */
function positionOf(overrides: Record<string, string>, root: RawRoot, chain: string[], where: Where): At {
  return (path) => {
    const p = path.map(String);
    const dotted = p.join('.');
    const entries = Object.entries(overrides);
    const above = entries.find(([k]) => dotted === k || dotted.startsWith(`${k}.`));
    if (above) return above[1];
    if (chain.some((c) => hasPath(root.profiles[c], p))) return where(locatePath(root.profiles, chain, p));
    // e.g. `--set experiments.nosuch.variants=[x]` created the field this problem is about
    const below = dotted ? entries.find(([k]) => k.startsWith(`${dotted}.`)) : undefined;
    return below ? below[1] : where(locatePath(root.profiles, chain, p));
  };
}

/** Fields that name a source must name one the profile defines. */
function sourceRefProblems(profile: Profile, name: string, where: (field: string[]) => string): string[] {
  const out: string[] = [];
  const ref = (field: string[], sourceName: string | undefined) => {
    if (sourceName && !profile.sources[sourceName])
      out.push(
        `${where(field)}: ${field.join('.')}: names source '${sourceName}', which profiles.${name}.sources does not define; known: ` +
          `${Object.keys(profile.sources).join(', ')}`,
      );
  };
  ref(['kernel', 'source'], profile.kernel.source);
  ref(['image', 'memtier'], profile.image.memtier);
  if (profile.toolchain.policy === 'source') ref(['toolchain', 'source'], profile.toolchain.source);
  if (profile.image.kflex) ref(['image', 'kflex'], 'kflex');
  if (profile.image.bmc) ref(['image', 'bmc'], 'bmc');
  return out;
}

/**
 * Load lab.yaml, resolve `extends`, apply overrides, validate once.
 * Every problem is reported as `FILE:LINE:COL: field.path: what is wrong` (or names the override).
 */
export function loadConfig(opts: LoadOptions = {}): ResolvedConfig {
  const env = opts.env ?? process.env;
  const file = resolve(opts.file ?? env.KFLEX_LAB_CONFIG ?? DEFAULT_CONFIG);
  const { root, where } = readDocument(file);
  const name = opts.profile ?? env.KFLEX_LAB_PROFILE ?? root.default_profile ?? 'paper';
  if (!root.profiles[name]) {
    throw new ConfigError([`${where(['profiles'])}: profiles.${name}: no such profile; known: ${Object.keys(root.profiles).join(', ')}`]);
  }
  // Resolve the extends chain, child last, and remember which profile defines each path (for positions).
  const chain = extendsChain(root, name, where);
  let merged: Record<string, unknown> = {};
  for (const p of [...chain].reverse()) {
    const { extends: _ignored, ...body } = root.profiles[p]!;
    merged = deepMerge(merged, body);
  }
  const overrides = applyOverrides(merged, opts, env, name);
  const at = positionOf(overrides, root, chain, where);
  const parsed = ProfileSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const dotted = issue.path.map(String).join('.');
        return `${at(issue.path)}: ${dotted || '(profile)'}: ${describeIssue(issue)}`;
      }),
    );
  }
  const profile = parsed.data;
  const problems = [
    ...sourceRefProblems(profile, name, (field) => where(locatePath(root.profiles, chain, field))),
    ...sourcePathProblems(profile, at),
    ...kernelFileProblems(profile, at, opts.fragmentsDir),
    ...experimentProblems(profile, at, opts.knownExperiments),
    ...testbedProblems(profile, at, { file, check: opts.inlineHosts }),
  ];
  if (problems.length) throw new ConfigError(problems);
  const t = profile.testbed;
  const testbedOrigin = t ? at(t.kind === 'hosts' && t.file ? ['testbed', 'file'] : ['testbed']) : undefined;
  return { file, profileName: name, profile, overrides, cacheRoot: cacheRootFrom(env), testbedOrigin };
}

/** A hosts testbed names its machines once: a file or inline hosts (checked by the hosts testbed's rules). */
function testbedProblems(profile: Profile, at: At, o: { file: string; check?: InlineHostsCheck }): string[] {
  const t = profile.testbed;
  if (t?.kind !== 'hosts') return [];
  if (t.file && t.hosts)
    return [
      `${at(['testbed', 'hosts'])}: testbed: gives both file: (${t.file}) and hosts:; keep one ` +
        '(a profile extending one with file: drops it with file: null)',
    ];
  if (!t.file && !t.hosts)
    return [
      `${at(['testbed'])}: testbed: kind hosts names no machines; give file: hosts.yaml (what ` +
        "'kflex-lab hosts from-manifest manifest.xml > hosts.yaml' writes) or hosts: { server: ..., client: ... }",
    ];
  if (!t.hosts || !o.check) return [];
  return o.check(t.hosts, { file: o.file, baseDir: dirname(o.file), where: (p) => at(['testbed', 'hosts', ...p]), prefix: 'testbed.hosts' });
}

type At = (path: (string | number)[]) => string;

/** A `path` source must exist now, not when its stage first reads it. */
function sourcePathProblems(profile: Profile, at: At): string[] {
  return Object.entries(profile.sources).flatMap(([name, src]) =>
    src.kind === 'path' && !existsSync(src.path)
      ? [`${at(['sources', name])}: sources.${name}: path ${src.path} does not exist; give an existing directory or file (--source ${name}=PATH)`]
      : [],
  );
}

/** Fragments and a file base exist (named fragments are `<dir>/<name>.config`, as kernel/stage.ts reads them). */
function kernelFileProblems(profile: Profile, at: At, fragmentsDir: string | undefined): string[] {
  const out: string[] = [];
  const k = profile.kernel;
  // Same rule as kernel/stage.ts fragmentPath: a name with a slash (or absolute) is a file path.
  const isPath = (f: string) => isAbsolute(f) || f.includes('/');
  const named =
    fragmentsDir && existsSync(fragmentsDir)
      ? readdirSync(fragmentsDir)
          .filter((f) => f.endsWith('.config'))
          .map((f) => f.slice(0, -'.config'.length))
          .sort()
      : undefined;
  if (fragmentsDir && !named) out.push(`${at(['kernel', 'fragments'])}: kernel.fragments: the fragments directory ${fragmentsDir} does not exist`);
  k.fragments.forEach((f, i) => {
    if (isPath(f)) {
      if (!existsSync(f)) out.push(`${at(['kernel', 'fragments', i])}: kernel.fragments: no file ${resolve(f)}; give an existing .config fragment`);
    } else if (named && !named.includes(f)) {
      out.push(
        `${at(['kernel', 'fragments', i])}: kernel.fragments: '${f}' is not a fragment in ` +
          `${fragmentsDir}; allowed: ${named.join(', ')} (or a path to a .config fragment)`,
      );
    }
  });
  if (!['tinyconfig', 'defconfig'].includes(k.base) && !existsSync(k.base))
    out.push(`${at(['kernel', 'base'])}: kernel.base: no file ${resolve(k.base)}; allowed: tinyconfig, defconfig, or a path to a full .config`);
  return out;
}

/** Experiment ids and variants against the experiments' own (when known), grid values against the grid keys each declares. */
function experimentProblems(profile: Profile, at: At, known: Record<string, KnownExperiment> | undefined): string[] {
  const out: string[] = [];
  for (const [id, s] of Object.entries(profile.experiments)) {
    const base = ['experiments', id];
    const exp = known?.[id];
    if (known && !exp) {
      out.push(`${at(base)}: experiments.${id}: no such experiment; allowed: ${Object.keys(known).join(', ')}`);
      continue;
    }
    s.variants.forEach((v, i) => {
      if (exp && !exp.variants.includes(v))
        out.push(`${at([...base, 'variants', i])}: experiments.${id}.variants: '${v}' is not a variant of ${id}; allowed: ${exp.variants.join(', ')}`);
      else if (s.variants.indexOf(v) !== i)
        out.push(`${at([...base, 'variants', i])}: experiments.${id}.variants: '${v}' is listed twice; list each variant once`);
    });
    if (exp) out.push(...gridProblems(id, s, exp, at));
  }
  return out;
}

/** Grid keys against the experiment's own, values against each key's range. */
function gridProblems(id: string, s: ExperimentSettings, exp: KnownExperiment, at: At): string[] {
  const out: string[] = [];
  const base = ['experiments', id];
  const grids: Array<[(string | number)[], Record<string, ParamValue[]> | undefined]> = [
    [[...base, 'grid'], s.grid],
    [[...base, 'quick', 'grid'], s.quick.grid],
  ];
  for (const [path, grid] of grids) {
    for (const [key, values] of Object.entries(grid ?? {})) {
      const param = exp.grid[key];
      const field = [...path, key].join('.');
      if (!param) {
        const allowed = Object.keys(exp.grid).join(', ') || `none (${id} has no grid)`;
        out.push(`${at([...path, key])}: ${field}: ${id} reads no grid key '${key}'; allowed: ${allowed}`);
        continue;
      }
      values.forEach((v, i) => {
        if (!param.check(v)) out.push(`${at([...path, key, i])}: ${field}: ${JSON.stringify(v)} is out of range; allowed: ${param.allowed}`);
      });
    }
  }
  return out;
}

export function listProfiles(file = DEFAULT_CONFIG): Array<{ name: string; description: string; extends?: string }> {
  const root = parseYaml(readFileSync(file, 'utf8')) as { profiles: Record<string, { description?: string; extends?: string }> };
  return Object.entries(root.profiles).map(([n, p]) => ({ name: n, description: p.description ?? '', extends: p.extends }));
}

function describeIssue(issue: z.ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.received === 'undefined' ? `missing; expected ${issue.expected}` : `expected ${issue.expected}, got ${issue.received}`;
    case 'invalid_enum_value':
      return `'${String(issue.received)}' is not allowed; allowed: ${issue.options.join(', ')}`;
    case 'unrecognized_keys':
      return `unknown field(s) ${issue.keys.join(', ')}; check the spelling against lab.yaml`;
    case 'invalid_union_discriminator':
      return `unknown kind; allowed: ${issue.options.join(', ')}`;
    case 'too_small':
      return `${issue.message.replace(/^(Number|Array|String) must/, 'must')}`;
    default:
      return issue.message;
  }
}

/** The deepest path, in the most-derived profile that defines it, for a merged-profile field path. */
function locatePath(profiles: Record<string, Record<string, unknown>>, chain: string[], path: string[]): (string | number)[] {
  for (let depth = path.length; depth >= 0; depth--) {
    for (const p of chain) {
      if (hasPath(profiles[p], path.slice(0, depth))) return ['profiles', p, ...path.slice(0, depth)];
    }
  }
  return ['profiles', chain[0]!];
}

function hasPath(obj: unknown, path: string[]): boolean {
  let cur = obj;
  for (const k of path) {
    if (!cur || typeof cur !== 'object' || !(k in (cur as object))) return false;
    cur = (cur as Record<string, unknown>)[k];
  }
  return true;
}

function locate(doc: Document, lc: LineCounter, file: string, path: (string | number)[]): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = path.length === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    // A key's value node: its range starts at the value; good enough to point the user at the line.
    if (isNode(node) && node.range) {
      const p = lc.linePos(node.range[0]);
      return `${file}:${p.line}:${p.col}`;
    }
  }
  return `${file}:1:1`;
}

export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    // A tagged object (a source) of another kind replaces the parent's instead of merging into it.
    const sameKind = isPlainObject(b) && isPlainObject(v) && (!('kind' in v) || b.kind === v.kind);
    out[k] = sameKind ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>) : structuredClone(v);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    if (!isPlainObject(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path.at(-1)!] = value;
}
