import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { LAB_ROOT } from '../../core/paths.js';

/** Every source file of the lab (tests, dist and dependencies excluded). */
function sources(dir = LAB_ROOT): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    if (['node_modules', 'dist', 'test', '.git', 'results'].includes(f) || f.startsWith('.')) continue;
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of a file, type-only ones included (a cycle of types still ties two files together). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/gm)].map((m) =>
    resolve(dirname(file), (m[1] ?? m[2])!.replace(/\.js$/, '.ts')),
  );
}

describe('the structure the architecture promises', () => {
  const files = sources();
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((d) => files.includes(d))]));
  const rel = (f: string) => relative(LAB_ROOT, f);

  it('no import cycle between source files (static, type-only or dynamic)', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' -> '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('nothing in hosts/ imports vm/, and cli/ imports no experiment, VM, hosts or report code', () => {
    const bad = [...graph].flatMap(([f, deps]) =>
      deps
        .filter(
          (d) => (rel(f).startsWith('hosts/') && rel(d).startsWith('vm/')) || (rel(f).startsWith('cli/') && /^(experiments|vm|hosts|report)\//.test(rel(d))),
        )
        .map((d) => `${rel(f)} imports ${rel(d)}`),
    );
    expect(bad).toEqual([]);
  });

  it('no function is longer than 80 lines', () => {
    const long: string[] = [];
    for (const f of files) {
      const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (n: ts.Node) => {
        if (ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n)) {
          const a = sf.getLineAndCharacterOfPosition(n.getStart()).line;
          const b = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
          if (b - a + 1 > 80) long.push(`${rel(f)}:${a + 1} (${b - a + 1} lines)`);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(long).toEqual([]);
  });
});
