/**
 * Policy shared by the queue adapters: the defaults of `ConsumeOptions`, the
 * exponential backoff between attempts, and priority validation.
 */
import type { ConsumeOptions, JobSpec } from '../../ports/job-queue.js';
import { PermanentJobError, PRIORITY } from '../../ports/job-queue.js';

export interface RetryPolicy {
  concurrency: number;
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Fills in the port's defaults (1, 5, 1000, 60000) and rejects nonsense with a `RangeError`. */
export function retryPolicy(options: ConsumeOptions = {}): RetryPolicy {
  const policy: RetryPolicy = {
    concurrency: options.concurrency ?? 1,
    maxAttempts: options.maxAttempts ?? 5,
    baseDelayMs: options.baseDelayMs ?? 1000,
    maxDelayMs: options.maxDelayMs ?? 60_000,
  };
  if (!Number.isInteger(policy.concurrency) || policy.concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer (got ${policy.concurrency})`);
  }
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer (got ${policy.maxAttempts})`);
  }
  if (!(policy.baseDelayMs >= 0) || !(policy.maxDelayMs >= policy.baseDelayMs)) {
    throw new RangeError(
      `need 0 <= baseDelayMs <= maxDelayMs (got ${policy.baseDelayMs}, ${policy.maxDelayMs})`,
    );
  }
  return policy;
}

/** Delay before retry `n` (1-based: the retry after the first failed attempt is 1): `min(base * 2^(n-1), max)`. */
export function retryDelayMs(retry: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>): number {
  const exponent = Math.max(0, retry - 1);
  // 2^exponent overflows to Infinity for huge attempt counts; min() still caps it.
  return Math.round(Math.min(policy.baseDelayMs * 2 ** exponent, policy.maxDelayMs));
}

/** What to do with a job whose handler failed on delivery `attempt`. */
export type FailureOutcome = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

export function onFailure(err: unknown, attempt: number, policy: RetryPolicy): FailureOutcome {
  if (err instanceof PermanentJobError || attempt >= policy.maxAttempts) return { kind: 'dead' };
  return { kind: 'retry', delayMs: retryDelayMs(attempt, policy) };
}

/** The message stored with a failed job. Non-errors thrown by a handler are stringified. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** A job's priority: an integer 0..9 (`RangeError` otherwise), default `PRIORITY.normal`. */
export function jobPriority(spec: JobSpec): number {
  const priority = spec.priority ?? PRIORITY.normal;
  if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
    throw new RangeError(`priority must be an integer 0..9 (got ${priority})`);
  }
  return priority;
}
