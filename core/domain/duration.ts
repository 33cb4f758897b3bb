/** Durations as people type them: `90s`, `15m`, `12h`, `7d`, `2w`, or a bare number of seconds. */
const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds, or `null` for `never`. Throws `RangeError` with a clear message on bad input. */
export function parseDuration(text: string): number | null {
  const value = text.trim().toLowerCase();
  if (value === 'never') return null;
  const match = /^(\d{1,9})([smhdw]?)$/.exec(value);
  if (!match) throw new RangeError(`Invalid duration "${text}": use e.g. 90s, 15m, 12h, 7d, 2w or never.`);
  const seconds = Number(match[1]) * (UNITS[match[2] || 's'] ?? 1);
  if (seconds <= 0) throw new RangeError(`Invalid duration "${text}": it must be positive.`);
  return seconds;
}
