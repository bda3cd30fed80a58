import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { spawn } from 'node:child_process';
import { QMPClient } from 'node-qemu';
import { pidAlive } from '../core/host-probe.js';
import { waitUntil } from '../core/retry.js';
import { linkBackendOf, type LinkState } from './link/index.js';
import type { VmRole } from './spec.js';
import type { VmAccel } from '../core/accel.js';

/** What a VM directory records so that any later lab process can find, use and stop its VMs. */
export interface ClusterState {
  /** 'up': stays until `down`; 'run': owned by one lab process and stale once that process is gone. */
  owner: 'up' | 'run';
  labPid: number;
  phase: 'booting' | 'ready' | 'stopping';
  created: string;
  accel: VmAccel;
  /** Tagged by `backend`; each backend (vm/link/) defines its member and tears it down. */
  link: LinkState;
  vms: Record<VmRole, { pidfile: string; qmp: string; serial: string; sshPort: number; disk: string }>;
}

export const STATE_FILE = 'state.json';

/** Written whole or not at all (a temporary file, then rename): the reaper polls it and must never read half. */
export async function writeState(dir: string, s: ClusterState): Promise<void> {
  const tmp = join(dir, `${STATE_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, join(dir, STATE_FILE));
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
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** n distinct free ports: every listener stays open until all are chosen, so the kernel cannot hand one out twice. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const srv = createServer();
          srv.unref();
          srv.on('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => {
    const addr = srv.address();
    if (typeof addr !== 'object' || !addr) throw new Error('no port');
    return addr.port;
  });
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

/** A bound on a race that must not keep the process alive once the race is won. */
const unrefSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Stop one QEMU: QMP quit, then SIGTERM, then SIGKILL, each bounded. */
export async function stopQemu(pidfile: string, qmpSocket: string, log: (m: string) => void = () => {}): Promise<void> {
  const pid = qemuPid(pidfile);
  if (!pid) return;
  if (existsSync(qmpSocket)) {
    const qmp = new QMPClient({ socketPath: qmpSocket });
    try {
      await Promise.race([
        (async () => {
          await qmp.connect();
          await qmp.execute('quit').catch(() => undefined);
        })(),
        unrefSleep(5000),
      ]);
    } catch {
      /* fall through to signals */
    } finally {
      await qmp.close().catch(() => undefined);
    }
  }
  for (const [signal, waitMs] of [
    [null, 5000],
    ['SIGTERM', 5000],
    ['SIGKILL', 5000],
  ] as const) {
    if (signal) {
      log(`QEMU ${pid} still running: ${signal}`);
      try {
        process.kill(pid, signal);
      } catch {
        /* gone */
      }
    }
    if (await waitUntil(() => !pidAlive(pid), waitMs, 100)) return;
  }
}

/**
 * The socket of a VM's shared SSH connection, in its VM dir; undefined when the path would be too long for
 * a Unix socket (108 bytes, less the 17 characters ssh appends while it binds): then each ssh connects anew.
 */
export function sshControlPath(dir: string, role: VmRole): string | undefined {
  const p = join(dir, `${role}.ssh`);
  return p.length <= 90 ? p : undefined;
}

/** Ask the VMs' shared SSH connections to exit (each is gone anyway once its QEMU is). */
export async function closeSshMasters(dir: string): Promise<void> {
  await Promise.all(
    (['server', 'client'] as const).map(async (role) => {
      const path = sshControlPath(dir, role);
      if (!path || !existsSync(path)) return;
      await new Promise<void>((resolve) => {
        const p = spawn('ssh', ['-F', '/dev/null', '-o', `ControlPath=${path}`, '-O', 'exit', 'kflex-lab-vm'], { stdio: 'ignore' });
        const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        p.on('close', done);
        p.on('error', done);
      });
    }),
  );
}

/** Stop every QEMU of a VM dir, remove its link (the backend's teardown) and its disks. */
export async function teardownDir(dir: string, log: (m: string) => void = () => {}): Promise<void> {
  const s = readState(dir);
  if (!s) return;
  if (s.phase !== 'stopping') await writeState(dir, { ...s, phase: 'stopping' });
  await closeSshMasters(dir);
  await Promise.all(Object.values(s.vms).map((v) => stopQemu(v.pidfile, v.qmp, log)));
  await linkBackendOf(s.link).teardown(s.link);
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
