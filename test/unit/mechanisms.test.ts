import { describe, it, expect } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  MECHANISMS,
  MECHANISM_PROBES,
  mechanismsScript,
  type parseMechanismsOutput,
  loadFailureMessage,
  objectOf,
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

  it('refuses an id that cannot name a pin', () => {
    const bad: MechanismProbe = { ...MECHANISM_PROBES[0]!, id: 'a b' };
    expect(() => mechanismsScript([bad])).toThrow(/a-z, 0-9 and _/);
  });
});
