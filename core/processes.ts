import type { Host, HostExecOptions } from './host.js';
import type { RunResult } from './exec.js';

/**
 * The lab stops only what it started. Every command a cell runs on a host is launched through TRACK_SCRIPT,
 * which appends "PID STARTTIME BOOT_ID TAG" to a ledger file on that host and then execs the command (same
 * PID, same start time). STARTTIME is field 22 of /proc/PID/stat (clock ticks after boot) and BOOT_ID is
 * /proc/sys/kernel/random/boot_id: a PID the kernel has given to another process since, or one from an
 * earlier boot, never matches. GUARD_SCRIPT stops the ledger's processes that still match, and nothing
 * else: no kill by name anywhere a cell runs, so a memcached or redis-server of the user's own is left alone.
 */

/** Where the ledgers live on a host (root's; one file per testbed instance, removed at its teardown). */
export const LEDGER_DIR = '/var/tmp/kflex-lab';

/** The ledger of one testbed instance on its hosts, e.g. /var/tmp/kflex-lab/20260101T000000Z-smoke-12345.pids. */
export function ledgerPath(token: string): string {
  return `${LEDGER_DIR}/${token.replace(/[^A-Za-z0-9._-]+/g, '_')}.pids`;
}

/**
 * Shell function shared by the scripts: `stat_of PID` sets $state and $start (fields 3 and 22 of
 * /proc/PID/stat) and fails when the process is gone. The command name (field 2) may hold spaces and
 * parentheses, so the fields are counted after its last ") ".
 */
export const STAT_OF_SH = `stat_of() { read -r _s 2>/dev/null < "/proc/$1/stat" || return 1; _fields \${_s##*) }; }
_fields() { state="$1"; shift 19; start="$1"; }`;

/**
 * $1 ledger, $2 tag, then the command: record this shell's PID (which the command keeps) and exec it.
 * Refuses to run the command (exit 125) when it cannot be recorded.
 */
export const TRACK_SCRIPT = `${STAT_OF_SH}
ledger="$1"; tag="$2"; shift 2
stat_of $$ && read -r boot < /proc/sys/kernel/random/boot_id &&
  mkdir -p "\${ledger%/*}" && echo "$$ $start $boot $tag" >> "$ledger" ||
  { echo "kflex-lab: cannot record pid $$ in $ledger: not running $1" >&2; exit 125; }
exec "$@"`;

/** A word for the ledger: the program's base name. */
export function tagOf(argv: readonly string[]): string {
  return (
    (argv[0] ?? 'cmd')
      .split('/')
      .at(-1)!
      .replace(/[^A-Za-z0-9._+-]/g, '_')
      .slice(0, 40) || 'cmd'
  );
}

/** argv that records itself in `ledger` and then runs `argv` (pure). */
export function trackedArgv(ledger: string, argv: readonly string[], tag = tagOf(argv)): string[] {
  return ['sh', '-c', TRACK_SCRIPT, 'track', ledger, tag, ...argv];
}

/**
 * $1 seconds between SIGTERM and SIGKILL, then ledger files. Each ledger is first moved aside (commands
 * starting meanwhile record into a fresh one), its matching processes get SIGTERM, those still matching
 * after the grace get SIGKILL. One line per entry: `gone|reused|other-boot|stopped|killed|survived PID TAG`.
 * Entries that survived are put back into the ledger; an emptied ledger is removed.
 */
export const GUARD_SCRIPT = `${STAT_OF_SH}
grace="$1"; shift
read -r boot < /proc/sys/kernel/random/boot_id
live=""
matches() { stat_of "$1" && [ "$start" = "$2" ] && [ "$state" != Z ] && [ "$state" != X ]; }
for f in "$@"; do
  [ -f "$f" ] || continue
  mv -f "$f" "$f.stopping.$$" || continue
  while read -r pid st b tag; do
    [ -n "$pid" ] || continue
    if [ "$b" != "$boot" ]; then echo "other-boot $pid $tag"
    elif matches "$pid" "$st"; then kill -TERM "$pid" 2>/dev/null; live="$live $pid:$st:$tag:$f"
    elif stat_of "$pid" && [ "$state" != Z ]; then echo "reused $pid $tag"
    else echo "gone $pid $tag"; fi
  done < "$f.stopping.$$"
  rm -f "$f.stopping.$$"
done
waited=0
while [ -n "$live" ] && [ "$waited" -lt $((grace * 10)) ]; do
  any=""; for e in $live; do IFS=: read -r pid st tag f <<EOF
$e
EOF
    matches "$pid" "$st" && any=1; done
  [ -n "$any" ] || break
  sleep 0.1; waited=$((waited + 1))
done
for e in $live; do IFS=: read -r pid st tag f <<EOF
$e
EOF
  if ! matches "$pid" "$st"; then echo "stopped $pid $tag"; continue; fi
  kill -KILL "$pid" 2>/dev/null
  i=0; while matches "$pid" "$st" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  if matches "$pid" "$st"; then echo "survived $pid $tag"; echo "$pid $st $boot $tag" >> "$f"
  else echo "killed $pid $tag"; fi
done
true`;

/** argv of the guard over some ledgers (pure). */
export function guardArgv(ledgers: readonly string[], graceS = 10): string[] {
  return ['sh', '-c', GUARD_SCRIPT, 'guard', String(graceS), ...ledgers];
}

/** The ledgers of every testbed instance on a host (for `hosts prepare --undo`, which knows no run). */
export function allLedgersArgv(graceS = 10): string[] {
  return ['sh', '-c', `exec sh -c "$1" guard "$2" ${LEDGER_DIR}/*.pids`, 'guard-all', GUARD_SCRIPT, String(graceS)];
}

export type GuardOutcome = 'gone' | 'reused' | 'other-boot' | 'stopped' | 'killed' | 'survived';
export interface GuardReport {
  /** Recorded processes the guard stopped (SIGTERM, or SIGKILL after the grace). */
  stopped: Array<{ pid: number; tag: string; signal: 'TERM' | 'KILL' }>;
  /** Recorded processes still there after SIGKILL. */
  survived: Array<{ pid: number; tag: string }>;
  /** Entries whose process had already exited, or whose PID now belongs to another process (left alone). */
  gone: number;
  reused: Array<{ pid: number; tag: string }>;
}

export function parseGuard(out: string): GuardReport {
  const r: GuardReport = { stopped: [], survived: [], gone: 0, reused: [] };
  for (const line of out.split('\n')) {
    const m = line.match(/^(gone|reused|other-boot|stopped|killed|survived) (\d+) (\S*)$/);
    if (!m) continue;
    const e = { pid: Number(m[2]), tag: m[3]! };
    const kind = m[1] as GuardOutcome;
    if (kind === 'stopped' || kind === 'killed') r.stopped.push({ ...e, signal: kind === 'stopped' ? 'TERM' : 'KILL' });
    else if (kind === 'survived') r.survived.push(e);
    else if (kind === 'reused' || kind === 'other-boot') r.reused.push(e);
    else r.gone++;
  }
  return r;
}

/**
 * A host whose every command is recorded in a ledger before it runs (see TRACK_SCRIPT). `untracked` is the
 * same host without recording, for the guard itself and for scripts that record their own children.
 */
export class TrackedHost implements Host {
  constructor(
    readonly untracked: Host,
    readonly ledger: string,
  ) {}
  get name(): string {
    return this.untracked.name;
  }
  exec(argv: readonly string[], opts?: HostExecOptions): Promise<RunResult> {
    return this.untracked.exec(trackedArgv(this.ledger, argv), opts);
  }
  copyIn(localPath: string, remotePath: string): Promise<void> {
    return this.untracked.copyIn(localPath, remotePath);
  }
  copyOut(remotePath: string, localPath: string): Promise<void> {
    return this.untracked.copyOut(remotePath, localPath);
  }
}

/** The ledger a host records into, if it is a tracked host. */
export function ledgerOf(h: Host): string | undefined {
  return h instanceof TrackedHost ? h.ledger : undefined;
}

/** The host without recording (itself when it records nothing). */
export function untracked(h: Host): Host {
  return h instanceof TrackedHost ? h.untracked : h;
}

/** Stop what a tracked host's ledger recorded and still runs; nothing on an untracked host. */
export async function stopTracked(h: Host, o: { graceS?: number; timeoutMs?: number } = {}): Promise<GuardReport> {
  const ledger = ledgerOf(h);
  if (!ledger) return { stopped: [], survived: [], gone: 0, reused: [] };
  const r = await untracked(h).exec(guardArgv([ledger], o.graceS ?? 10), { allowFailure: true, timeoutMs: o.timeoutMs ?? 60_000 });
  return parseGuard(r.stdout);
}
