import type { GridParam, ParamValue } from './types.js';

/** `N:M` proportions, as memcaslap's -F cmd lines and memtier's --ratio take them; 0:0 divides by zero. */
function isProportion(v: ParamValue): boolean {
  const m = typeof v === 'string' ? /^(\d+):(\d+)$/.exec(v) : null;
  return !!m && Number(m[1]) + Number(m[2]) > 0;
}

const isCount = (v: ParamValue) => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** A SET:GET proportion grid key; `what` says which client flag reads it. */
export const proportion = (what: string): GridParam => ({ check: isProportion, allowed: `SET:GET as 'N:M' with N+M > 0 (${what})` });

/** A whole-number grid key >= 1; `what` says what it counts and which flag reads it. */
export const count = (what: string): GridParam => ({ check: isCount, allowed: `a whole number >= 1 (${what})` });

/** A non-empty string grid key (a regex, a name). */
export const text = (what: string): GridParam => ({ check: (v) => typeof v === 'string' && v.trim() !== '', allowed: `a non-empty ${what}` });

/** One of a fixed set of strings. */
export const oneOf = (values: readonly string[], what: string): GridParam => ({
  check: (v) => typeof v === 'string' && values.includes(v),
  allowed: `one of ${values.join(', ')} (${what})`,
});
