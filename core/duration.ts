/**
 * The one duration formatter of the lab: "12.3s" under a minute, else whole seconds as "4m05s" (minutes are
 * not carried into hours: "187m00s"). Rounding happens once, so 119.6 s is "2m00s", never "1m60s".
 */
export function fmtSeconds(s: number): string {
  if (Math.round(s * 10) < 600) return `${s.toFixed(1)}s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
}
