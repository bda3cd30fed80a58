import { describe, it, expect } from 'vitest';
import { fmtSeconds } from '../../core/duration.js';

describe('the duration formatter (core/duration.ts)', () => {
  it('tenths of a second under a minute', () => {
    expect(fmtSeconds(0)).toBe('0.0s');
    expect(fmtSeconds(0.04)).toBe('0.0s');
    expect(fmtSeconds(12.34)).toBe('12.3s');
    expect(fmtSeconds(59.94)).toBe('59.9s');
  });

  it('minutes and zero-padded whole seconds from a minute on', () => {
    expect(fmtSeconds(59.96)).toBe('1m00s');
    expect(fmtSeconds(60)).toBe('1m00s');
    expect(fmtSeconds(65.4)).toBe('1m05s');
    expect(fmtSeconds(754)).toBe('12m34s');
    expect(fmtSeconds(3 * 3600 + 7)).toBe('180m07s');
  });

  it('rounds once: no "1m60s"', () => {
    expect(fmtSeconds(119.6)).toBe('2m00s');
    expect(fmtSeconds(3599.5)).toBe('60m00s');
  });
});
