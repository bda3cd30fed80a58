import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';

/** The lab's own SSH identity and the guests' pinned host key, generated once per cache. */
export interface LabKeys {
  dir: string;
  /** Client key used to log in as root (0600). */
  identity: string;
  /** Host key baked into the image; its public half is pinned in knownHosts. */
  hostKey: string;
  knownHosts: string;
  /** Every guest answers to this alias in knownHosts, whatever port forwards to it. */
  hostAlias: string;
}

export const HOST_ALIAS = 'kflex-lab-guest';

export async function labKeys(cacheRoot: string): Promise<LabKeys> {
  const dir = join(cacheRoot, 'keys');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const identity = join(dir, 'id_ed25519');
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const knownHosts = join(dir, 'known_hosts');
  for (const [path, comment] of [
    [identity, 'kflex-lab'],
    [hostKey, HOST_ALIAS],
  ] as const) {
    if (!existsSync(path)) await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
    await chmod(path, 0o600);
  }
  const pub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  await writeFile(knownHosts, `${HOST_ALIAS} ${pub}\n`, { mode: 0o600 });
  return { dir, identity, hostKey, knownHosts, hostAlias: HOST_ALIAS };
}
