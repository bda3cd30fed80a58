import { describe, it, expect } from 'vitest';
import { readFileSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  MECHANISMS,
  MECHANISM_PROBES,
  mechanismsScript,
  parseMechanismsOutput,
  loadFailureMessage,
  objectOf,
  mechanismRows,
  unpackInput,
  UNPACK_SCRIPT,
  type MechanismProbe,
} from '../../experiments/mechanisms-support.js';
import { MECHANISMS_DIR, mechanismFiles } from '../../bpf/build.js';
import { FIXTURES } from '../helpers.js';

const fx = (f: string) => readFileSync(join(FIXTURES, 'mechanisms', f), 'utf8');
const byId = (r: ReturnType<typeof parseMechanismsOutput>, id: string) => r.results.find((x) => x.probe === id)!;

describe('mechanism table: probes and rows', () => {
  it('every probe has its program in bpf/mechanisms, and every program there is a probe', () => {
    const { sources } = mechanismFiles();
    expect(sources).toEqual(MECHANISM_PROBES.map((p) => p.program).sort());
    for (const p of MECHANISM_PROBES) expect(existsSync(join(MECHANISMS_DIR, p.program))).toBe(true);
  });

  it('every row names probes that exist, and every probe is in a row', () => {
    const ids = new Set(MECHANISM_PROBES.map((p) => p.id));
    const used = MECHANISMS.flatMap((m) => [m.upstreamProbe, ...(m.kflexProbe ? [m.kflexProbe] : [])]);
    for (const id of used) expect(ids.has(id)).toBe(true);
    expect(new Set(used)).toEqual(ids);
  });

  it("a probe's declared program type is the section its source declares", () => {
    for (const p of MECHANISM_PROBES) expect(readFileSync(join(MECHANISMS_DIR, p.program), 'utf8')).toContain(`SEC("${p.progType}")`);
  });
});

describe('mechanism probes: the guest script', () => {
  const script = mechanismsScript();

  it('loads every object pinned under its own name, runs only the XDP ones, and unpins each', () => {
    for (const p of MECHANISM_PROBES) {
      const pin = `/sys/fs/bpf/kflex_lab_mech_${p.id}`;
      expect(script).toContain(`bpftool prog load "$dir/${objectOf(p)}" ${pin} 2>&1`);
      expect(script.includes(`bpftool prog run pinned ${pin} `)).toBe(p.progType === 'xdp');
      expect(script).toContain(`rm -f ${pin}; echo @@end`);
    }
  });

  it('is valid sh (the guest runs it with sh -c)', () => {
    expect(() => execFileSync('sh', ['-n', '-c', script])).not.toThrow();
  });

  it('the copy (one NAME BASE64 line per object on stdin) writes every object byte for byte', async () => {
    const here = mkdtempSync(join(tmpdir(), 'kflex-mech-'));
    try {
      const objects: Record<string, string> = {};
      MECHANISM_PROBES.forEach((p, i) => {
        objects[objectOf(p)] = join(here, objectOf(p));
        writeFileSync(objects[objectOf(p)]!, Buffer.from(Array.from({ length: 5000 + i }, (_, j) => (j * 7 + i) % 256)));
      });
      const guest = join(here, 'guest');
      const out = execFileSync('sh', ['-c', UNPACK_SCRIPT, 'unpack', guest], { input: await unpackInput(objects), encoding: 'utf8' });
      expect(out).not.toMatch(/@@copy-failed/);
      for (const p of MECHANISM_PROBES) expect(readFileSync(join(guest, objectOf(p)))).toEqual(readFileSync(objects[objectOf(p)]!));
      await expect(unpackInput({})).rejects.toThrow(/no object arena.bpf.o .*build llvm/);
    } finally {
      rmSync(here, { recursive: true, force: true });
    }
  });

  it('refuses an id that cannot name a pin', () => {
    const bad: MechanismProbe = { ...MECHANISM_PROBES[0]!, id: 'a b' };
    expect(() => mechanismsScript([bad])).toThrow(/a-z, 0-9 and _/);
  });
});

describe('mechanism probes: parsing real loads (test/fixtures/mechanisms, captured in the smoke VM on Linux 7.3.4)', () => {
  const r = parseMechanismsOutput(fx('linux-7.3.4-smoke.txt'));

  it('names the kernel and gives one result per probe', () => {
    expect(r.kernel).toBe('7.3.4');
    expect(r.results.map((x) => x.probe)).toEqual(MECHANISM_PROBES.map((p) => p.id));
  });

  it('every upstream mechanism is present on 7.3; each XDP probe ran and returned XDP_PASS', () => {
    for (const id of ['arena', 'cond_break', 'res_spin_lock', 'irq', 'preempt']) expect(byId(r, id).present).toBe(true);
    for (const id of ['cond_break', 'res_spin_lock', 'irq', 'preempt']) expect(byId(r, id)).toMatchObject({ retval: 2, works: true });
    // A syscall program is loaded, not run: bpftool cannot run that type.
    expect(byId(r, 'arena').retval).toBeUndefined();
    expect(byId(r, 'arena').message).toBeUndefined();
  });

  it("KFlex's own kfuncs are absent on 7.3, with libbpf's reason and not its wrapper lines", () => {
    expect(byId(r, 'kflex_heap')).toMatchObject({
      present: false,
      message: "libbpf: extern (func ksym) 'bpf_register_heap': not found in kernel or module BTFs",
    });
    expect(byId(r, 'kflex_loop')).toMatchObject({
      present: false,
      message: "libbpf: extern (func ksym) 'bpf_iter_loop_destroy': not found in kernel or module BTFs",
    });
  });

  it('one row per mechanism with its upstream and KFlex-side results', () => {
    const rows = mechanismRows(r);
    expect(rows.map((x) => [x.mechanism.id, x.upstream.present, x.kflex?.present])).toEqual([
      ['heap', true, false],
      ['loop', true, false],
      ['lock', true, undefined],
      ['irq', true, undefined],
      ['preempt', true, undefined],
    ]);
    expect(() => mechanismRows({ kernel: '7.3.4', results: r.results.filter((x) => x.probe !== 'irq') })).toThrow(/no result for the irq probe/);
  });

  it('a probe missing from the output is an error, not an absent mechanism', () => {
    const cut = fx('linux-7.3.4-smoke.txt').split('@@probe preempt')[0]!;
    expect(() => parseMechanismsOutput(cut)).toThrow(/no result for preempt/);
  });
});

describe('mechanism probes: the verifier refusing a program (captured on Linux 7.3.4)', () => {
  const broken = [
    { ...MECHANISM_PROBES.find((p) => p.id === 'irq')!, id: 'irq_no_restore', program: 'irq_no_restore.bpf.c' },
    { ...MECHANISM_PROBES.find((p) => p.id === 'cond_break')!, id: 'no_cond_break', program: 'no_cond_break.bpf.c' },
  ];
  const r = parseMechanismsOutput(fx('linux-7.3.4-rejected.txt'), broken);

  it("the message is the verifier's last lines and the headline of 7.3's structured report, never its statistics", () => {
    const irq = byId(r, 'irq_no_restore');
    expect(irq.present).toBe(false);
    const lines = irq.message!.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[2]).toBe('BPF_EXIT instruction in main prog cannot be used inside bpf_local_irq_save-ed region');
    expect(lines[3]).toBe('Verification failed: Execution Context Safety: Operation is not allowed in this context');
    expect(irq.message).not.toMatch(/processed \d+ insns|failed to load object/);
  });

  it('a log without a structured report ends at the verdict', () => {
    expect(byId(r, 'no_cond_break').message!.split('\n')).toEqual(['infinite loop detected at insn 0', 'cur state: R10=fp0', 'old state: R10=fp0']);
  });

  it('a clipped log of a million instructions ends at "BPF program is too large", also with its BEGIN marker cut away', () => {
    const too = parseMechanismsOutput(fx('linux-7.3.4-too-large.txt'), [MECHANISM_PROBES.find((p) => p.id === 'cond_break')!]);
    const last = (m: string) => m.split('\n').at(-1);
    expect(too.results[0]).toMatchObject({ present: false });
    expect(last(too.results[0]!.message!)).toBe('BPF program is too large. Processed 1000001 insn');
    const headless = too.results[0]!.output.split('\n').slice(4).join('\n');
    expect(headless).not.toMatch(/BEGIN PROG LOAD LOG/);
    expect(last(loadFailureMessage(headless))).toBe('BPF program is too large. Processed 1000001 insn');
  });
});
