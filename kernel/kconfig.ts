/** Pure helpers for kernel configuration: fragments, verification, and why an option did not stick. */

export type ConfigValue = string; // 'y' | 'm' | 'n' | a number | a quoted string

/** Parse a .config or fragment: `CONFIG_X=v` and `# CONFIG_X is not set` (= n). */
export function parseConfig(text: string): Map<string, ConfigValue> {
  const out = new Map<string, ConfigValue>();
  for (const line of text.split('\n')) {
    const set = line.match(/^(CONFIG_[A-Za-z0-9_]+)=(.*)$/);
    if (set) out.set(set[1]!, set[2]!.trim());
    const unset = line.match(/^# (CONFIG_[A-Za-z0-9_]+) is not set/);
    if (unset) out.set(unset[1]!, 'n');
  }
  return out;
}

export function renderFragment(values: Record<string, string | number | boolean>): string {
  return `${Object.entries(values)
    .map(([k, v]) => {
      const key = k.startsWith('CONFIG_') ? k : `CONFIG_${k}`;
      const val = v === true ? 'y' : v === false ? 'n' : String(v);
      return val === 'n' ? `# ${key} is not set` : `${key}=${val}`;
    })
    .join('\n')}\n`;
}

export interface Mismatch {
  option: string;
  wanted: ConfigValue;
  got: ConfigValue | undefined;
  fragment: string;
}

/** Every option a fragment asks for must be in the final .config with that value ('n' also matches absence). */
export function verifyConfig(fragments: Array<{ name: string; values: Map<string, ConfigValue> }>, final: Map<string, ConfigValue>): Mismatch[] {
  const out: Mismatch[] = [];
  for (const f of fragments) {
    for (const [option, wanted] of f.values) {
      const got = final.get(option);
      if (got === wanted || (wanted === 'n' && got === undefined)) continue;
      out.push({ option, wanted, got, fragment: f.name });
    }
  }
  return out;
}

/**
 * The Kconfig entry of a symbol in one Kconfig file's text: its `depends on` and `select`-ors are what
 * explain an option that olddefconfig dropped. Returns undefined when the file does not define it.
 */
export function kconfigEntry(kconfigText: string, symbol: string): { dependsOn: string[] } | undefined {
  const name = symbol.replace(/^CONFIG_/, '');
  const lines = kconfigText.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^\\s*(menu)?config\\s+${name}\\s*$`).test(l));
  if (start < 0) return undefined;
  const dependsOn: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^\s*(menu)?config\s|^\s*(endmenu|menu|choice|endchoice|if|endif|source|comment)\b/.test(l)) break;
    const m = l.match(/^\s*depends on\s+(.*)$/);
    if (m) dependsOn.push(m[1]!.trim());
  }
  return { dependsOn };
}

export function formatMismatch(m: Mismatch, deps: string[] | undefined): string {
  const got = m.got === undefined ? 'absent' : m.got;
  const why =
    deps === undefined
      ? 'no Kconfig defines this symbol in this tree (misspelt, or it does not exist in this kernel version)'
      : deps.length
        ? `depends on ${deps.join(' && ')}`
        : 'no direct dependency: look for a choice or a select that overrides it';
  return `${m.option}=${m.wanted} (fragment ${m.fragment}) ended as ${got}: ${why}`;
}

/** A kernel version as the tree's top Makefile states it (VERSION.PATCHLEVEL.SUBLEVEL). */
export interface KernelVersion {
  major: number;
  minor: number;
  patch: number;
}

export function formatKernelVersion(v: KernelVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** The version in a kernel tree's top Makefile (`VERSION = 7`, `PATCHLEVEL = 3`, `SUBLEVEL = 4`), or undefined. */
export function kernelVersionFromMakefile(text: string): KernelVersion | undefined {
  const field = (name: string) => text.match(new RegExp(`^${name}\\s*=\\s*(\\d+)\\s*$`, 'm'))?.[1];
  const [major, minor, patch] = [field('VERSION'), field('PATCHLEVEL'), field('SUBLEVEL') ?? '0'];
  if (major === undefined || minor === undefined) return undefined;
  return { major: Number(major), minor: Number(minor), patch: Number(patch) };
}

function compareVersions(a: KernelVersion, b: KernelVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

const VERSION_TEST = /^kernel\s*(<|>=)\s*(\d+)\.(\d+)(?:\.(\d+))?$/;

/** `kernel >= 6.10 && kernel < 7.0` against a version; undefined when the condition does not parse. */
export function kernelCondition(cond: string, v: KernelVersion): boolean | undefined {
  let result = true;
  for (const part of cond.split('&&').map((s) => s.trim())) {
    const m = part.match(VERSION_TEST);
    if (!m) return undefined;
    const bound = { major: Number(m[2]), minor: Number(m[3]), patch: Number(m[4] ?? 0) };
    const c = compareVersions(v, bound);
    result &&= m[1] === '<' ? c < 0 : c >= 0;
  }
  return result;
}

/** A fragment as it applies to one kernel version: the text to merge, and the options its version guards left out. */
export interface SelectedFragment {
  text: string;
  dropped: string[];
}

/**
 * Keep the lines of a fragment that hold for this kernel version. A fragment may guard options with
 * `# @if kernel < 6.16` / `# @else` / `# @endif` (conditions: `kernel < X.Y[.Z]` or `kernel >= X.Y[.Z]`,
 * joined by `&&`; no nesting), because Kconfig symbols are renamed and removed across versions. Every
 * kept option is then merged and verified exactly as an unguarded one: a guard chooses which options a
 * version is asked for, it never excuses one that does not stick. Any `# @` line that is not one of these
 * directives is an error (a typo must not silently keep or drop an option).
 */
export function selectFragment(text: string, v: KernelVersion, name: string): SelectedFragment {
  const kept: string[] = [];
  const dropped: string[] = [];
  let block: { line: number; holds: boolean; inElse: boolean } | undefined;
  const fail = (n: number, what: string): never => {
    throw new Error(`kernel fragment ${name}:${n}: ${what}; directives are '# @if kernel < X.Y[.Z]' (or >=, joined by &&), '# @else', '# @endif'`);
  };
  text.split('\n').forEach((line, i) => {
    const n = i + 1;
    const directive = line.match(/^#\s*@(\S*)\s*(.*)$/);
    if (directive) {
      const [, word, rest] = directive as unknown as [string, string, string];
      if (word === 'if') {
        if (block) fail(n, `@if inside the @if of line ${block.line} (no nesting)`);
        const holds = kernelCondition(rest.trim(), v);
        if (holds === undefined) fail(n, `cannot read the condition '${rest.trim()}'`);
        block = { line: n, holds: holds!, inElse: false };
      } else if (word === 'else' && !rest.trim()) {
        if (!block || block.inElse) fail(n, '@else without an open @if');
        block!.inElse = true;
      } else if (word === 'endif' && !rest.trim()) {
        if (!block) fail(n, '@endif without an open @if');
        block = undefined;
      } else fail(n, `unknown directive '${line.trim()}'`);
      return;
    }
    const active = !block || block.holds !== block.inElse;
    if (active) kept.push(line);
    else {
      const option = [...parseConfig(line).keys()][0];
      if (option) dropped.push(option);
    }
  });
  if (block) fail(block.line, '@if without @endif');
  return { text: kept.join('\n'), dropped };
}
