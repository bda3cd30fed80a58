/**
 * The one polling primitive under every wait (SSH up, server ready, QEMU gone, KVM banner), after the
 * NixOS test driver's `retry`: call `attempt` until it returns a value, or give up at the deadline with
 * the last reason it gave. No wait in the lab loops on its own.
 */
export interface RetryOptions {
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** Pause between attempts (ms). */
  intervalMs?: number;
  /** What is being waited for, for the timeout error. */
  what: string;
  /** Stop early: checked before each attempt; a string is the reason to stop. */
  abort?: () => string | undefined | Promise<string | undefined>;
  /** The time and the pause between attempts; Date.now and a timer unless given (tests, or a pause a signal ends). */
  clock?: RetryClock;
}

/** Where a wait reads the time and how it pauses. */
export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** An attempt's answer: `done` with a value, or not yet, with why (kept for the timeout message). */
export type Attempt<T> = { done: true; value: T } | { done: false; why?: string };

export class RetryTimeout extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly lastWhy: string | undefined,
  ) {
    super(`${what}: not within ${(timeoutMs / 1000).toFixed(timeoutMs % 1000 ? 1 : 0)} s${lastWhy ? ` (last: ${lastWhy})` : ''}`);
    this.name = 'RetryTimeout';
  }
}

export class RetryAborted extends Error {
  constructor(
    readonly what: string,
    readonly why: string,
  ) {
    super(`${what}: ${why}`);
    this.name = 'RetryAborted';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function retry<T>(attempt: () => Promise<Attempt<T>> | Attempt<T>, o: RetryOptions): Promise<T> {
  const clock = o.clock ?? { now: Date.now, sleep };
  const deadline = clock.now() + o.timeoutMs;
  const interval = o.intervalMs ?? 250;
  let lastWhy: string | undefined;
  for (;;) {
    const stop = await o.abort?.();
    if (stop) throw new RetryAborted(o.what, stop);
    const r = await attempt();
    if (r.done) return r.value;
    lastWhy = r.why ?? lastWhy;
    const left = deadline - clock.now();
    if (left <= 0) throw new RetryTimeout(o.what, o.timeoutMs, lastWhy);
    await clock.sleep(Math.min(interval, left));
  }
}

/** Wait until `cond` holds; resolves true, or false at the deadline (for waits whose timeout is not an error). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  try {
    await retry(async () => ((await cond()) ? { done: true, value: true } : { done: false }), { timeoutMs, intervalMs, what: 'condition' });
    return true;
  } catch (e) {
    if (e instanceof RetryTimeout) return false;
    throw e;
  }
}
