/**
 * BMC (NSDI '21, rs3lab/bmc-cache) in the server guest: pure argv and script builders for the memcache/bmc
 * cell, and the parsers of what BMC writes. Nothing here runs anything; the cell (experiments/) does.
 *
 * The sequence that worked on the smoke testbed (Linux 7.3.4 under TCG, virtio-net, driver-mode XDP), run with
 * exactly these builders (test/fixtures/bmc/README has the commands and the numbers):
 *   1. bmcMemcachedArgv: memcached on TCP and UDP 11211 (BMC's XDP and tc programs match that port only);
 *   2. bmcArgv: bmc on the link NIC's ifindex (bmc attaches with XDP_FLAGS_DRV_MODE), ready when its log has
 *      BMC_READY_TEXT. Loading verifies seven programs: 35 s on an idle TCG guest, 296 s on a loaded 2-core
 *      host, so give the wait >= 10 min under TCG. It pins its tc egress program at BMC_TX_PIN;
 *   3. bmcAttachTcScript: clsact on the NIC and the pinned program as its egress filter (the fork's README);
 *   4. the client: memcaslap -U to port 11211 (bmcMemcaslapArgv, the userspace cell's -F file and flags);
 *   5. bmcCollectScript: SIGUSR1, wait for BMC_STATS_FILE, print it (parseBmcStats; bmcHitProblem: no hit fails
 *      the cell); then SIGTERM: bmc writes the file again and detaches its XDP program itself;
 *   6. bmcDetachScript, whatever happened: tc filter and clsact removed, XDP off, pin removed; remainingAttachments
 *      of its output must be empty.
 * Measured (2 runs, 10 s, 1 thread, 8 connections, 10:90): BMC hit_count 2935 and 2670 of 3274 and 2971 GETs;
 * memcached's own cmd_get 339 and 301, exactly BMC's miss_count; memcaslap get_misses 0 (BMC's replies are valid).
 * bmcLoadFailure reads the verifier's refusal from bmc's log when its object does not load.
 */
import { BMC_GUEST_DIR, BMC_PORT } from '../core/guest.js';

/** Where bmc writes its counters on SIGUSR1, SIGTERM and SIGINT (STATS_PATH in bmc_user.c). */
export const BMC_STATS_FILE = '/tmp/bmc_stats.txt';
/** bmc pins its tc egress program under its program name (BPF_SYSFS_ROOT/bmc_tx_filter_main; the README's bmc_tx_filter is out of date). */
export const BMC_TX_PIN = '/sys/fs/bpf/bmc_tx_filter_main';
/** What bmc prints once its XDP program is attached (after every program loaded and the tail-call maps are filled). */
export const BMC_READY_TEXT = 'Main BPF program attached to XDP on interface';
/** What bmc prints when libbpf could not load the object (the verifier's log is printed above it). */
export const BMC_LOAD_FAILED_TEXT = 'bpf_object__load_xattr failed';

/** memcached behind BMC: the userspace baseline's flags on BMC's port (11211, TCP and UDP), a thread per server CPU. */
export function bmcMemcachedArgv(serverCpus: number, memoryMb = 256): string[] {
  const port = String(BMC_PORT);
  return ['memcached', '-u', 'root', '-l', '0.0.0.0', '-p', port, '-U', port, '-t', String(Math.max(1, serverCpus)), '-m', String(memoryMb)];
}

/**
 * bmc on one NIC, for a background launcher that keeps the pid (experiments/server.ts GuestServer): bmc takes
 * interface *indexes*, so a shell reads the NIC's from sysfs and execs bmc (same pid); stdout is line-buffered
 * so the ready line reaches the log at once; a stale counters file is removed first. bmc loads `<argv0>_kern.o`,
 * so it runs by its full path in the image.
 */
export function bmcArgv(ifname: string, dir = BMC_GUEST_DIR): string[] {
  return ['sh', '-c', `rm -f ${BMC_STATS_FILE} && idx=$(cat /sys/class/net/"$1"/ifindex) && exec stdbuf -oL -eL ${dir}/bmc "$idx"`, 'bmc', ifname];
}

/** BMC's tc egress program on the NIC, as the fork's README attaches it: a clsact qdisc and the pinned program. */
export function bmcAttachTcScript(ifname: string): string[] {
  return [
    'sh',
    '-c',
    'set -e; test -e "$2"; tc qdisc replace dev "$1" clsact; tc filter replace dev "$1" egress bpf object-pinned "$2"; tc filter show dev "$1" egress',
    'bmc-tc',
    ifname,
    BMC_TX_PIN,
  ];
}

/**
 * Ask a running bmc for its counters (SIGUSR1: it writes BMC_STATS_FILE and keeps running), wait up to ~10 s for
 * the file, print it. Exits 3 when bmc is gone, 4 when no file came.
 */
export function bmcCollectScript(pid: number): string[] {
  return [
    'sh',
    '-c',
    'rm -f "$2"; kill -USR1 "$1" || exit 3; i=0; until [ -s "$2" ] && grep -q "^STAT invalidation_count " "$2"; do ' +
      'i=$((i + 1)); [ $i -gt 100 ] && exit 4; sleep 0.1; done; cat "$2"',
    'bmc-stats',
    String(pid),
    BMC_STATS_FILE,
  ];
}

/**
 * Undo everything BMC attached, whatever state it was left in (each step may find nothing): the egress filter and
 * clsact, the XDP program (bmc detaches it on SIGTERM, not when killed), the pinned program. Prints what remains
 * attached (`xdp` and `egress` lines) so the caller can check the detach; always exits 0.
 */
export function bmcDetachScript(ifname: string): string[] {
  return [
    'sh',
    '-c',
    'tc filter del dev "$1" egress 2>/dev/null; tc qdisc del dev "$1" clsact 2>/dev/null; ip link set dev "$1" xdp off 2>/dev/null; rm -f "$2"; ' +
      'ip -o link show dev "$1" | grep -o "xdp[a-z]*" | sed "s/^/xdp /"; tc filter show dev "$1" egress | sed "s/^/egress /"; true',
    'bmc-detach',
    ifname,
    BMC_TX_PIN,
  ];
}

/** What bmcDetachScript printed still attached: empty when the NIC is clean. */
export function remainingAttachments(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(xdp|egress) \S/.test(l));
}

/** memcaslap against BMC's port (the userspace cell's load otherwise: the same -F file, threads, concurrency, -U). */
export function bmcMemcaslapArgv(server: string, p: { threads: number; concurrency: number; seconds: number; config?: string }): string[] {
  return [
    'memcaslap',
    '-s',
    `${server}:${BMC_PORT}`,
    '-F',
    p.config ?? '/tmp/memcaslap.cfg',
    '-T',
    String(p.threads),
    '-c',
    String(p.concurrency),
    '-U',
    '-S',
    '1s',
    '-t',
    `${p.seconds}s`,
  ];
}

/**
 * BMC's counters, summed over CPUs by bmc (write_stats_to_file). The file labels hit_misprediction
 * `get_key_count`; the parser keeps bmc's struct field names.
 */
export interface BmcStats {
  get_recv_count: number;
  set_recv_count: number;
  get_resp_count: number;
  /** Written as `STAT get_key_count N`: keys expected to hit that did not (hash collision or a race with an update). */
  hit_misprediction: number;
  hit_count: number;
  miss_count: number;
  update_count: number;
  invalidation_count: number;
}

/** The file's labels, in bmc's order, and the field each one fills. */
const STAT_LABELS: ReadonlyArray<[string, keyof BmcStats]> = [
  ['get_recv_count', 'get_recv_count'],
  ['set_recv_count', 'set_recv_count'],
  ['get_resp_count', 'get_resp_count'],
  ['get_key_count', 'hit_misprediction'],
  ['hit_count', 'hit_count'],
  ['miss_count', 'miss_count'],
  ['update_count', 'update_count'],
  ['invalidation_count', 'invalidation_count'],
];

/** Parse BMC_STATS_FILE (`STAT <label> <unsigned>` lines); every label must be there exactly once. */
export function parseBmcStats(text: string): BmcStats {
  const seen = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = line.trim().match(/^STAT (\w+) (\d+)$/);
    if (!m) continue;
    if (seen.has(m[1]!)) throw new Error(`BMC stats: ${m[1]} appears twice`);
    seen.set(m[1]!, Number(m[2]));
  }
  const missing = STAT_LABELS.filter(([label]) => !seen.has(label)).map(([label]) => label);
  if (missing.length) throw new Error(`BMC stats: no ${missing.join(', ')} in ${JSON.stringify(text.slice(0, 200))} (is this ${BMC_STATS_FILE}?)`);
  return Object.fromEntries(STAT_LABELS.map(([label, field]) => [field, seen.get(label)!])) as unknown as BmcStats;
}

/** The cell's verdict from BMC's counters: no cache hit is a failed cell, with the counters that say why. */
export function bmcHitProblem(s: BmcStats): string | undefined {
  if (s.hit_count > 0) return undefined;
  if (s.get_recv_count === 0) return 'BMC saw no GET request (is the client on UDP port 11211 and XDP attached to the link NIC?)';
  if (s.update_count === 0)
    return `BMC saw ${s.get_recv_count} GETs but never filled its cache (get_resp_count ${s.get_resp_count}: is the tc egress program attached?)`;
  return `BMC saw ${s.get_recv_count} GETs and ${s.update_count} cache updates but no hit (misses ${s.miss_count}, mispredictions ${s.hit_misprediction})`;
}

/** Why bmc could not load its object: the program the verifier refused, the verifier's own message, and the log's last lines. */
export interface BmcLoadFailure {
  program?: string;
  /** The verifier's sentence after the last instruction it walked, e.g. "function calls are not allowed while holding a lock". */
  message?: string;
  /** The last lines of the load log, up to its END marker (what a failed cell shows). */
  tail: string;
}

/** bmc's log when libbpf failed to load the object (libbpf prints the verifier's log to stdout first), else undefined. */
export function parseBmcLoadFailure(log: string, lines = 15): BmcLoadFailure | undefined {
  if (!log.includes(BMC_LOAD_FAILED_TEXT) && !/libbpf: prog '[^']+': failed to load/.test(log)) return undefined;
  const all = log.split('\n').filter((l) => l.trim() !== '' && !/^\.+$/.test(l.trim()));
  const program = log.match(/libbpf: prog '([^']+)': failed to load/)?.[1];
  const end = all.findIndex((l) => l.includes('-- END PROG LOAD LOG --'));
  const begin = all.findIndex((l) => l.includes('-- BEGIN PROG LOAD LOG --'));
  const body = end > begin && begin >= 0 ? all.slice(begin + 1, end) : [];
  const lastInsn = body.reduce((at, l, i) => (/^\d+: \(/.test(l) ? i : at), -1);
  const message = lastInsn >= 0 ? body.slice(lastInsn + 1).find((l) => !l.startsWith(';')) : undefined;
  const tail = (end >= 0 ? all.slice(Math.max(0, end - lines), end + 1) : all.slice(-lines)).join('\n');
  return { program, message: message?.trim(), tail };
}

/**
 * What a failed cell shows when bmc did not load: the refused program and the verifier's message first, then the
 * log's last lines; undefined when the log shows no load failure.
 */
export function bmcLoadFailure(log: string, lines = 15): string | undefined {
  const f = parseBmcLoadFailure(log, lines);
  if (!f) return undefined;
  const head = f.message ? `${f.program ?? 'a program'}: ${f.message}\n` : '';
  return `${head}${f.tail}`;
}
