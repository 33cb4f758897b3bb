import { describe, expect, it } from 'vitest';
import { PermanentJobError } from '../../ports/job-queue.js';
import { jobPriority, onFailure, retryDelayMs, retryPolicy } from './backoff.js';

describe('retry policy', () => {
  it('fills in the documented defaults', () => {
    expect(retryPolicy()).toEqual({ concurrency: 1, maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 });
  });

  it('doubles the delay per retry up to the maximum', () => {
    const policy = { baseDelayMs: 1000, maxDelayMs: 60_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelayMs(n, policy))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
    expect(retryDelayMs(5000, policy)).toBe(60_000);
  });

  it('retries until maxAttempts, then dead-letters', () => {
    const policy = retryPolicy({ maxAttempts: 3, baseDelayMs: 100 });
    expect(onFailure(new Error('x'), 1, policy)).toEqual({ kind: 'retry', delayMs: 100 });
    expect(onFailure(new Error('x'), 2, policy)).toEqual({ kind: 'retry', delayMs: 200 });
    expect(onFailure(new Error('x'), 3, policy)).toEqual({ kind: 'dead' });
  });

  it('dead-letters a PermanentJobError on the first attempt', () => {
    expect(onFailure(new PermanentJobError('no'), 1, retryPolicy())).toEqual({ kind: 'dead' });
  });

  it('rejects nonsense options and priorities with RangeError', () => {
    expect(() => retryPolicy({ concurrency: 0 })).toThrow(RangeError);
    expect(() => retryPolicy({ maxAttempts: 0 })).toThrow(RangeError);
    expect(() => retryPolicy({ baseDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
    expect(() =>
      jobPriority({ queue: 'file.upload', payload: {}, idempotencyKey: 'k', priority: -1 }),
    ).toThrow(RangeError);
    expect(jobPriority({ queue: 'file.upload', payload: {}, idempotencyKey: 'k' })).toBe(5);
  });
});
