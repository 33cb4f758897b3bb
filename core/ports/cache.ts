/**
 * Cache: short-lived shared state and coordination between API instances.
 *
 * Adapters: `MemoryCache` (one process) and `RedisCache` (ioredis). Both pass
 * `core/testing/cache.suite.ts`. A dead backend fails fast with `UnavailableError`
 * (no offline queue, bounded command time) instead of hanging.
 */

export interface Lock {
  /** Releases only if this holder still owns the lock (token-checked). */
  release(): Promise<void>;
}

export interface Counter {
  /** The count in the current window, including this hit. */
  count: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export type Unsubscribe = () => Promise<void>;

export interface Cache {
  get(key: string): Promise<string | null>;
  /** `ttlMs` omitted: no expiry. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  del(key: string): Promise<void>;
  /** Atomic fixed-window counter: increments `key`, starting a `windowMs` window on the first hit. */
  hit(key: string, windowMs: number): Promise<Counter>;
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once the subscription is active. */
  subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe>;
  /** Tries once; `null` when someone else holds it. Expires after `ttlMs` even if never released. */
  tryLock(key: string, ttlMs: number): Promise<Lock | null>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
