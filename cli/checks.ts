import type { Check } from '../core/doctor.js';

/** A check as the doctor and `hosts check` (with the host it ran on) report it. */
export type PrintedCheck = Pick<Check, 'name' | 'level' | 'detail' | 'fix'> & { host?: string };

const MARK = { ok: ' ok ', warn: 'warn', fail: 'FAIL' } as const;
const HOST_WIDTH = 6;
const NAME_WIDTH = 13;

/**
 * The one check printer of the CLI: `[ ok ]`, `[warn]` or `[FAIL]`, the host when the checks name one, the
 * name and the detail; under a check that is not ok, its fix, aligned with the detail.
 */
export function checkLines(checks: readonly PrintedCheck[]): string[] {
  const hosts = checks.some((c) => c.host !== undefined);
  const host = (h: string | undefined) => (hosts ? `${(h ?? '').padEnd(HOST_WIDTH)} ` : '');
  return checks.flatMap((c) => [
    `[${MARK[c.level]}] ${host(c.host)}${c.name.padEnd(NAME_WIDTH)} ${c.detail}`,
    ...(c.fix && c.level !== 'ok' ? [`${' '.repeat(7)}${host('')}${''.padEnd(NAME_WIDTH)} fix: ${c.fix}`] : []),
  ]);
}

export function printChecks(checks: readonly PrintedCheck[]): void {
  for (const line of checkLines(checks)) console.log(line);
}
