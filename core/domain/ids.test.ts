import { describe, expect, it } from 'vitest';
import { timeOrderedToken, uuidv7 } from './ids.js';

describe('uuidv7', () => {
  it('is an RFC 9562 version 7 UUID whose first 48 bits are the time', () => {
    const at = Date.UTC(2026, 10, 28, 3, 30, 0, 123);
    const id = uuidv7(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sorts by creation time and does not repeat', () => {
    expect(uuidv7(1_000) < uuidv7(1_001)).toBe(true);
    const many = new Set(Array.from({ length: 10_000 }, () => uuidv7(5_000)));
    expect(many.size).toBe(10_000);
  });
});

describe('random parts', () => {
  it('never repeat across refills of the random pool, and are not all alike', () => {
    // 2,000 ids draw 32,000 random bytes: the 4 KiB pool is refilled several times.
    const tails = Array.from({ length: 2_000 }, () => uuidv7(7_000).slice(24));
    expect(new Set(tails).size).toBe(2_000);
    const tokens = Array.from({ length: 2_000 }, () => timeOrderedToken(7_000).slice(8));
    expect(new Set(tokens).size).toBe(2_000);
    // Every hex digit shows up in every position of the random tail (12 positions × 2,000 ids).
    for (let i = 0; i < 12; i++) expect(new Set(tails.map((t) => t[i])).size).toBe(16);
  });
});

describe('timeOrderedToken', () => {
  it('is 22 base64url characters; tokens of the same millisecond share their first 8 (the time)', () => {
    const a = timeOrderedToken(1_795_836_000_000);
    const b = timeOrderedToken(1_795_836_000_000);
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a.slice(0, 8)).toBe(b.slice(0, 8));
    expect(a).not.toBe(b);
    expect(Buffer.from(a, 'base64url').readUIntBE(0, 6)).toBe(1_795_836_000_000);
  });
});
