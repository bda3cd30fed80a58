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
