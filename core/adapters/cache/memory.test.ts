import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../domain/clock.js';
import { cacheSuite } from '../../testing/cache.suite.js';
import { MemoryCache } from './memory.js';

// MemoryCache pub/sub is process- and instance-local, so the suite publishes and subscribes on one instance.
cacheSuite(
  'MemoryCache',
  async () => {
    const cache = new MemoryCache();
    return { cache, cleanup: () => cache.close() };
  },
  { pubSubAcrossInstances: false },
);

describe('MemoryCache with an injected clock', () => {
  it('expires values when the clock passes their ttl, not before', async () => {
    const clock = new ManualClock();
    const cache = new MemoryCache({ clock });
    await cache.set('k', 'v', 1_000);
    clock.advance(999);
    expect(await cache.get('k')).toBe('v');
    clock.advance(1);
    expect(await cache.get('k')).toBeNull();
    await cache.close();
  });

  it('reports the time left in the hit window from the clock', async () => {
    const clock = new ManualClock();
    const cache = new MemoryCache({ clock });
    expect(await cache.hit('r', 60_000)).toEqual({ count: 1, resetMs: 60_000 });
    clock.advance(15_000);
    expect(await cache.hit('r', 60_000)).toEqual({ count: 2, resetMs: 45_000 });
    clock.advance(45_000);
    expect(await cache.hit('r', 60_000)).toEqual({ count: 1, resetMs: 60_000 });
    await cache.close();
  });

  it('sweeps expired keys that nobody reads again', async () => {
    const clock = new ManualClock();
    const cache = new MemoryCache({ clock, sweepIntervalMs: 20 });
    await cache.set('gone', 'v', 10);
    await cache.set('kept', 'v');
    expect(cache.size).toBe(2);
    clock.advance(11);
    await new Promise((resolve) => setTimeout(resolve, 60));
    // No read touched 'gone', so only the sweep can have removed it.
    expect(cache.size).toBe(1);
    await cache.close();
  });

  it('calls subscribers after publish has returned, not during it', async () => {
    const cache = new MemoryCache();
    const seen: string[] = [];
    await cache.subscribe('c', (m) => seen.push(m));
    await cache.publish('c', 'x');
    expect(seen).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(['x']);
    await cache.close();
  });

  it('keeps delivering to other subscribers when one handler throws', async () => {
    const cache = new MemoryCache();
    const seen: string[] = [];
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    await cache.subscribe('c', () => {
      throw new Error('boom');
    });
    await cache.subscribe('c', (m) => seen.push(m));
    await cache.publish('c', 'x');
    await new Promise((resolve) => setTimeout(resolve, 20));
    process.off('warning', onWarning);
    expect(seen).toEqual(['x']);
    expect(warnings.some((w) => w.includes('boom'))).toBe(true);
    await cache.close();
  });
});
