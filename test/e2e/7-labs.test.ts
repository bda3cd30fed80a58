import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lab, explain } from './cli.js';
import { FIXTURES, ROOT, requireOrSkip, tempDir } from '../helpers.js';
import { loadConfig } from '../../core/config.js';
import { qemuPid } from '../../vm/state.js';
import { EXERCISES } from '../../labs/index.js';
import type { CheckResult, ClassLine } from '../../lab/exercises.js';

// The student labs on the smoke kernel, under TCG here: one VM set, booted by the first `lab check` (the
// VMs come up when they are not up) and reused by every check after it. Every exercise's reference must
// pass and every wrong solution must fail with its grader's message; bad submissions get an answer and
// leave the VMs usable. Real QEMU, real clang in the guest, the real verifier, real memcached.
const VM = 'e2e-labs';
const SOLUTIONS = process.env.KFLEX_LAB_SOLUTIONS ?? join(ROOT, 'labs-solutions');
const cache = loadConfig({ profile: 'smoke' }).cacheRoot;
const vmDir = join(cache, 'vms', VM);
const common = ['--profile', 'smoke', '--vm', VM];
const timings: string[] = [];
const timed = async (what: string, args: string[]) => {
  const t0 = Date.now();
  const r = await lab(args);
  timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
};

interface Expect {
  pass: boolean;
  failing?: string[];
  stage?: string;
}

beforeAll(async () => {
  await lab(['down', ...common]);
});

afterAll(async () => {
  await lab(['down', ...common]);
  console.log(`7-labs timings:\n  ${timings.join('\n  ')}`);
});

/** The kernel the smoke profile boots decides whether exercises 5 and 6 (>= 6.9) can run. */
async function serverKernel(): Promise<[number, number]> {
  const r = await lab(['exec', 'server', ...common, '--', 'uname', '-r']);
  const m = r.stdout.match(/^(\d+)\.(\d+)/);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

describe('student labs', () => {
  let kernel: [number, number] = [0, 0];

  it('a student: lab start 1, the task printed, the file edited, lab check 1 passes (the VMs came up by themselves); QEMU runs as nobody', async () => {
    const work = join(tempDir(), '1-proto-count');
    const start = await lab(['lab', 'start', '1', '--dir', work]);
    expect(start.code, explain(start)).toBe(0);
    expect(start.stdout).toMatch(/## Task|proto_count/);
    expect(start.stdout).toContain(join(work, 'prog.bpf.c'));
    copyFileSync(join(SOLUTIONS, '1-proto-count', 'reference.bpf.c'), join(work, 'prog.bpf.c'));
    const r = await timed('lab check 1 with the VMs down (boot, tools, check)', ['lab', 'check', '1', '--dir', work, '--json', ...common]);
    expect(r.code, explain(r)).toBe(0);
    const res = JSON.parse(r.stdout) as CheckResult;
    expect(res.pass, explain(r)).toBe(true);
    expect(res.tests.length).toBeGreaterThanOrEqual(5);
    expect(r.stderr).toMatch(/bringing them up/);
    // QEMU gave up root once its devices were open (-runas on QEMU < 9, -run-with user= on >= 9).
    const nobody = readFileSync('/etc/passwd', 'utf8').match(/^nobody:[^:]*:(\d+):/m)?.[1];
    for (const role of ['server', 'client']) {
      const pid = qemuPid(join(vmDir, `${role}.pid`));
      expect(pid, `${role} QEMU running`).toBeTruthy();
      const uid = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)\s+(\d+)/m);
      if (process.getuid?.() === 0) expect([uid?.[1], uid?.[2]], `${role} QEMU's real and effective uid`).toEqual([nobody, nobody]);
    }
    // Again with the VMs up: the fast loop a student lives in.
    const again = await timed('lab check 1 with the VMs up', ['lab', 'check', '1', '--dir', work, ...common]);
    expect(again.code, explain(again)).toBe(0);
    expect(again.stdout).toMatch(/verdict: PASS/);
    kernel = await serverKernel();
  });

  it("every exercise's reference passes and each wrong solution fails with its grader's message (the instructor's check --all)", async () => {
    const cls = tempDir('kflex-class-');
    const want = new Map<string, Expect>();
    const modern = kernel[0] > 6 || (kernel[0] === 6 && kernel[1] >= 9);
    if (!requireOrSkip(modern, `exercises 5 and 6 need the smoke profile's kernel >= 6.9 (it booted ${kernel.join('.')})`))
      console.warn('exercises 5 and 6 are left out of this run');
    for (const e of EXERCISES) {
      if (e.needsKernel && !modern) continue;
      const dir = join(SOLUTIONS, `${e.n}-${e.slug}`);
      const expects = JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8')) as Record<string, Expect>;
      for (const [file, x] of Object.entries(expects)) {
        // A student per solution: DIR/<student>/<n>-<slug>/prog.bpf.c, as students hand them in.
        const student = `${e.n}-${file.replace(/\.bpf\.c$/, '')}`;
        mkdirSync(join(cls, student, `${e.n}-${e.slug}`), { recursive: true });
        copyFileSync(join(dir, file), join(cls, student, `${e.n}-${e.slug}`, 'prog.bpf.c'));
        want.set(student, x);
      }
    }
    const r = await timed(`lab check --all over ${want.size} submissions`, ['lab', 'check', '--all', cls, '--json', ...common]);
    const lines = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ClassLine);
    expect(r.code, explain(r)).toBe(1); // the wrong ones fail
    for (const [student, x] of want) {
      const mine = lines.filter((l) => l.student === student);
      expect(mine.length, `${student}: no result\n${explain(r)}`).toBeGreaterThan(0);
      const failed = mine.filter((l) => !l.pass);
      const said = JSON.stringify(failed, null, 1);
      if (x.pass) expect(failed, `${student} must pass`).toEqual([]);
      else expect(failed.length, `${student} must fail`).toBeGreaterThan(0);
      for (const f of x.failing ?? [])
        expect(
          failed.some((l) => new RegExp(f).test(l.test)),
          `${student}: a failing test matching /${f}/ in ${said}`,
        ).toBe(true);
      if (x.stage === 'load') {
        // The verifier refused it: the message names the instruction it stopped at.
        expect(failed[0]?.test, said).toBe('loads');
        expect(failed[0]?.message, said).toMatch(/refused to load your program[\s\S]*at instruction \d+: /);
      }
    }
    // One submission at a time, in the same VMs: the server's copy of each is gone before the next arrives.
    const left = await lab([
      'exec',
      'server',
      ...common,
      '--',
      'sh',
      '-c',
      'ls -A /var/lib/kflex-labs/sub | wc -l; ip link show eth1 | grep -c prog/xdp || true',
    ]);
    expect(left.stdout.trim().split('\n'), explain(left)).toEqual(['0', '0']);
  });

  it('a bad submission gets a clear answer: the compiler (in the guest: a host file cannot be included), the verifier', async () => {
    const secret = join(tempDir(), 'host-secret.h');
    writeFileSync(secret, '#error "HOST FILE READ"\n');
    const work = join(tempDir(), 'bad');
    mkdirSync(work);
    writeFileSync(join(work, 'prog.bpf.c'), readFileSync(join(FIXTURES, 'labs', 'does-not-compile.bpf.c'), 'utf8').replace('HOST_FILE', secret));
    const r = await timed('lab check of a submission that does not compile', ['lab', 'check', '1', '--dir', work, ...common]);
    expect(r.code, explain(r)).toBe(1);
    expect(r.stdout).toMatch(/clang-19 could not build your program/);
    // The host's file is not there: the compiler ran in the VM.
    expect(r.stdout).toMatch(new RegExp(`prog\\.bpf\\.c:\\d+:\\d+: (fatal )?error: '${secret}' file not found`));
    expect(r.stdout).not.toMatch(/HOST FILE READ/);
    expect(r.stdout).toMatch(/verdict: FAIL \(stopped at: compile\)/);
  });

  it('a submission that never returns: the check says so, the VMs are restarted, and the next check passes', async () => {
    if (!requireOrSkip(kernel[0] > 6 || (kernel[0] === 6 && kernel[1] >= 9), 'exercise 5 needs a kernel >= 6.9')) return;
    const work = join(tempDir(), 'hang');
    mkdirSync(work);
    copyFileSync(join(FIXTURES, 'labs', 'never-returns.bpf.c'), join(work, 'prog.bpf.c'));
    const r = await timed('lab check of a submission that never returns (+ VM restart)', ['lab', 'check', '5', '--dir', work, '--json', ...common]);
    expect(r.code, explain(r)).toBe(1);
    const res = JSON.parse(r.stdout) as CheckResult;
    expect(res.stage).toBe('hung');
    expect(res.message).toMatch(/did not return within \d+ s/);
    expect(res.recovered).toMatch(/the VMs were restarted .* and are usable again/);
    const ok = join(tempDir(), '1-proto-count');
    mkdirSync(ok);
    copyFileSync(join(SOLUTIONS, '1-proto-count', 'reference.bpf.c'), join(ok, 'prog.bpf.c'));
    const next = await timed('lab check 1 after the restart', ['lab', 'check', '1', '--dir', ok, ...common]);
    expect(next.code, explain(next)).toBe(0);
  });

  it('list and reset', async () => {
    const l = await lab(['lab', 'list']);
    expect(l.code, explain(l)).toBe(0);
    expect(l.stdout.split('\n').filter((x) => /^\s*\d+ {2}/.test(x))).toHaveLength(EXERCISES.length);
    const work = join(tempDir(), 'r');
    await lab(['lab', 'start', '2', '--dir', work]);
    writeFileSync(join(work, 'prog.bpf.c'), 'mine');
    const r = await lab(['lab', 'reset', '2', '--dir', work]);
    expect(r.code, explain(r)).toBe(0);
    expect(readdirSync(work).some((f) => f.endsWith('.bak'))).toBe(true);
    expect(existsSync(join(work, 'prog.bpf.c'))).toBe(true);
  });
});
