import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fingerprint, canonicalJson, buildEntry, readEntry, type Stage } from '../../core/stage.js';
import { plan, buildStages, closure } from '../../core/runner.js';
import { EventBus, type LabEvent } from '../../core/events.js';
import { tempDir, ROOT } from '../helpers.js';

function counting(id: string, deps: string[] = [], body?: (dir: string) => Promise<void>): Stage & { builds: number } {
  const s = {
    id,
    version: '1',
    deps,
    description: id,
    builds: 0,
    inputs: async () => ({ id }),
    build: async (ctx: { outDir: string }) => {
      s.builds++;
      await (body ?? (async (d: string) => writeFile(join(d, 'out'), id)))(ctx.outDir);
      return { made: id };
    },
  };
  return s;
}

const ctxBase = (cacheRoot: string) => ({ config: {} as never, deps: {}, cacheRoot, bus: new EventBus() });

describe('fingerprints', () => {
  it('are stable under key order and change with inputs, version and deps', () => {
    const s = { id: 'kernel', version: '1' };
    const a = fingerprint(s, { b: 1, a: [1, { y: 2, x: 1 }] }, { llvm: 'f1' });
    expect(fingerprint(s, { a: [1, { x: 1, y: 2 }], b: 1 }, { llvm: 'f1' })).toBe(a);
    expect(fingerprint(s, { a: [1, { x: 1, y: 3 }], b: 1 }, { llvm: 'f1' })).not.toBe(a);
    expect(fingerprint({ ...s, version: '2' }, { b: 1, a: [1, { y: 2, x: 1 }] }, { llvm: 'f1' })).not.toBe(a);
    expect(fingerprint(s, { b: 1, a: [1, { y: 2, x: 1 }] }, { llvm: 'f2' })).not.toBe(a);
    expect(canonicalJson({ b: undefined, a: 1 })).toBe('{"a":1}');
  });
});

describe('cache entries', () => {
  it('are reused once complete, rebuilt with force', async () => {
    const root = tempDir();
    const s = counting('x');
    const first = await buildEntry(s, 'fp1', ctxBase(root));
    expect(first.cached).toBe(false);
    expect(await readFile(join(first.output.dir, 'out'), 'utf8')).toBe('x');
    expect(first.output.manifest).toMatchObject({ stage: 'x', fingerprint: 'fp1', made: 'x' });
    expect(existsSync(join(first.output.dir, 'build.log'))).toBe(true);
    expect((await buildEntry(s, 'fp1', ctxBase(root))).cached).toBe(true);
    await buildEntry(s, 'fp1', ctxBase(root), { force: true });
    expect(s.builds).toBe(2);
  });

  it('a build killed mid-write is never reused, and its temporary is swept', async () => {
    const root = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/unit/support/slow-stage.ts'), root, 'fpk'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('READY') && resolve());
      child.on('exit', (c) => reject(new Error(`child exited ${c} before writing`)));
    });
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(readdirSync(join(root, 'slow')).some((n) => n.startsWith('fpk.tmp-'))).toBe(true);
    expect(await readEntry(root, 'slow', 'fpk')).toBeUndefined();
    const again = counting('slow');
    const r = await buildEntry(again, 'fpk', ctxBase(root));
    expect(r.cached).toBe(false);
    expect(again.builds).toBe(1);
    expect(readdirSync(join(root, 'slow')).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(existsSync(join(r.output.dir, 'half.bin'))).toBe(false);
  }, 60_000);

  it('a failed build leaves no entry and reports the log tail', async () => {
    const root = tempDir();
    const bad = counting('bad', [], async () => {
      throw new Error('compiler exploded');
    });
    await expect(buildEntry(bad, 'f', ctxBase(root))).rejects.toThrow(/stage bad failed: compiler exploded/);
    expect(await readEntry(root, 'bad', 'f')).toBeUndefined();
  });

  it('the lock lets one of two concurrent builders build; the other reuses its result', async () => {
    const root = tempDir();
    const s = counting('locked', [], async (d) => {
      await new Promise((r) => setTimeout(r, 1500));
      await writeFile(join(d, 'out'), 'once');
    });
    const [a, b] = await Promise.all([buildEntry(s, 'fl', ctxBase(root)), buildEntry(s, 'fl', ctxBase(root))]);
    expect(s.builds).toBe(1);
    expect([a.cached, b.cached].sort()).toEqual([false, true]);
  }, 30_000);
});

describe('runner', () => {
  it('orders by dependencies, overlaps independent stages and emits typed events', async () => {
    const root = tempDir();
    const started: Record<string, number> = {};
    const slow = (id: string, deps: string[] = []) =>
      counting(id, deps, async (d) => {
        started[id] = Date.now();
        await new Promise((r) => setTimeout(r, 400));
        await writeFile(join(d, 'out'), id);
      });
    const stages = new Map([slow('kernel'), slow('image'), slow('vms', ['kernel', 'image'])].map((s) => [s.id, s as Stage]));
    expect(closure(stages, ['vms']).map((s) => s.id)).toEqual(['kernel', 'image', 'vms']);
    const config = { cacheRoot: root } as never;
    const bus = new EventBus();
    const events: LabEvent[] = [];
    bus.on((e) => events.push(e));
    const planned = await plan(stages, ['vms'], config, root);
    expect(planned.every((p) => !p.cached)).toBe(true);
    const out = await buildStages(planned, config, root, bus);
    expect(Object.keys(out).sort()).toEqual(['image', 'kernel', 'vms']);
    expect(Math.abs(started.kernel! - started.image!)).toBeLessThan(300);
    expect(started.vms! - Math.max(started.kernel!, started.image!)).toBeGreaterThanOrEqual(350);
    expect(
      events
        .filter((e) => e.type === 'stage-done')
        .map((e) => (e as { stage: string }).stage)
        .sort(),
    ).toEqual(['image', 'kernel', 'vms']);
    const again = await plan(stages, ['vms'], config, root);
    expect(again.every((p) => p.cached)).toBe(true);
    expect(closure.bind(null, stages, ['nope'])).toThrow(/unknown stage 'nope'/);
  });
});
