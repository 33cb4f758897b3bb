import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Aggregator } from './aggregator.js';

describe('Aggregator', () => {
  let batches: Array<[string, string[]]>;
  let agg: Aggregator;
  beforeEach(() => {
    vi.useFakeTimers();
    batches = [];
    agg = new Aggregator({ delayMs: 200, maxDelayMs: 1000, onBatch: (f, p) => batches.push([f, p]) });
  });
  afterEach(() => {
    agg.close();
    vi.useRealTimers();
  });

  it('hands a path over once it has been quiet for the delay', () => {
    agg.add('/a', 'x.txt');
    vi.advanceTimersByTime(199);
    expect(batches).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(batches).toEqual([['/a', ['x.txt']]]);
  });

  it('keeps pushing back a path that keeps changing, but not past the maximum delay', () => {
    agg.add('/a', 'busy.log');
    for (let t = 0; t < 900; t += 100) {
      vi.advanceTimersByTime(100);
      agg.add('/a', 'busy.log');
    }
    expect(batches).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(batches).toEqual([['/a', ['busy.log']]]);
  });

  it('batches the two halves of a rename together and keeps folders apart', () => {
    agg.add('/a', 'old.txt');
    vi.advanceTimersByTime(120);
    agg.add('/a', 'new.txt');
    agg.add('/b', 'other.txt');
    vi.advanceTimersByTime(80);
    expect(batches).toEqual([['/a', ['new.txt', 'old.txt']]]);
    vi.advanceTimersByTime(120);
    expect(batches).toEqual([
      ['/a', ['new.txt', 'old.txt']],
      ['/b', ['other.txt']],
    ]);
    expect(agg.size).toBe(0);
  });

  it('forgets the paths of a folder that is no longer watched', () => {
    agg.add('/a', 'x');
    agg.forget('/a');
    vi.advanceTimersByTime(1000);
    expect(batches).toEqual([]);
  });
});
