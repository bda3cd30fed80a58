import type { Host } from '../core/host.js';
import { LabError, ExitCode } from '../core/errors.js';
import { lastLines } from '../core/exec.js';

/**
 * Launch a server in the background and wait, in the same remote shell, until it is ready: one SSH round
 * trip however long the wait (each costs a fraction of a second under TCG, and a heap fill takes minutes).
 * $1 log, $2 ready text ('' if none), $3 TCP port ('' if none; ready when this process listens on it, not
 * a server left on the port by someone else), $4 seconds to wait, then the server's argv (positional,
 * never re-parsed). Prints `launched T`, then `ready T`, `exited T` or `timeout T`, with T the
 * guest's uptime (read from /proc, no process spawned).
 */
export const START_SCRIPT = `log="$1"; text="$2"; port="$3"; wait_s="$4"; shift 4
nohup "$@" > "$log" 2>&1 < /dev/null &
pid=$!
read t0 _ < /proc/uptime
echo "launched $t0 $pid"
end=$(( \${t0%.*} + wait_s ))
while :; do
  read t _ < /proc/uptime
  kill -0 "$pid" 2>/dev/null || { echo "exited $t"; exit 3; }
  if [ -n "$text" ]; then grep -qF -- "$text" "$log" && { echo "ready $t"; exit 0; }
  elif [ -n "$port" ]; then ss -Hltnp "sport = :$port" | grep -q "pid=$pid," && { echo "ready $t"; exit 0; }
  else echo "ready $t"; exit 0; fi
  [ "\${t%.*}" -ge "$end" ] && { echo "timeout $t"; exit 4; }
  sleep 0.1
done`;

/**
 * Stop a server and collect its log in one round trip: SIGTERM, SIGKILL after ~10 s, detach XDP from $3
 * when given (ffkx leaves its program attached), then print the log. $1 pid ('' if none), $2 log.
 */
export const STOP_SCRIPT = `pid="$1"; log="$2"; ifname="$3"
if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { kill -9 "$pid" 2>/dev/null; break; }
    sleep 0.1
  done
fi
[ -z "$ifname" ] || ip link set dev "$ifname" xdp off 2>/dev/null
cat "$log" 2>/dev/null
true`;

/** What the start script printed: the guest's uptime at launch and at the outcome, and the outcome. */
export function parseStartOutput(out: string): { pid?: number; launched?: number; outcome?: 'ready' | 'exited' | 'timeout'; at?: number } {
  const launched = out.match(/^launched ([\d.]+) (\d+)$/m);
  const end = out.match(/^(ready|exited|timeout) ([\d.]+)$/m);
  return {
    pid: launched ? Number(launched[2]) : undefined,
    launched: launched ? Number(launched[1]) : undefined,
    outcome: end?.[1] as 'ready' | 'exited' | 'timeout' | undefined,
    at: end ? Number(end[2]) : undefined,
  };
}

/**
 * A server process started in the background on a guest, its output in a log file there.
 * Readiness is a text in that log (ffkx prints "... ready!") or a listening TCP port.
 */
export class GuestServer {
  private pid?: number;
  constructor(
    readonly host: Host,
    readonly name: string,
    readonly argv: readonly string[],
    readonly logFile = `/tmp/${name}.log`,
  ) {}

  /**
   * Launch and wait until ready (one round trip). Returns how long the server took to become ready after
   * it was launched, by the guest's clock: the cell's `ready` phase.
   */
  async start(ready: { text?: string; tcpPort?: number }, timeoutMs: number): Promise<{ readySeconds: number }> {
    const waitS = Math.ceil(timeoutMs / 1000);
    const r = await this.host.exec(
      ['sh', '-c', START_SCRIPT, 'start', this.logFile, ready.text ?? '', ready.tcpPort ? String(ready.tcpPort) : '', String(waitS), ...this.argv],
      { timeoutMs: timeoutMs + 60_000, allowFailure: true },
    );
    const s = parseStartOutput(r.stdout);
    this.pid = s.pid;
    if (s.outcome === 'ready') return { readySeconds: Math.max(0, s.at! - s.launched!) };
    const what = ready.text ? `waiting for '${ready.text}' in its log` : `port ${ready.tcpPort}`;
    const why =
      s.outcome === 'exited'
        ? 'exited before it was ready'
        : s.outcome === 'timeout'
          ? `not ready within ${waitS} s (${what})`
          : `could not be started (exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')})`;
    const log = await this.stop();
    throw new LabError(
      `${this.name} ${why}:\n${lastLines(log, 30)
        .map((l) => `  | ${l}`)
        .join('\n')}`,
      ExitCode.checkFailed,
    );
  }

  /**
   * SIGTERM, then SIGKILL after ~10 s; detaches XDP from `detachXdpFrom` (ffkx leaves its program attached);
   * returns the server's log. One round trip.
   */
  async stop(o: { detachXdpFrom?: string } = {}): Promise<string> {
    const r = await this.host.exec(['sh', '-c', STOP_SCRIPT, 'stop', this.pid ? String(this.pid) : '', this.logFile, o.detachXdpFrom ?? ''], {
      allowFailure: true,
      timeoutMs: 60_000,
    });
    this.pid = undefined;
    return r.stdout;
  }
}

/** ffkx leaves its XDP program attached when it exits: detach after every kflex cell. */
export async function detachXdp(host: Host, ifname: string): Promise<void> {
  await host.exec(['ip', 'link', 'set', 'dev', ifname, 'xdp', 'off'], { allowFailure: true, timeoutMs: 30_000 });
}

/** Servers and clients a cell may leave behind when it is cut off: stopped, and XDP detached. */
export const CELL_PROCESSES = { server: ['ffkx', 'ffkx-bench', 'memcached', 'redis-server'], client: ['memcaslap', 'memtier_benchmark', 'redis-benchmark'] };

/** Linux keeps 15 characters of a process name (TASK_COMM_LEN): pkill -x must match that, not the full name. */
export const commName = (name: string) => name.slice(0, 15);

/** After a cell that overran its bound: stop what it started on both hosts, so the next cell starts clean. */
export async function resetHosts(server: Host, client: Host, ifname: string): Promise<void> {
  await server
    .exec(['sh', '-c', 'for p in "$@"; do pkill -KILL -x "$p"; done; true', 'reset', ...CELL_PROCESSES.server.map(commName)], {
      allowFailure: true,
      timeoutMs: 30_000,
    })
    .catch(() => undefined);
  await client
    .exec(['sh', '-c', 'for p in "$@"; do pkill -KILL -x "$p"; done; true', 'reset', ...CELL_PROCESSES.client.map(commName)], {
      allowFailure: true,
      timeoutMs: 30_000,
    })
    .catch(() => undefined);
  await detachXdp(server, ifname).catch(() => undefined);
}
