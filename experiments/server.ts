import type { Host } from '../core/host.js';
import { LabError, ExitCode } from '../core/errors.js';
import { lastLines } from '../core/exec.js';
import { ledgerOf, stopTracked, untracked, STAT_OF_SH, TRACK_SCRIPT, type GuardReport } from '../core/processes.js';

/**
 * Launch a server in the background and wait, in the same remote shell, until it is ready: one SSH round
 * trip however long the wait (each costs a fraction of a second under TCG, and a heap fill takes minutes).
 * $1 log, $2 ready text ('' if none), $3 TCP port ('' if none; ready when this process listens on it, not
 * a server left on the port by someone else), $4 seconds to wait, $5 ledger ('' for none: the server is
 * then not recorded), $6 open-file limit ('' keeps the shell's), $7 the record-and-exec script
 * (experiments/processes.ts TRACK_SCRIPT), then the server's argv (positional, never re-parsed). Prints
 * `nofile N` (the limit the server runs with), `launched T PID STARTTIME`, then `ready T`, `exited T` or
 * `timeout T`, with T the guest's uptime (read from /proc, no process spawned).
 */
export const START_SCRIPT = `log="$1"; text="$2"; port="$3"; wait_s="$4"; ledger="$5"; nofile="$6"; track="$7"; shift 7
${STAT_OF_SH}
if [ -n "$nofile" ]; then ulimit -n "$nofile" || { echo "nofile-refused $nofile $(ulimit -Hn)"; exit 5; }; fi
echo "nofile $(ulimit -n)"
if [ -n "$ledger" ]; then nohup sh -c "$track" track "$ledger" "\${1##*/}" "$@" > "$log" 2>&1 < /dev/null &
else nohup "$@" > "$log" 2>&1 < /dev/null &
fi
pid=$!
read t0 _ < /proc/uptime
stat_of "$pid"; echo "launched $t0 $pid \${start:-0}"
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
 * Stop a server and collect its log in one round trip: SIGTERM, SIGKILL after ~10 s, detach XDP from $4
 * when given (ffkx leaves its program attached), then print the log. $1 pid ('' if none), $2 its start
 * time (field 22 of /proc/PID/stat: a PID now held by another process is left alone), $3 log.
 */
export const STOP_SCRIPT = `pid="$1"; st="$2"; log="$3"; ifname="$4"
${STAT_OF_SH}
ours() { stat_of "$pid" && [ "$start" = "$st" ] && [ "$state" != Z ]; }
if [ -n "$pid" ] && ours && kill "$pid" 2>/dev/null; then
  i=0
  while ours; do
    i=$((i + 1)); [ $i -gt 100 ] && { kill -9 "$pid" 2>/dev/null; break; }
    sleep 0.1
  done
fi
[ -z "$ifname" ] || ip link set dev "$ifname" xdp off 2>/dev/null
cat "$log" 2>/dev/null
true`;

/** Exit 0 while process $1 with start time $2 runs (not a zombie), else 1. */
export const ALIVE_SCRIPT = `${STAT_OF_SH}
stat_of "$1" && [ "$start" = "$2" ] && [ "$state" != Z ]`;

/** What the start script printed: the guest's uptime at launch and at the outcome, and the outcome. */
export function parseStartOutput(out: string): {
  pid?: number;
  starttime?: number;
  launched?: number;
  outcome?: 'ready' | 'exited' | 'timeout';
  at?: number;
  nofile?: number;
} {
  const launched = out.match(/^launched ([\d.]+) (\d+)(?: (\d+))?$/m);
  const end = out.match(/^(ready|exited|timeout) ([\d.]+)$/m);
  const nofile = out.match(/^nofile (\d+|unlimited)$/m);
  return {
    pid: launched ? Number(launched[2]) : undefined,
    starttime: launched?.[3] ? Number(launched[3]) : undefined,
    launched: launched ? Number(launched[1]) : undefined,
    outcome: end?.[1] as 'ready' | 'exited' | 'timeout' | undefined,
    at: end ? Number(end[2]) : undefined,
    nofile: nofile ? (nofile[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(nofile[1])) : undefined,
  };
}

/**
 * A server process started in the background on a guest, its output in a log file there.
 * Readiness is a text in that log (ffkx prints "... ready!") or a listening TCP port. On a tracked host
 * (experiments/processes.ts) the server is recorded in the host's ledger before it runs, so whatever stops
 * the cell (its bound, Ctrl-C, a killed lab's reaper) finds it, and only it.
 */
export class GuestServer {
  private proc?: { pid: number; starttime: number };
  /** The open-file limit the server runs with (`ulimit -n`), once started. */
  nofile?: number;
  constructor(
    readonly host: Host,
    readonly name: string,
    readonly argv: readonly string[],
    readonly logFile = `/tmp/${name}.log`,
  ) {}

  /** The running server's PID and start time (field 22 of /proc/PID/stat), once started. */
  get process(): { pid: number; starttime: number } | undefined {
    return this.proc;
  }

  /**
   * Launch and wait until ready (one round trip), with `nofile` open files allowed (serverNofile: the
   * connections of the cell's load plus a margin). Returns how long the server took to become ready after
   * it was launched, by the guest's clock (the cell's `ready` phase), and the limit it runs with.
   */
  async start(ready: { text?: string; tcpPort?: number }, timeoutMs: number, o: { nofile?: number } = {}): Promise<{ readySeconds: number; nofile?: number }> {
    const waitS = Math.ceil(timeoutMs / 1000);
    const args = [
      this.logFile,
      ready.text ?? '',
      ready.tcpPort ? String(ready.tcpPort) : '',
      String(waitS),
      ledgerOf(this.host) ?? '',
      o.nofile ? String(o.nofile) : '',
    ];
    const r = await untracked(this.host).exec(['sh', '-c', START_SCRIPT, 'start', ...args, TRACK_SCRIPT, ...this.argv], {
      timeoutMs: timeoutMs + 60_000,
      allowFailure: true,
    });
    const s = parseStartOutput(r.stdout);
    this.proc = s.pid ? { pid: s.pid, starttime: s.starttime ?? 0 } : undefined;
    this.nofile = s.nofile;
    if (s.outcome === 'ready') return { readySeconds: Math.max(0, s.at! - s.launched!), nofile: s.nofile };
    const refused = r.stdout.match(/^nofile-refused (\d+) (\S+)$/m);
    const what = ready.text ? `waiting for '${ready.text}' in its log` : `port ${ready.tcpPort}`;
    const why = refused
      ? `could not be given ${refused[1]} open files (ulimit -n; hard limit ${refused[2]}): run it as root or raise the hard limit`
      : s.outcome === 'exited'
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

  /** Whether the server this object started still runs (same PID and start time, not a zombie). */
  async alive(): Promise<boolean> {
    if (!this.proc) return false;
    const r = await untracked(this.host).exec(['sh', '-c', ALIVE_SCRIPT, 'alive', String(this.proc.pid), String(this.proc.starttime)], {
      allowFailure: true,
      timeoutMs: 30_000,
    });
    return r.code === 0;
  }

  /**
   * Run the cell's client work against this server. A server that died meanwhile fails the cell as that,
   * with the server's log, whether the client then failed (its error is quoted) or not (its numbers would
   * measure a dead server). So does a server still running whose log says it stopped accepting connections
   * (acceptFailures: ffkx --kmemcached/--kmemcache lose an accept thread, not the process, to a failed
   * accept4): the limit it ran with and `connections`, the connections the cell's load opens, are named.
   */
  async during<T>(work: () => Promise<T>, o: { connections?: number } = {}): Promise<T> {
    let out: { value: T } | { error: unknown };
    try {
      out = { value: await work() };
    } catch (error) {
      out = { error };
    }
    const client = 'error' in out ? `; the client then failed: ${String((out.error as Error)?.message ?? out.error).split('\n')[0]}` : '';
    const quote = (log: string) =>
      lastLines(log, 30)
        .map((l) => `  | ${l}`)
        .join('\n');
    if (this.proc && !(await this.alive())) {
      const pid = this.proc.pid;
      const log = await this.stop();
      const accept = acceptFailures(log);
      const after = accept.length ? ` after it stopped accepting connections (${this.acceptNote(accept, o.connections)})` : '';
      throw new LabError(`${this.name} (pid ${pid}) died during the run${after}${client}. Its log ends:\n${quote(log)}`, ExitCode.checkFailed);
    }
    if (this.proc) {
      const r = await untracked(this.host)
        .exec(['grep', '-F', '--', ACCEPT_FAILED, this.logFile], { allowFailure: true, timeoutMs: 30_000 })
        .catch(() => undefined);
      const accept = acceptFailures(r?.stdout ?? '');
      if (accept.length) {
        const pid = this.proc.pid;
        const log = await this.stop();
        throw new LabError(
          `${this.name} (pid ${pid}) stopped accepting connections during the run: ${this.acceptNote(accept, o.connections)}${client}. ` +
            `Its log ends:\n${quote(log)}`,
          ExitCode.checkFailed,
        );
      }
    }
    if ('error' in out) throw out.error;
    return out.value;
  }

  /** What a server's failed accepts say: how many, the first line, the open-file limit it had and the load's connections. */
  private acceptNote(lines: string[], connections: number | undefined): string {
    const limit = this.nofile === undefined ? 'an unknown open-file limit' : `an open-file limit of ${this.nofile} (ulimit -n)`;
    const load = connections === undefined ? '' : ` for a load that opens ${connections} connections`;
    return `${lines.length} failed accept4 line${lines.length === 1 ? '' : 's'} ('${lines[0]}'), with ${limit}${load}`;
  }

  /**
   * SIGTERM, then SIGKILL after ~10 s, if the PID still holds the process this object started; detaches XDP
   * from `detachXdpFrom` (ffkx leaves its program attached); returns the server's log. One round trip.
   */
  async stop(o: { detachXdpFrom?: string } = {}): Promise<string> {
    const p = this.proc;
    const r = await untracked(this.host).exec(
      ['sh', '-c', STOP_SCRIPT, 'stop', p ? String(p.pid) : '', p ? String(p.starttime) : '', this.logFile, o.detachXdpFrom ?? ''],
      { allowFailure: true, timeoutMs: 60_000 },
    );
    this.proc = undefined;
    return r.stdout;
  }
}

/** ffkx leaves its XDP program attached when it exits: detach after every kflex cell. */
export async function detachXdp(host: Host, ifname: string): Promise<void> {
  await untracked(host).exec(['ip', 'link', 'set', 'dev', ifname, 'xdp', 'off'], { allowFailure: true, timeoutMs: 30_000 });
}

/**
 * After a cell that overran its bound (or was interrupted): stop what the cells started on both hosts, as
 * their ledgers recorded it (experiments/processes.ts), and detach XDP from the server's link NIC. Nothing
 * is stopped by name: a server or client of the same name that the lab did not start keeps running.
 */
export async function resetHosts(server: Host, client: Host, ifname: string): Promise<{ server?: GuardReport; client?: GuardReport }> {
  const stop = (h: Host) => stopTracked(h, { graceS: 5 }).catch(() => undefined);
  const [s, c] = await Promise.all([stop(server), stop(client)]);
  await detachXdp(server, ifname).catch(() => undefined);
  return { server: s, client: c };
}

/**
 * What ffkx prints when accept4 fails (KFlex 567387b src/Socket.cpp:58-64: AcceptConnection returns
 * absl::ErrnoToStatus(errno, "Failed to accept connection from socket.")). Each accept loop prints that status
 * (`std::cerr << client.status()`) and returns: --kredis's one loop in RedisMain (src/Main.cpp:222-228) ends the
 * process; --kmemcached (:376-387, 16 threads at :390-391) and --kmemcache (:550-561, 16 threads at :590-591)
 * lose one accept thread per failure while the process, and the connections it already holds, live on. absl
 * prints a status as `CODE: message`, and ErrnoToStatus's message is the text, ': ' and strerror(errno): at the
 * open-file limit the line is `RESOURCE_EXHAUSTED: Failed to accept connection from socket.: Too many open files`.
 */
export const ACCEPT_FAILED = 'Failed to accept connection from socket.';

/** The lines of a server log that report a failed accept4 (ACCEPT_FAILED), trailing blanks trimmed. */
export function acceptFailures(log: string): string[] {
  return log
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.includes(ACCEPT_FAILED));
}

/** Default open-file soft limit on Linux, and what every server gets on top of its connections. */
export const NOFILE_MARGIN = 1024;

/**
 * The open-file limit for a server that must accept `connections` client connections at once: the
 * connections plus NOFILE_MARGIN (listening sockets, logs, epoll, ffkx's BPF maps and programs), rounded up
 * to a multiple of 1024, never below Linux's default soft limit of 1024. ffkx --kmemcached/--kredis keep
 * every accepted connection open and stop accepting at the first failed accept4.
 */
export function serverNofile(connections: number): number {
  const need = Math.max(0, Math.ceil(connections)) + NOFILE_MARGIN;
  return Math.max(1024, Math.ceil(need / 1024) * 1024);
}

/** The value of an option given as `-x V`, `--long V` or `--long=V` (the last one wins), else undefined. */
function optionValue(argv: readonly string[], short: string | undefined, long: string): string | undefined {
  let v: string | undefined;
  argv.forEach((a, i) => {
    if ((short && a === short) || a === long) v = argv[i + 1];
    else if (a.startsWith(`${long}=`)) v = a.slice(long.length + 1);
    else if (short && a.startsWith(short) && a.length > short.length && !a.startsWith('--')) v = a.slice(short.length);
  });
  return v;
}

/**
 * The TCP connections a client command opens to the server, from its argv (the same argv the cell runs):
 * memtier_benchmark threads x clients per thread (defaults 4 x 50); redis-benchmark -c (default 50);
 * memcaslap concurrency x sockets per concurrency (defaults 16 x 1), none over UDP (-U). Other programs: 0.
 */
export function clientConnections(argv: readonly string[]): number {
  return clientLoad(argv).connections;
}

/** clientConnections with how it was counted, for `plan`: e.g. `memtier_benchmark -t 64 x -c 50 (default)`. */
export function clientLoad(argv: readonly string[]): { connections: number; how: string } {
  const prog = (argv[0] ?? '').split('/').at(-1) ?? '';
  const opt = (short: string | undefined, long: string, dflt: number) => {
    const v = optionValue(argv, short, long);
    const given = v !== undefined && /^\d+$/.test(v);
    return { n: given ? Number(v) : dflt, text: `${short ?? long} ${given ? v : `${dflt} (default)`}` };
  };
  if (prog === 'memtier_benchmark') {
    const [t, c] = [opt('-t', '--threads', 4), opt('-c', '--clients', 50)];
    return { connections: t.n * c.n, how: `${prog} ${t.text} x ${c.text}` };
  }
  if (prog === 'redis-benchmark') {
    const c = opt('-c', '--clients', 50);
    return { connections: c.n, how: `${prog} ${c.text}` };
  }
  if (prog === 'memcaslap' || prog === 'memaslap') {
    if (argv.includes('-U') || argv.includes('--udp')) return { connections: 0, how: `${prog} -U (UDP, no connections)` };
    const [c, n] = [opt('-c', '--concurrency', 16), opt('-n', '--conn_sock', 1)];
    return { connections: c.n * n.n, how: `${prog} ${c.text} x ${n.text}` };
  }
  return { connections: 0, how: `${prog || '(none)'}: no connections counted` };
}
