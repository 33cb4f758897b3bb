import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it('reads seconds, minutes, hours, days and weeks', () => {
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('15m')).toBe(900);
    expect(parseDuration('12h')).toBe(43_200);
    expect(parseDuration('7d')).toBe(604_800);
    expect(parseDuration('2W')).toBe(1_209_600);
  });

  it('reads never as no expiry', () => {
    expect(parseDuration('never')).toBeNull();
  });

  it('rejects zero, negatives, fractions and unknown units with a clear message', () => {
    for (const bad of ['0', '-5d', '1.5h', '3y', '', 'soon']) {
      expect(() => parseDuration(bad)).toThrow(/Invalid duration/);
    }
  });
});
