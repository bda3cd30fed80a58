import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { LAB_ROOT } from '../core/paths.js';
import { cloudlabProfile, type CloudlabProfileOptions } from '../hosts/cloudlab.js';
import { hostsYamlFromManifest, parseManifest, type FromManifestOptions } from '../hosts/manifest.js';

/** The lab's version, written into what it generates. */
function labVersion(): string {
  return (JSON.parse(readFileSync(join(LAB_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** `hosts cloudlab-profile`: profile.py to a file, or its text when no file is given. */
export function writeCloudlabProfile(o: CloudlabProfileOptions & { out?: string }): string {
  const text = cloudlabProfile({ ...o, generator: `kflex-lab ${labVersion()}` });
  if (o.out) writeFileSync(o.out, text);
  return text;
}

/** `hosts from-manifest FILE`: the hosts.yaml text for a CloudLab experiment's manifest. */
export function hostsFromManifest(file: string, o: FromManifestOptions): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot read the manifest (${(e as Error).message}); save it from the experiment page (its Manifest tab)`]);
  }
  return hostsYamlFromManifest(parseManifest(text, file), { ...o, generatedAt: new Date().toISOString().slice(0, 10) });
}
