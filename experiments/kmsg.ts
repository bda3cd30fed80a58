import type { Host } from '../core/host.js';

/**
 * The kernel log of one cell, by /dev/kmsg sequence number rather than by line count: the printk ring
 * wraps on a busy run (a Zipfian ffkx-bench run logs ~1,240 records), and a wrap must be said, not hidden.
 * Records print as dmesg does ("[seconds] message"); a gap since `from` is reported on stderr.
 */
export const KMSG_SLICE_AWK =
  `BEGIN { first = -1 }
/^[0-9]/ {
  split($0, h, ";"); split(h[1], f, ",")
  if (f[2] + 0 <= from) next
  if (first < 0) first = f[2] + 0
  printf "[%12.6f] %s\\n", f[3] / 1e6, substr($0, length(h[1]) + 2)
}
END { if (first > from + 1) print "kflex-lab: kernel log records " from + 1 "-" first - 1 ` +
  `" were overwritten before they were read (the ring buffer wrapped)" > "/dev/stderr" }`;

/** The last kernel log sequence number now, or -1 when the log cannot be read. */
export async function kmsgSeq(host: Host): Promise<number> {
  const r = await host
    .exec(['sh', '-c', "dd if=/dev/kmsg iflag=nonblock bs=8192 2>/dev/null | awk -F'[,;]' '/^[0-9]/{s=$2} END{print s+0}'"], {
      allowFailure: true,
      timeoutMs: 60_000,
    })
    .catch(() => undefined);
  const n = Number(r?.stdout.trim());
  return r?.code === 0 && Number.isFinite(n) ? n : -1;
}

/** The kernel log records after sequence number `from`, formatted as dmesg prints them. */
export async function kmsgSince(host: Host, from: number): Promise<{ text: string; gap?: string }> {
  const r = await host.exec(['sh', '-c', 'dd if=/dev/kmsg iflag=nonblock bs=8192 2>/dev/null | awk -v from="$1" "$2"', 'kmsg', String(from), KMSG_SLICE_AWK], {
    allowFailure: true,
    timeoutMs: 60_000,
  });
  return { text: r.stdout, gap: r.stderr.trim() || undefined };
}
