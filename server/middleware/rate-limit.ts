/**
 * Fixed-window rate limits counted in the Cache (`cache.hit`), so every API instance
 * behind one Redis shares the counters. Exceeding a limit answers 429 `RATE_LIMITED`
 * with `Retry-After` (seconds until the window ends).
 *
 * When the Cache fails (rejects, or gives no answer within `deadlineMs`) a limiter
 * either counts in its own per-process `MemoryCache` (`onCacheFailure: 'fallback'`,
 * for login and register: an outage must not lift the brute-force limits) or lets
 * the request through (`'open'`, for the general API limit: an outage must not
 * take the API down). After a failure the Cache is skipped for `retryCacheAfterMs`,
 * so a dead backend costs no time per request.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../../contract/errors.js';
import { MemoryCache } from '../../core/adapters/cache/memory.js';
import type { Clock } from '../../core/domain/clock.js';
import type { Cache, Counter } from '../../core/ports/cache.js';
import type { AppDeps } from '../deps.js';

export interface Limit {
  /** Cache key of the counter (prefixed with `rl:`). */
  key: string;
  /** Requests allowed per window; the next one is refused. */
  max: number;
  windowMs: number;
}

export interface RateLimiterOptions {
  onCacheFailure: 'fallback' | 'open';
  /** Longest wait for the Cache before treating it as failed. Default 300 ms. */
  deadlineMs?: number;
  /** How long to skip the Cache after it failed. Default 5 s. */
  retryCacheAfterMs?: number;
}

export class RateLimiter {
  private readonly cache: Cache;
  private readonly clock: Clock;
  private readonly options: Required<RateLimiterOptions>;
  private fallback: MemoryCache | undefined;
  /** `performance.now()` before which the Cache is not tried again. */
  private skipCacheUntil = 0;

  constructor(cache: Cache, clock: Clock, options: RateLimiterOptions) {
    this.cache = cache;
    this.clock = clock;
    this.options = { deadlineMs: 300, retryCacheAfterMs: 5000, ...options };
  }

  /**
   * Counts one request against every limit. Throws `RATE_LIMITED` (with `Retry-After`)
   * when any of them is exceeded; never throws for a Cache failure.
   */
  async consume(limits: readonly Limit[]): Promise<void> {
    let retryAfterMs = 0;
    for (const limit of limits) {
      const counter = await this.hit(`rl:${limit.key}`, limit.windowMs);
      if (counter !== null && counter.count > limit.max)
        retryAfterMs = Math.max(retryAfterMs, counter.resetMs);
    }
    if (retryAfterMs > 0) {
      const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      throw new AppError('RATE_LIMITED', undefined, { headers: { 'Retry-After': String(seconds) } });
    }
  }

  /** The counter after this hit; `null` when failing open. */
  private async hit(key: string, windowMs: number): Promise<Counter | null> {
    if (performance.now() >= this.skipCacheUntil) {
      try {
        const answer = this.cache.hit(key, windowMs);
        // The in-process MemoryCache answers without I/O and cannot hang: no timer to race.
        if (this.cache instanceof MemoryCache) return await answer;
        return await withDeadline(answer, this.options.deadlineMs);
      } catch {
        this.skipCacheUntil = performance.now() + this.options.retryCacheAfterMs;
      }
    }
    if (this.options.onCacheFailure === 'open') return null;
    this.fallback ??= new MemoryCache({ clock: this.clock });
    return this.fallback.hit(key, windowMs);
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A short, fixed-length key part for a value that may be long or personal (an email). */
export function keyPart(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url').slice(0, 22);
}

/** Limits of one login attempt: per (ip, email) and per ip. */
export function loginLimits(config: AppDeps['config'], ip: string, email: string): Limit[] {
  const { authWindowMs, login, loginPerIp } = config.rateLimit;
  return [
    { key: `login:ip-email:${ip}:${keyPart(email)}`, max: login, windowMs: authWindowMs },
    { key: `login:ip:${ip}`, max: loginPerIp, windowMs: authWindowMs },
  ];
}

/** Limits of one registration: per ip. */
export function registerLimits(config: AppDeps['config'], ip: string): Limit[] {
  const { authWindowMs, register } = config.rateLimit;
  return [{ key: `register:ip:${ip}`, max: register, windowMs: authWindowMs }];
}

/**
 * The general API limit per user (`config.rateLimit.api` per `apiWindowMs`). Put it
 * after `authenticate(deps)`; without `req.auth` it does nothing. Fails open.
 */
export function apiRateLimit(deps: Pick<AppDeps, 'cache' | 'clock' | 'config'>): RequestHandler {
  const limiter = new RateLimiter(deps.cache, deps.clock, { onCacheFailure: 'open' });
  const { api, apiWindowMs } = deps.config.rateLimit;
  return async (req, _res, next) => {
    if (req.auth)
      await limiter.consume([{ key: `api:user:${req.auth.user.id}`, max: api, windowMs: apiWindowMs }]);
    next();
  };
}
