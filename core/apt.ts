import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  /** The keyring this source is verified with (`Signed-By:` / `[signed-by=...]`), when it names a file. */
  signedBy?: string;
}

/** Parse one-line (`deb URI suite comp...`) and deb822 (`URIs:`/`Suites:`) apt sources. */
export function parseAptSources(text: string, deb822: boolean): AptSource[] {
  const out: AptSource[] = [];
  if (!deb822) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      const m = line.match(/^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/);
      const signedBy = m?.[1]?.match(/(?:^|\s)signed-by=(\/\S+)/)?.[1];
      if (m) out.push({ uri: m[2]!, suites: [m[3]!], components: m[4]!.split(/\s+/).filter(Boolean), ...(signedBy ? { signedBy } : {}) });
    }
    return out;
  }
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) =>
      stanza
        .split('\n')
        .filter((l) => !l.trim().startsWith('#'))
        .find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
        ?.slice(name.length + 1)
        .trim()
        .split(/\s+/) ?? [];
    const types = field('Types');
    if (!types.includes('deb')) continue;
    const signedBy = field('Signed-By').find((k) => k.startsWith('/'));
    for (const uri of field('URIs')) out.push({ uri, suites: field('Suites'), components: field('Components'), ...(signedBy ? { signedBy } : {}) });
  }
  return out;
}

export function hostAptSources(etc = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  try {
    out.push(...parseAptSources(readFileSync(join(etc, 'sources.list'), 'utf8'), false));
  } catch {
    /* no classic sources.list */
  }
  let names: string[] = [];
  try {
    names = readdirSync(join(etc, 'sources.list.d'));
  } catch {
    /* none */
  }
  for (const n of names.sort()) {
    const text = readFileSync(join(etc, 'sources.list.d', n), 'utf8');
    if (n.endsWith('.sources')) out.push(...parseAptSources(text, true));
    else if (n.endsWith('.list')) out.push(...parseAptSources(text, false));
  }
  return out;
}

/**
 * The Debian archive mirror this host uses (not the security archive), or undefined.
 * The lab never names a mirror itself: it takes this, lab.yaml's, or the tool's default.
 */
export function hostDebianMirror(sources: AptSource[] = hostAptSources()): string | undefined {
  const main = sources.find((s) => !/security/.test(s.uri) && !s.suites.some((x) => /security/.test(x)) && /\/debian\/?$/.test(s.uri));
  return main?.uri.replace(/\/$/, '');
}
