/**
 * MemoryCache: the embedded `Cache` for one process. Keys, counters and locks share
 * one map (as they share one keyspace in Redis), so `get` after `hit` sees the count
 * and `del` frees a lock. Expiry is lazy (checked on every read) plus a periodic sweep
 * so keys nobody reads again do not pile up.
 *
 * Pub/sub is local to this instance: only subscribers of the same `MemoryCache`
 * receive a message. That is enough for the embedded mode, where one process runs
 * the API and the worker; several processes need `RedisCache`.
 */
import { randomBytes } from 'node:crypto';
import { UnavailableError } from '../../../contract/errors.js';
import { systemClock } from '../../domain/clock.js';
import type { Clock } from '../../domain/clock.js';
import type { Cache, Counter, Lock, Unsubscribe } from '../../ports/cache.js';

interface Entry {
  value: string;
  /** Epoch ms at which the entry disappears; `null` = never. */
  expiresAt: number | null;
}

interface Subscription {
  handler: (message: string) => void;
}

export interface MemoryCacheOptions {
  /** Time source for expiry; a `ManualClock` lets tests move time. */
  clock?: Clock;
  /** How often expired entries are swept (ms). Default 30 s. */
  sweepIntervalMs?: number;
}

export class MemoryCache implements Cache {
  private readonly entries = new Map<string, Entry>();
  private readonly channels = new Map<string, Set<Subscription>>();
  private readonly clock: Clock;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options?: MemoryCacheOptions) {
    this.clock = options?.clock ?? systemClock;
    this.sweepTimer = setInterval(() => this.sweep(), options?.sweepIntervalMs ?? 30_000);
    // The sweep is housekeeping; it must never keep the process alive on its own.
    this.sweepTimer.unref();
  }

  async get(key: string): Promise<string | null> {
    this.assertOpen();
    return this.live(key)?.value ?? null;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.assertOpen();
    this.entries.set(key, { value, expiresAt: ttlMs === undefined ? null : this.now() + ttlMs });
  }

  async del(key: string): Promise<void> {
    this.assertOpen();
    this.entries.delete(key);
  }

  async hit(key: string, windowMs: number): Promise<Counter> {
    this.assertOpen();
    const now = this.now();
    const entry = this.live(key);
    const previous = entry === undefined ? NaN : Number(entry.value);
    // Like Redis, a counter without expiry (set by hand) gets one so the window always ends.
    if (entry === undefined || !Number.isSafeInteger(previous) || entry.expiresAt === null) {
      const expiresAt = now + windowMs;
      const count = Number.isSafeInteger(previous) ? previous + 1 : 1;
      this.entries.set(key, { value: String(count), expiresAt });
      return { count, resetMs: windowMs };
    }
    entry.value = String(previous + 1);
    return { count: previous + 1, resetMs: Math.max(0, entry.expiresAt - now) };
  }

  /** Delivers to this instance's subscribers, each handler called on a later tick. */
  async publish(channel: string, message: string): Promise<void> {
    this.assertOpen();
    const subscribers = this.channels.get(channel);
    if (subscribers === undefined) return;
    for (const subscription of [...subscribers]) {
      setImmediate(() => {
        // Checked again: an unsubscribe between publish and delivery wins.
        if (!subscribers.has(subscription)) return;
        try {
          subscription.handler(message);
        } catch (err) {
          // A broken subscriber must not break the publisher or other subscribers.
          process.emitWarning(`MemoryCache subscriber on ${channel} threw: ${String(err)}`);
        }
      });
    }
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe> {
    this.assertOpen();
    // A fresh object per call, so subscribing the same function twice gives two independent subscriptions.
    const subscription: Subscription = { handler };
    let subscribers = this.channels.get(channel);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.channels.set(channel, subscribers);
    }
    subscribers.add(subscription);
    return async () => {
      const current = this.channels.get(channel);
      if (current === undefined) return;
      current.delete(subscription);
      if (current.size === 0) this.channels.delete(channel);
    };
  }

  async tryLock(key: string, ttlMs: number): Promise<Lock | null> {
    this.assertOpen();
    if (this.live(key) !== undefined) return null;
    const token = randomBytes(16).toString('hex');
    this.entries.set(key, { value: token, expiresAt: this.now() + ttlMs });
    return {
      release: async () => {
        // Only the holder's token frees it: after expiry someone else may hold the key.
        if (this.live(key)?.value === token) this.entries.delete(key);
      },
    };
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  /** Number of stored entries, counting expired ones not yet swept or read (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** Stops the sweep and drops all state and subscriptions. Later calls reject with `UnavailableError`. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.entries.clear();
    this.channels.clear();
  }

  /** The entry if present and unexpired; deletes it when expired. */
  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) this.entries.delete(key);
    }
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('The memory cache is closed.');
  }
}
