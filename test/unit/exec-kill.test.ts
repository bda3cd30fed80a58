import { describe, it, expect } from 'vitest';
import { run, KILLED_STDIO_GRACE_MS } from '../../core/exec.js';

// A killed command whose output something else still holds open must still come back: here a daemon in a
// session of its own (zx does not kill it with the command); in the labs, ssh's shared connection while the
// remote command hangs in the guest's kernel. Without the grace period the first test waits the daemon's 30 s.
describe('run: a killed command comes back even when its stdout stays open', () => {
  it('past its bound: killed, returned within the grace period', async () => {
    const t0 = Date.now();
    const r = await run(['sh', '-c', 'setsid -f sleep 30; exec sleep 30'], { timeoutMs: 300, allowFailure: true });
    const took = Date.now() - t0;
    expect(r.code).not.toBe(0);
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(300 + KILLED_STDIO_GRACE_MS + 4000);
  }, 25_000);

  it('aborted: the same', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const t0 = Date.now();
    const r = await run(['sh', '-c', 'setsid -f sleep 30; exec sleep 30'], { signal: ac.signal, allowFailure: true }).catch((e: Error) => ({ code: -1, e }));
    expect(r.code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(300 + KILLED_STDIO_GRACE_MS + 4000);
  }, 25_000);

  it('a command that ends on its own is not cut short', async () => {
    const r = await run(['sh', '-c', 'echo one; sleep 0.2; echo two'], { timeoutMs: 10_000 });
    expect(r.stdout).toBe('one\ntwo\n');
  });
});
