/**
 * The student labs (issue 21): start an exercise in a working folder, check a submission in the lab's VMs,
 * reset it, and the instructor's check of a whole class. A LabSession owns the VMs for the duration of a
 * command: it brings them up when they are not (lab/vms.ts `up`), builds the graders' tools inside them,
 * and runs one submission at a time. Submissions are untrusted: they are compiled and loaded only inside
 * the server VM; on the host they are only read, as plain files (no symlinks, bounded sizes).
 */
import { createHash, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedConfig } from '../core/config.js';
import { ExitCode, LabError } from '../core/errors.js';
import type { Host } from '../core/host.js';
import { SshHost } from '../core/ssh.js';
import { LINK_IF } from '../core/guest.js';
import { VmTestbed } from '../vm/testbed.js';
import { EXERCISES, GUEST_SOURCES, LABS_DIR, exerciseDir } from '../labs/index.js';
import { judgeLoad, seededRandom } from '../labs/grading.js';
import { type Exercise, type GradeContext, type GuestExec, type GuestPaths, type LabTest, SubmissionHung, SubmissionRejected } from '../labs/types.js';
import { down, up, vmDir } from './vms.js';

export { EXERCISES } from '../labs/index.js';

/** Where a submission stopped: it compiled and was graded, or it failed before (with what the tools said). */
export type CheckStage = 'graded' | 'compile' | 'load' | 'attach' | 'program' | 'kernel' | 'hung';

export interface CheckResult {
  exercise: number;
  slug: string;
  pass: boolean;
  stage: CheckStage;
  tests: LabTest[];
  /** Why it stopped before grading, in one paragraph. */
  message?: string;
  /** The compiler's diagnostics or the verifier's whole log. */
  log?: string;
  /** What the lab did to leave the VMs usable (e.g. restarted them after a submission that never returned). */
  recovered?: string;
  seed: number;
  seconds: number;
  /** Seconds per phase: compile (with the reset before it), grade, cleanup. */
  phases?: Record<string, number>;
}

// ---------------------------------------------------------------- exercises and working folders

export function exerciseByN(n: string | number): Exercise {
  const e = EXERCISES.find((x) => String(x.n) === String(n) || `${x.n}-${x.slug}` === String(n) || x.slug === String(n));
  if (!e) throw new LabError(`no exercise ${n}; there are ${EXERCISES.map((x) => `${x.n} (${x.slug})`).join(', ')}`, ExitCode.usage, 'kflex-lab lab list');
  return e;
}

/** The student's working folder for an exercise: ./kflex-labs/<n>-<slug> unless --dir says otherwise. */
export const workDir = (e: Exercise, dir?: string, cwd = process.cwd()) => dir ?? join(cwd, 'kflex-labs', `${e.n}-${e.slug}`);

/** Pure: the README's "## Task" section (what `start` prints), or its first paragraph. */
export function taskText(readme: string): string {
  const m = readme.match(/^## Task\n([\s\S]*?)(?=^## |$(?![\s\S]))/m);
  return (m ? m[1]! : (readme.split('\n\n')[1] ?? readme)).trim();
}

export interface ExerciseListing {
  n: number;
  slug: string;
  title: string;
  dir: string;
  started: boolean;
  needs?: string;
}

export function listExercises(cwd = process.cwd()): ExerciseListing[] {
  return EXERCISES.map((e) => {
    const dir = workDir(e, undefined, cwd);
    const needs = e.needsKernel ? `kernel >= ${e.needsKernel.version.join('.')} (${e.needsKernel.why})` : undefined;
    return { n: e.n, slug: e.slug, title: e.title, dir, started: existsSync(join(dir, e.file)), ...(needs ? { needs } : {}) };
  });
}

/** Copy the starter files into the working folder (never over a student's work). */
export async function startExercise(
  n: string,
  o: { dir?: string } = {},
): Promise<{ exercise: Exercise; dir: string; file: string; task: string; created: boolean; header?: string }> {
  const e = exerciseByN(n);
  const dir = workDir(e, o.dir);
  const created = !existsSync(join(dir, e.file));
  if (created) {
    await mkdir(dir, { recursive: true });
    await cp(join(exerciseDir(e), 'starter'), dir, { recursive: true, force: false, errorOnExist: false });
    await cp(join(exerciseDir(e), 'README.md'), join(dir, 'README.md'), { force: false, errorOnExist: false });
  }
  const task = taskText(await readFile(join(exerciseDir(e), 'README.md'), 'utf8'));
  // The lab's header is named only to the exercises whose starter includes it (1 and 2 need none).
  const starter = await readFile(join(exerciseDir(e), 'starter', e.file), 'utf8');
  const header = /#include\s+"kflex_lab\.h"/.test(starter) ? join(LABS_DIR, 'include', 'kflex_lab.h') : undefined;
  return { exercise: e, dir, file: join(dir, e.file), task, created, ...(header ? { header } : {}) };
}

/** Put the starter file back; the student's version is kept beside it as <file>.<time>.bak. */
export async function resetExercise(n: string, o: { dir?: string } = {}): Promise<{ file: string; backup?: string }> {
  const e = exerciseByN(n);
  const dir = workDir(e, o.dir);
  const file = join(dir, e.file);
  let backup: string | undefined;
  if (existsSync(file)) {
    backup = `${file}.${new Date().toISOString().replace(/[:.]/g, '-')}.bak`;
    await rename(file, backup);
  }
  await mkdir(dir, { recursive: true });
  await cp(join(exerciseDir(e), 'starter', e.file), file);
  return { file, ...(backup ? { backup } : {}) };
}

/** The most a submission may bring: a few small C files, nothing else. */
export const SUBMISSION_LIMITS = { files: 8, bytes: 64 * 1024 };

/**
 * A submission's files, read as plain files only: C sources and headers at the top of the folder. A symlink
 * (which could point at a host file, or another student's) is refused, not followed.
 */
export async function readSubmission(dir: string, e: Exercise): Promise<Array<{ name: string; data: Buffer }>> {
  if (!existsSync(join(dir, e.file)))
    throw new LabError(`no ${e.file} in ${dir}`, ExitCode.usage, `kflex-lab lab start ${e.n} (or --dir the folder that holds ${e.file})`);
  const out: Array<{ name: string; data: Buffer }> = [];
  let total = 0;
  for (const name of (await readdir(dir)).sort()) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\.[ch]$/.test(name)) continue;
    // The lab's header is the lab's: a copy beside the program would shadow the one the grader reads with.
    if (name === 'kflex_lab.h') continue;
    const st = await lstat(join(dir, name));
    if (!st.isFile()) throw new LabError(`${join(dir, name)} is not a plain file (a symlink?): the lab reads only plain files`, ExitCode.usage);
    total += st.size;
    if (out.length >= SUBMISSION_LIMITS.files || total > SUBMISSION_LIMITS.bytes)
      throw new LabError(`${dir}: more than ${SUBMISSION_LIMITS.files} C files or ${SUBMISSION_LIMITS.bytes / 1024} KiB`, ExitCode.usage);
    out.push({ name, data: await readFile(join(dir, name)) });
  }
  return out;
}

// ---------------------------------------------------------------- inside the guests

const ROOT = '/var/lib/kflex-labs';
const PIN = '/sys/fs/bpf/kflex-labs';

/** Files for a guest script's stdin: a name line, then its bytes in base64 on one line. */
export const filesInput = (files: Array<{ name: string; data: Buffer }>) => files.map((f) => `${f.name}\n${f.data.toString('base64')}\n`).join('');

/**
 * The graders' tools (labnet on both VMs, labctl on the server), built in the guest from labs/guest/ and
 * kept for the boot in a folder named by their sources' hash. $1 tools dir, $2 labnet|both; stdin the sources.
 */
export const PREP_SCRIPT = `set -u
d="$1"; want="$2"
if [ -x "$d/labnet" ] && { [ "$want" = labnet ] || [ -x "$d/labctl" ]; }; then echo @@ready; exit 0; fi
rm -rf "$d.tmp"; mkdir -p "$d.tmp/include"
while read -r name && read -r data; do printf %s "$data" | base64 -d > "$d.tmp/$name" || exit 1; done
mv "$d.tmp/kflex_lab.h" "$d.tmp/include/"; cd "$d.tmp"
clang-19 -O2 -Wall -o labnet labnet.c 2>&1 || { echo "@@build-failed labnet"; exit 1; }
if [ "$want" = both ]; then clang-19 -O2 -Wall -I include -o labctl labctl.c -lbpf 2>&1 || { echo "@@build-failed labctl"; exit 1; }; fi
rm -rf "$d"; mv "$d.tmp" "$d"; echo @@built`;

/**
 * Server, one round trip before grading: the kernel's release; the tools must be there; the last
 * submission forgotten unless the last check cleaned up (XDP off, pins, its processes, files); this one
 * written from stdin (text: a name line, a line count, the lines) and built with clang-19 (60 s of CPU,
 * 1 GiB of memory at most); for an XDP exercise loaded and attached, then the exercise's server setup.
 * Under TCG each process start costs tenths of a second: shell builtins wherever they do.
 * $1 root $2 pin $3 NIC $4 tools dir $5 file $6 object $7 attach (xdp or empty) $8 setup (shell, $1 = labnet).
 */
export const COMPILE_SCRIPT = `root="$1"; pin="$2"; ifname="$3"; tools="$4"; file="$5"; obj="$6"; attach="$7"; setup="$8"
t() { read -r up _ < /proc/uptime; echo "@@t $1 $up"; }
read -r release < /proc/sys/kernel/osrelease; echo "@@kernel $release"; t start
[ -x "$tools/labctl" ] && [ -x "$tools/labnet" ] || { echo @@need-tools; exit 0; }
st=; read -r st < "$root/state" 2>/dev/null
if [ "$st" != clean ]; then
  ip link set dev "$ifname" xdp off 2>/dev/null
  for p in "$root"/scratch/*.pid; do [ -f "$p" ] && read -r pid < "$p" && kill -9 "$pid" 2>/dev/null; done
  rm -rf "$pin" "$root/sub" "$root/scratch"; mkdir -p "$pin" "$root/sub" "$root/scratch"
fi
echo dirty > "$root/state"; t reset
while IFS= read -r name && IFS= read -r n; do
  i=0; while [ "$i" -lt "$n" ] && IFS= read -r line; do printf '%s\\n' "$line"; i=$((i + 1)); done > "$root/sub/$name"
done
set -- /usr/include/*-linux-gnu/asm; multiarch="\${1%/asm}"
cd "$root/sub" || exit 1; t write
(ulimit -t 60; ulimit -v 1048576; exec clang-19 --target=bpf -O2 -g -Wall -I "$tools/include" -I "$multiarch" -c "$file" -o "$obj") </dev/null 2>&1
rc=$?; t clang; echo "@@clang $rc"
[ "$rc" = 0 ] && [ "$attach" = xdp ] || exit 0
"$tools/labctl" xdp "$obj" "$ifname" "$pin" 2>&1; rc=$?; t load; echo "@@loaded $rc"
[ "$rc" = 0 ] && [ -n "$setup" ] || exit 0
set -- "$tools/labnet"; eval "$setup"; echo "@@setup $?"; t setup`;

/** Pure: a submission's files as the compile script reads them (text only: a NUL byte is refused). */
export function textFilesInput(files: Array<{ name: string; data: Buffer }>): string {
  return files
    .map((f) => {
      if (f.data.includes(0)) throw new LabError(`${f.name} is not a text file (it holds a NUL byte)`, ExitCode.usage);
      const lines = f.data.toString('utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      return `${f.name}\n${lines.length}\n${lines.map((l) => `${l}\n`).join('')}`;
    })
    .join('');
}

/**
 * Server, after grading: detach, stop what the grader started, remove the submission, and prove the link
 * carries traffic again by pinging the client (its answer also refreshes a neighbour entry a dropped ARP
 * left failed); the link's address is set again only when that ping fails. $1 root $2 pin $3 NIC $4 client.
 */
export const RESET_SCRIPT = `root="$1"; pin="$2"; ifname="$3"
ip link set dev "$ifname" xdp off 2>/dev/null
for p in "$root"/scratch/*.pid; do [ -f "$p" ] && read -r pid < "$p" && kill -9 "$pid" 2>/dev/null; done
rm -rf "$pin" "$root/sub" "$root/scratch"; mkdir -p "$pin" "$root/sub" "$root/scratch"; echo clean > "$root/state"
ping -c 1 -W 3 "$4" >/dev/null 2>&1 && { echo @@link-ok; exit 0; }
/usr/local/sbin/kflex-link-setup >/dev/null 2>&1
ping -c 1 -W 3 "$4" >/dev/null 2>&1 && echo @@link-ok || echo @@link-down`;

/** Pure: a kernel release `7.3.4-kflex` -> [7, 3]. */
export function kernelVersion(release: string): [number, number] | undefined {
  const m = release.match(/^(\d+)\.(\d+)/);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const older = (a: [number, number], b: [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/** The tools' directory in the guests: named by the hash of their sources, so an edited grader tool is rebuilt. */
async function toolsDir(): Promise<{ dir: string; files: Array<{ name: string; data: Buffer }> }> {
  const files = await Promise.all(Object.entries(GUEST_SOURCES).map(async ([name, path]) => ({ name, data: await readFile(path) })));
  const h = createHash('sha256');
  for (const f of files) h.update(f.name).update(f.data);
  return { dir: `${ROOT}/tools/${h.digest('hex').slice(0, 12)}`, files };
}

/** Pure: what the compile script said: the kernel, missing tools, clang's verdict and messages, labctl's load and its exit. */
export function parseCompile(out: string): {
  kernel?: string;
  needTools: boolean;
  clang?: number;
  log: string;
  load?: { code: number; stdout: string };
  /** Seconds of each step in the guest (reset, write, clang, load, setup), from /proc/uptime. */
  steps: Record<string, number>;
} {
  const stamps = [...out.matchAll(/^@@t (\S+) ([\d.]+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  const steps = Object.fromEntries(stamps.slice(1).map(([name, at], i) => [name, Math.round((at - stamps[i]![1]) * 10) / 10]));
  const kernel = out.match(/^@@kernel (\S+)/m)?.[1];
  const clangAt = out.search(/^@@clang \d+$/m);
  const clang = out.match(/^@@clang (\d+)$/m)?.[1];
  const loaded = out.match(/^@@loaded (\d+)$/m);
  const before = clangAt < 0 ? out : out.slice(0, clangAt);
  const afterClang = clangAt < 0 ? '' : out.slice(out.indexOf('\n', clangAt) + 1);
  return {
    ...(kernel ? { kernel } : {}),
    needTools: /^@@need-tools$/m.test(out),
    ...(clang !== undefined ? { clang: Number(clang) } : {}),
    log: before.replace(/^@@.*\n?/gm, '').trim(),
    ...(loaded ? { load: { code: Number(loaded[1]), stdout: afterClang.slice(0, afterClang.search(/^@@loaded \d+$/m)).replace(/^@@t .*\n?/gm, '') } } : {}),
    steps,
  };
}

/** ssh's words for a connection that never got as far as running the command (so running it again is safe). */
const SSH_NOT_CONNECTED = /timed out during banner exchange|Connection timed out|Connection refused|kex_exchange_identification|Connection closed by .* port/;

// ---------------------------------------------------------------- the session

export interface SessionOptions {
  vm?: string;
  /** Progress for people (stderr): VMs coming up, tools built, recovery. */
  log: (m: string) => void;
}

type Files = Array<{ name: string; data: Buffer }>;

/** One command's use of the VMs: brought up if needed, tools built once per boot, one submission at a time. */
export class LabSession {
  private testbed?: VmTestbed;
  private tools?: { dir: string; files: Files };
  private clientReady = false;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly o: SessionOptions,
  ) {}

  /** Attach to the VM set, or bring it up (the same `up` as `kflex-lab up`) when it is not running. */
  async ensure(): Promise<VmTestbed> {
    if (this.testbed) return this.testbed;
    const dir = vmDir(this.config, this.o.vm);
    try {
      this.testbed = await VmTestbed.attach(dir, this.config.cacheRoot, this.config.profile);
    } catch (e) {
      if (!(e instanceof LabError)) throw e;
      this.o.log(`the VMs are not up (${e.message.split('\n')[0]}): bringing them up`);
      await down(this.config, { vm: this.o.vm });
      await up(this.config, { vm: this.o.vm });
      this.testbed = await VmTestbed.attach(dir, this.config.cacheRoot, this.config.profile);
    }
    return this.testbed;
  }

  private guestExec(vm: Host): GuestExec {
    // A new connection (the shared one closes after minutes idle) is a key exchange in an emulated CPU on a
    // loaded host: give it 30 s, not the default 5, and try once more if it still did not get through.
    const host = vm instanceof SshHost ? new SshHost({ ...vm.target, options: { ...vm.target.options, ConnectTimeout: '30' } }) : vm;
    return async (argv, o = {}) => {
      const s = o.timeoutS ?? 60;
      const exec = () => host.exec(argv, { timeoutMs: s * 1000, allowFailure: true, ...(o.input !== undefined ? { input: o.input } : {}) });
      const t0 = Date.now();
      let r = await exec();
      const notConnected = (x: typeof r) => x.code === 255 && !x.stdout && SSH_NOT_CONNECTED.test(x.stderr);
      if (notConnected(r) && Date.now() - t0 < s * 1000 - 100) r = await exec();
      if (process.env.KFLEX_LAB_TRACE) this.o.log(`${vm.name}: ${((Date.now() - t0) / 1000).toFixed(2)} s: ${o.what ?? argv[0]}`);
      if (r.code !== 0 && Date.now() - t0 >= s * 1000 - 100) throw new SubmissionHung(o.what ?? argv.join(' ').slice(0, 60), s);
      // ssh's own failure (255 with nothing from the command): the VM stopped answering.
      if (r.code === 255 && !r.stdout)
        throw new SubmissionHung(`${o.what ?? argv[0]} (the ${vm.name} VM did not answer: ${r.stderr.trim().split('\n').at(-1)})`, 0);
      return r;
    };
  }

  /** Build the graders' tools in one VM (both on the server, labnet on the client) unless this boot has them. */
  private async buildTools(role: 'server' | 'client'): Promise<void> {
    const t = await this.ensure();
    this.tools ??= await toolsDir();
    const t0 = Date.now();
    const r = await this.guestExec(t[role])(['sh', '-c', PREP_SCRIPT, 'prep', this.tools.dir, role === 'server' ? 'both' : 'labnet'], {
      input: filesInput(this.tools.files),
      timeoutS: 300,
      what: `building the lab's tools on the ${role}`,
    });
    if (!/^@@(ready|built)$/m.test(r.stdout))
      throw new LabError(`building the lab's tools in the ${role} VM failed:\n${(r.stdout + r.stderr).trim().slice(-2000)}`, ExitCode.infra);
    if (/^@@built$/m.test(r.stdout)) this.o.log(`built the graders' tools in the ${role} VM in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  private paths(): GuestPaths {
    const d = this.tools!.dir;
    return { labctl: `${d}/labctl`, labnet: `${d}/labnet`, sub: `${ROOT}/sub`, object: `${ROOT}/sub/prog.bpf.o`, pin: PIN, scratch: `${ROOT}/scratch` };
  }

  /** Check one submission: compile in the server VM, grade, and always leave the VMs as they were. */
  async check(e: Exercise, files: Files, seed = randomInt(2 ** 31)): Promise<CheckResult> {
    const t0 = Date.now();
    const phases: Record<string, number> = {};
    const mark = (name: string, since: number) => (phases[name] = Math.round((Date.now() - since) / 100) / 10);
    const done = (r: Omit<CheckResult, 'exercise' | 'slug' | 'seed' | 'seconds' | 'phases'>): CheckResult => ({
      exercise: e.n,
      slug: e.slug,
      ...r,
      seed,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      phases,
    });
    try {
      let t = Date.now();
      const compiled = await this.compile(e, files);
      mark('compile', t);
      for (const [k, v] of Object.entries(compiled.steps)) phases[`compile.${k}`] = v;
      const v = kernelVersion(compiled.kernel ?? '');
      if (e.needsKernel && v && older(v, e.needsKernel.version))
        return done({ pass: false, stage: 'kernel', tests: [], message: kernelTooOld(e, compiled.kernel!) });
      if (compiled.clang !== 0) return done({ pass: false, stage: 'compile', tests: [], message: 'clang-19 could not build your program', log: compiled.log });
      if (e.attach) judgeLoad({ ...(compiled.load ?? { code: -1, stdout: 'no load step ran' }), stderr: '' }, 'load and attach in driver mode');
      t = Date.now();
      const tests = await e.grade(this.context(seed));
      mark('grade', t);
      t = Date.now();
      const recovered = await this.cleanup();
      mark('cleanup', t);
      const pass = tests.length > 0 && tests.every((x) => x.pass);
      return done({ pass, stage: 'graded', tests, ...(compiled.log ? { log: compiled.log } : {}), ...recovered });
    } catch (err) {
      if (err instanceof SubmissionRejected) {
        const recovered = await this.cleanup();
        return done({ pass: false, stage: err.stage, tests: [], message: err.message, ...(err.log ? { log: err.log } : {}), ...recovered });
      }
      if (err instanceof SubmissionHung) {
        const recovered = await this.restart(err.message);
        const why = err.what.startsWith('compil') ? 'the server VM stopped answering' : 'your program never returned, or took the VM with it';
        return done({ pass: false, stage: 'hung', tests: [], message: `${err.message}: ${why}`, recovered });
      }
      throw err;
    }
  }

  /** The compile round trip on the server, with the client's tools checked meanwhile; tools built when missing. */
  private async compile(e: Exercise, files: Files): Promise<ReturnType<typeof parseCompile>> {
    const t = await this.ensure();
    this.tools ??= await toolsDir();
    const setup = e.serverSetup?.(this.paths(), t.link.serverIp) ?? '';
    const argv = ['sh', '-c', COMPILE_SCRIPT, 'compile', ROOT, PIN, LINK_IF, this.tools.dir, e.file, `${ROOT}/sub/prog.bpf.o`, e.attach ?? '', setup];
    // clang has 60 s of CPU (ulimit in the script); the wall clock of an emulated CPU on a busy host is longer.
    const o = { input: textFilesInput(files), timeoutS: 400, what: e.attach ? 'compiling and attaching your program' : 'compiling your program' };
    const client = this.clientReady
      ? Promise.resolve()
      : this.buildTools('client').then(() => {
          this.clientReady = true;
        });
    let [r] = await Promise.all([this.guestExec(t.server)(argv, o), client]);
    if (parseCompile(r.stdout).needTools) {
      await this.buildTools('server');
      r = await this.guestExec(t.server)(argv, o);
    }
    const c = parseCompile(r.stdout);
    if (c.clang === undefined && !c.needTools)
      throw new LabError(`the compile step in the server VM printed no result (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(-500)}`, ExitCode.infra);
    if (c.clang === 124 || c.clang === 137) return { ...c, log: `${c.log}\nclang-19 did not finish within 90 s and was stopped`.trim() };
    return c;
  }

  private context(seed: number): GradeContext {
    const t = this.testbed!;
    return {
      server: this.guestExec(t.server),
      client: this.guestExec(t.client),
      serverIp: t.link.serverIp,
      clientIp: t.link.clientIp,
      ifname: LINK_IF,
      paths: this.paths(),
      random: seededRandom(seed),
    };
  }

  /** After each submission: one server round trip (detach, stop, remove, ping the client over the link). */
  private async cleanup(): Promise<{ recovered?: string }> {
    const t = this.testbed!;
    try {
      const s = await this.guestExec(t.server)(['sh', '-c', RESET_SCRIPT, 'reset', ROOT, PIN, LINK_IF, t.link.clientIp], {
        timeoutS: 60,
        what: 'resetting the server and checking the link',
      });
      if (!/@@link-ok/.test(s.stdout)) return { recovered: await this.restart('after the check the link did not carry traffic again') };
      return {};
    } catch (err) {
      if (err instanceof SubmissionHung) return { recovered: await this.restart(err.message) };
      throw err;
    }
  }

  /** The last resort: stop and boot the VM set again (a fresh overlay: nothing of the submission survives). */
  private async restart(why: string): Promise<string> {
    const t0 = Date.now();
    this.o.log(`${why}: restarting the VMs`);
    this.testbed = undefined;
    this.clientReady = false;
    await down(this.config, { vm: this.o.vm });
    await this.ensure();
    await Promise.all([this.buildTools('server'), this.buildTools('client')]);
    this.clientReady = true;
    return `${why}; the VMs were restarted (${((Date.now() - t0) / 1000).toFixed(0)} s) and are usable again`;
  }
}

const kernelTooOld = (e: Exercise, kernel: string) =>
  `exercise ${e.n} needs a kernel >= ${e.needsKernel!.version.join('.')} (${e.needsKernel!.why}); the server VM runs ${kernel}: ` +
  'use a profile with a newer kernel (kflex-lab down, then lab check --profile ...)';

// ---------------------------------------------------------------- commands

/** `lab check N`: the student's folder, checked in the VMs (brought up if needed). */
export async function checkExercise(config: ResolvedConfig, n: string, o: SessionOptions & { dir?: string; seed?: number }): Promise<CheckResult> {
  const e = exerciseByN(n);
  const files = await readSubmission(workDir(e, o.dir), e);
  return new LabSession(config, o).check(e, files, o.seed);
}

/** One line of the instructor's view: a student, an exercise, a test. */
export interface ClassLine {
  student: string;
  exercise: number;
  test: string;
  pass: boolean;
  expected?: string;
  seen?: string;
  message?: string;
}

/** Pure: a check's result as the instructor's lines (one per test; one for a submission stopped before grading). */
export function classLines(student: string, r: CheckResult): ClassLine[] {
  if (r.stage !== 'graded')
    return [
      {
        student,
        exercise: r.exercise,
        test: r.stage === 'compile' ? 'compiles' : r.stage === 'hung' ? 'returns' : 'loads',
        pass: false,
        message: r.message ?? r.stage,
      },
    ];
  return r.tests.map((t) => ({ student, exercise: r.exercise, test: t.name, pass: t.pass, expected: t.expected, seen: t.seen }));
}

/**
 * `lab check --all DIR`: DIR/<student>/<n>-<slug>/ for every student and exercise found, one submission at a
 * time in the same VMs (each folder read alone; the server's copy is removed before the next one arrives).
 */
export async function checkClass(
  config: ResolvedConfig,
  root: string,
  o: SessionOptions & { onLine: (l: ClassLine) => void; only?: string },
): Promise<ClassLine[]> {
  if (!existsSync(root)) throw new LabError(`no folder ${root}`, ExitCode.usage);
  const session = new LabSession(config, o);
  const all: ClassLine[] = [];
  const exercises = o.only ? [exerciseByN(o.only)] : EXERCISES;
  for (const student of (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort())
    for (const e of exercises) {
      const dir = join(root, student, `${e.n}-${e.slug}`);
      if (!existsSync(dir)) continue;
      let lines: ClassLine[];
      try {
        lines = classLines(student, await session.check(e, await readSubmission(dir, e)));
      } catch (err) {
        if (!(err instanceof LabError) || err.exitCode !== ExitCode.usage) throw err;
        lines = [{ student, exercise: e.n, test: 'submission', pass: false, message: err.message }];
      }
      for (const l of lines) o.onLine(l);
      all.push(...lines);
    }
  return all;
}
