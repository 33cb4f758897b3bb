/**
 * Conformance suite for the `Cache` port: every adapter runs it from its own test file,
 * e.g. `cacheSuite('MemoryCache', async () => ({ cache: new MemoryCache(), cleanup: ... }))`.
 *
 * Timing tests use real time with short windows (a few hundred ms), so they hold for a
 * remote backend as well as for the in-process one.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Cache } from '../ports/cache.js';

export interface CacheFixture {
  cache: Cache;
  cleanup(): Promise<void>;
}

export interface CacheSuiteOptions {
  /**
   * Whether a message published on one instance reaches subscribers of another instance
   * from the same factory. True for Redis; false for `MemoryCache`, whose pub/sub is
   * process- and instance-local, so the suite publishes and subscribes on one instance.
   */
  pubSubAcrossInstances: boolean;
}

/** Resolves with the first message `cache` delivers on `channel`, or rejects after `timeoutMs`. */
async function nextMessage(
  cache: Cache,
  channel: string,
  timeoutMs = 2_000,
): Promise<{ message: Promise<string>; unsubscribe: () => Promise<void> }> {
  let resolve!: (message: string) => void;
  const message = new Promise<string>((res, rej) => {
    resolve = res;
    setTimeout(() => rej(new Error(`no message on ${channel} within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  const unsubscribe = await cache.subscribe(channel, (m) => resolve(m));
  return { message, unsubscribe };
}

export function cacheSuite(
  name: string,
  factory: () => Promise<CacheFixture>,
  options: CacheSuiteOptions = { pubSubAcrossInstances: true },
): void {
  describe(`Cache conformance: ${name}`, () => {
    const fixtures: CacheFixture[] = [];
    // Unique per test, so runs against a shared backend never see each other's keys.
    let ns = '';

    async function open(): Promise<Cache> {
      const fixture = await factory();
      fixtures.push(fixture);
      return fixture.cache;
    }
    async function cache(): Promise<Cache> {
      ns = `suite:${randomBytes(6).toString('hex')}:`;
      return open();
    }

    afterEach(async () => {
      await Promise.all(fixtures.splice(0).map((f) => f.cleanup()));
    });

    it('returns null for a key that was never set', async () => {
      const c = await cache();
      expect(await c.get(`${ns}missing`)).toBeNull();
    });

    it('returns what was set, overwrites on a second set and forgets it after del', async () => {
      const c = await cache();
      await c.set(`${ns}k`, 'one');
      expect(await c.get(`${ns}k`)).toBe('one');
      await c.set(`${ns}k`, 'two — ünïcode');
      expect(await c.get(`${ns}k`)).toBe('two — ünïcode');
      await c.del(`${ns}k`);
      expect(await c.get(`${ns}k`)).toBeNull();
    });

    it('deleting a missing key is not an error', async () => {
      const c = await cache();
      await expect(c.del(`${ns}never`)).resolves.toBeUndefined();
    });

    it('forgets a value once its ttl has passed, and keeps one set without ttl', async () => {
      const c = await cache();
      await c.set(`${ns}short`, 'v', 150);
      await c.set(`${ns}forever`, 'w');
      expect(await c.get(`${ns}short`)).toBe('v');
      await sleep(300);
      expect(await c.get(`${ns}short`)).toBeNull();
      expect(await c.get(`${ns}forever`)).toBe('w');
    });

    it('a set without ttl removes an earlier ttl', async () => {
      const c = await cache();
      await c.set(`${ns}k`, 'a', 150);
      await c.set(`${ns}k`, 'b');
      await sleep(300);
      expect(await c.get(`${ns}k`)).toBe('b');
    });

    it('counts 50 concurrent hits exactly once each, within one window', async () => {
      const c = await cache();
      const counters = await Promise.all(Array.from({ length: 50 }, () => c.hit(`${ns}rate`, 5_000)));
      const counts = counters.map((x) => x.count).sort((a, b) => a - b);
      expect(counts).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      for (const counter of counters) {
        expect(counter.resetMs).toBeGreaterThan(0);
        expect(counter.resetMs).toBeLessThanOrEqual(5_000);
      }
    });

    it('starts a new window at count 1 once the old window has passed', async () => {
      const c = await cache();
      expect((await c.hit(`${ns}rate`, 200)).count).toBe(1);
      expect((await c.hit(`${ns}rate`, 200)).count).toBe(2);
      await sleep(350);
      const fresh = await c.hit(`${ns}rate`, 200);
      expect(fresh.count).toBe(1);
      expect(fresh.resetMs).toBeGreaterThan(100);
    });

    it('does not extend the window on later hits', async () => {
      const c = await cache();
      const first = await c.hit(`${ns}rate`, 1_000);
      await sleep(200);
      const later = await c.hit(`${ns}rate`, 1_000);
      expect(later.count).toBe(2);
      expect(later.resetMs).toBeLessThanOrEqual(first.resetMs - 150);
    });

    it('delivers a published message to a subscriber', async () => {
      const subscriberSide = await cache();
      const publisherSide = options.pubSubAcrossInstances ? await open() : subscriberSide;
      const { message, unsubscribe } = await nextMessage(subscriberSide, `${ns}chan`);
      await publisherSide.publish(`${ns}chan`, 'hello');
      expect(await message).toBe('hello');
      await unsubscribe();
    });

    it('delivers only the channel a handler subscribed to, and stops after unsubscribe', async () => {
      const subscriberSide = await cache();
      const publisherSide = options.pubSubAcrossInstances ? await open() : subscriberSide;
      const seen: string[] = [];
      const unsubscribe = await subscriberSide.subscribe(`${ns}a`, (m) => seen.push(m));
      const other = await nextMessage(subscriberSide, `${ns}b`);
      await publisherSide.publish(`${ns}a`, 'first');
      await publisherSide.publish(`${ns}b`, 'on b');
      expect(await other.message).toBe('on b');
      expect(seen).toEqual(['first']);

      await unsubscribe();
      const marker = await nextMessage(subscriberSide, `${ns}b`);
      await publisherSide.publish(`${ns}a`, 'after unsubscribe');
      await publisherSide.publish(`${ns}b`, 'marker');
      // Messages on one connection arrive in order, so once the marker is in, 'a' had its chance.
      expect(await marker.message).toBe('marker');
      expect(seen).toEqual(['first']);
      await Promise.all([other.unsubscribe(), marker.unsubscribe()]);
    });

    it('keeps one subscriber when another on the same channel unsubscribes', async () => {
      const c = await cache();
      const first = await nextMessage(c, `${ns}chan`);
      const second = await nextMessage(c, `${ns}chan`);
      await first.unsubscribe();
      await c.publish(`${ns}chan`, 'still here');
      expect(await second.message).toBe('still here');
      await second.unsubscribe();
    });

    it('gives a lock to one holder at a time and to the next after release', async () => {
      const c = await cache();
      const attempts = await Promise.all(Array.from({ length: 10 }, () => c.tryLock(`${ns}lock`, 5_000)));
      const held = attempts.filter((l) => l !== null);
      expect(held).toHaveLength(1);
      expect(await c.tryLock(`${ns}lock`, 5_000)).toBeNull();
      await held[0]!.release();
      const next = await c.tryLock(`${ns}lock`, 5_000);
      expect(next).not.toBeNull();
      await next!.release();
    });

    it('frees a lock that is never released once its ttl has passed', async () => {
      const c = await cache();
      expect(await c.tryLock(`${ns}lock`, 150)).not.toBeNull();
      expect(await c.tryLock(`${ns}lock`, 150)).toBeNull();
      await sleep(300);
      expect(await c.tryLock(`${ns}lock`, 5_000)).not.toBeNull();
    });

    it('a stale holder releasing does not free a lock someone else acquired after expiry', async () => {
      const c = await cache();
      const stale = await c.tryLock(`${ns}lock`, 150);
      expect(stale).not.toBeNull();
      await sleep(300);
      const current = await c.tryLock(`${ns}lock`, 5_000);
      expect(current).not.toBeNull();
      await stale!.release();
      expect(await c.tryLock(`${ns}lock`, 5_000)).toBeNull();
      await current!.release();
      expect(await c.tryLock(`${ns}lock`, 5_000)).not.toBeNull();
    });

    it('answers ping', async () => {
      const c = await cache();
      await expect(c.ping()).resolves.toBeUndefined();
    });

    it('rejects calls after close', async () => {
      const c = await cache();
      await c.close();
      await expect(c.get(`${ns}k`)).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      await expect(c.ping()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    });
  });
}
