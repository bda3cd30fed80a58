/** Set while a signal handler tears things down: errors from the interrupted work must not exit first. */
export const interruption = { active: false };

/**
 * On SIGINT/SIGTERM run `teardown` once, then exit 130/143. Returns the function that removes the handlers.
 * The handler is the only place that exits on a signal, so whatever was interrupted cannot exit before it.
 */
export function onInterrupt(teardown: (sig: NodeJS.Signals) => Promise<void>): () => void {
  let fired = false;
  const handler = (sig: NodeJS.Signals) => {
    if (fired) return;
    fired = true;
    interruption.active = true;
    void teardown(sig)
      .catch(() => undefined)
      .finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
