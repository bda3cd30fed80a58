import type { Host } from '../core/host.js';
import { LabError, ExitCode } from '../core/errors.js';

/**
 * A server process started in the background on a guest, its output in a log file there.
 * Readiness is a line in that log (ffkx prints "... ready!") or a listening TCP port.
 */
export class GuestServer {
  private pid?: number;
  constructor(readonly host: Host, readonly name: string, readonly argv: readonly string[], readonly logFile = `/tmp/${name}.log`) {}

  async start(ready: { line?: RegExp; tcpPort?: number }, timeoutMs: number): Promise<void> {
    // The wrapper script is fixed; the server's argv arrives as positional parameters, never re-parsed.
    const r = await this.host.exec(['sh', '-c', 'log="$1"; shift; nohup "$@" > "$log" 2>&1 < /dev/null & echo $!', 'start', this.logFile, ...this.argv], { timeoutMs: 30_000 });
    this.pid = Number(r.stdout.trim());
    const started = Date.now();
    while (Date.now() - started < timeoutMs) {
      const alive = await this.host.exec(['kill', '-0', String(this.pid)], { allowFailure: true, timeoutMs: 15_000 });
      if (alive.code !== 0) throw new LabError(`${this.name} exited before it was ready:\n${await this.tail(30)}`, ExitCode.checkFailed);
      if (ready.line) {
        const out = await this.host.exec(['cat', this.logFile], { allowFailure: true, timeoutMs: 15_000 });
        if (ready.line.test(out.stdout)) return;
      } else if (ready.tcpPort) {
        const ss = await this.host.exec(['ss', '-Hltn', `sport = :${ready.tcpPort}`], { allowFailure: true, timeoutMs: 15_000 });
        if (ss.stdout.trim()) return;
      } else return;
      await new Promise((res) => setTimeout(res, 1000));
    }
    const tail = await this.tail(30);
    await this.stop();
    throw new LabError(`${this.name} not ready within ${timeoutMs / 1000} s (${ready.line ? `waiting for ${ready.line}` : `port ${ready.tcpPort}`}):\n${tail}`, ExitCode.checkFailed);
  }

  async tail(n: number): Promise<string> {
    const r = await this.host.exec(['tail', '-n', String(n), this.logFile], { allowFailure: true, timeoutMs: 15_000 });
    return r.stdout.split('\n').map((l) => '  | ' + l).join('\n');
  }

  async log(): Promise<string> {
    return (await this.host.exec(['cat', this.logFile], { allowFailure: true, timeoutMs: 30_000 })).stdout;
  }

  /** SIGTERM, then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (!this.pid) return;
    await this.host.exec(['sh', '-c', 'kill "$1" 2>/dev/null; for i in $(seq 1 20); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.5; done; kill -9 "$1" 2>/dev/null; true', 'stop', String(this.pid)], { allowFailure: true, timeoutMs: 30_000 });
    this.pid = undefined;
  }
}

/** ffkx leaves its XDP program attached when it exits: detach after every kflex cell. */
export async function detachXdp(host: Host, ifname: string): Promise<void> {
  await host.exec(['ip', 'link', 'set', 'dev', ifname, 'xdp', 'off'], { allowFailure: true, timeoutMs: 30_000 });
}

/** Servers and clients a cell may leave behind when it is cut off: stopped, and XDP detached. */
export const CELL_PROCESSES = { server: ['ffkx', 'memcached', 'redis-server'], client: ['memcaslap', 'memtier_benchmark', 'redis-benchmark'] };

/** Linux keeps 15 characters of a process name (TASK_COMM_LEN): pkill -x must match that, not the full name. */
export const commName = (name: string) => name.slice(0, 15);

/** After a cell that overran its bound: stop what it started on both hosts, so the next cell starts clean. */
export async function resetHosts(server: Host, client: Host, ifname: string): Promise<void> {
  await server.exec(['sh', '-c', 'for p in "$@"; do pkill -KILL -x "$p"; done; true', 'reset', ...CELL_PROCESSES.server.map(commName)], { allowFailure: true, timeoutMs: 30_000 }).catch(() => undefined);
  await client.exec(['sh', '-c', 'for p in "$@"; do pkill -KILL -x "$p"; done; true', 'reset', ...CELL_PROCESSES.client.map(commName)], { allowFailure: true, timeoutMs: 30_000 }).catch(() => undefined);
  await detachXdp(server, ifname).catch(() => undefined);
}
