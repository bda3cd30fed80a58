import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { QMPClient } from 'node-qemu';
import { pidAlive } from '../core/stage.js';
import { run } from '../core/exec.js';
import type { VmRole, Accel } from './spec.js';

/** What a VM directory records so that any later lab process can find, use and stop its VMs. */
export interface ClusterState {
  /** 'up': stays until `down`; 'run': owned by one lab process and stale once that process is gone. */
  owner: 'up' | 'run';
  labPid: number;
  phase: 'booting' | 'ready' | 'stopping';
  created: string;
  accel: Accel;
  link: { backend: 'socket' | 'tap'; port?: number; netns?: string; bridge?: string; taps?: string[]; queues?: number; vhost?: boolean };
  vms: Record<VmRole, { pidfile: string; qmp: string; serial: string; sshPort: number; disk: string }>;
}

export const STATE_FILE = 'state.json';

export async function writeState(dir: string, s: ClusterState): Promise<void> {
  await writeFile(join(dir, STATE_FILE), JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
}

export function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function qemuPid(pidfile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    return pid > 0 && pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A VM dir is stale when the process that owns it (a run, or an `up` still booting) is gone. */
export function isStale(s: ClusterState): boolean {
  return (s.owner === 'run' || s.phase !== 'ready') && !pidAlive(s.labPid);
}

/** A free TCP port on loopback, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stop one QEMU: QMP quit, then SIGTERM, then SIGKILL, each bounded. */
export async function stopQemu(pidfile: string, qmpSocket: string, log: (m: string) => void = () => {}): Promise<void> {
  const pid = qemuPid(pidfile);
  if (!pid) return;
  if (existsSync(qmpSocket)) {
    const qmp = new QMPClient({ socketPath: qmpSocket });
    try {
      await Promise.race([(async () => { await qmp.connect(); await qmp.execute('quit').catch(() => undefined); })(), sleep(5000)]);
    } catch {
      /* fall through to signals */
    } finally {
      await qmp.close().catch(() => undefined);
    }
  }
  for (const [signal, waitMs] of [[null, 5000], ['SIGTERM', 5000], ['SIGKILL', 5000]] as const) {
    if (signal) {
      log(`QEMU ${pid} still running: ${signal}`);
      try {
        process.kill(pid, signal);
      } catch {
        /* gone */
      }
    }
    for (let t = 0; t < waitMs && pidAlive(pid); t += 100) await sleep(100);
    if (!pidAlive(pid)) return;
  }
}

/** Stop every QEMU of a VM dir and remove its link (taps, bridge, namespace) and its disks. */
export async function teardownDir(dir: string, log: (m: string) => void = () => {}): Promise<void> {
  const s = readState(dir);
  if (!s) return;
  if (s.phase !== 'stopping') await writeState(dir, { ...s, phase: 'stopping' });
  await Promise.all(Object.values(s.vms).map((v) => stopQemu(v.pidfile, v.qmp, log)));
  if (s.link.netns) await run(['ip', 'netns', 'delete', s.link.netns], { allowFailure: true, timeoutMs: 20_000 });
  for (const v of Object.values(s.vms)) await rm(v.disk, { force: true });
  await rm(join(dir, 'ssh_config'), { force: true });
  await rm(join(dir, STATE_FILE), { force: true });
}

/** Clean every stale VM dir under the cache (or all of them with all: true); returns the dirs cleaned. */
export async function cleanStaleVms(cacheRoot: string, o: { all: boolean } = { all: false }): Promise<string[]> {
  const root = join(cacheRoot, 'vms');
  if (!existsSync(root)) return [];
  const cleaned: string[] = [];
  for (const name of await readdir(root)) {
    const dir = join(root, name);
    const s = readState(dir);
    if (!s) continue;
    if (o.all || isStale(s)) {
      await teardownDir(dir);
      cleaned.push(dir);
    }
  }
  return cleaned;
}

export async function readSerialTail(path: string, n: number): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).split('\n').slice(-n);
  } catch {
    return ['(no serial log)'];
  }
}
