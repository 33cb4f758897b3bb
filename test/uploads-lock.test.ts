/** The per-upload write lock over the real Cache adapters (Redis when REDIS_URL is set). */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MemoryCache } from '../core/adapters/cache/memory.js';
import { RedisCache } from '../core/adapters/cache/redis.js';
import type { Cache } from '../core/ports/cache.js';
import { lockUpload, uploadLockKey } from '../server/uploads/upload-lock.js';
import { requireService } from './helpers/app.js';

const redisUrl = requireService('REDIS_URL');

const caches: Array<[string, () => Promise<Cache>]> = [['MemoryCache', async () => new MemoryCache()]];
if (redisUrl) {
  const keyPrefix = `aio-test:${randomBytes(6).toString('hex')}:`;
  caches.push(['RedisCache', () => RedisCache.connect(redisUrl, { keyPrefix })]);
}

describe.each(caches)('upload lock on %s', (_name, open) => {
  it('refuses a second holder with UPLOAD_LOCKED while the first holds it', async () => {
    const cache = await open();
    try {
      const held = await lockUpload(cache, 'upload-a', 5_000);
      await expect(lockUpload(cache, 'upload-a', 5_000)).rejects.toMatchObject({ code: 'UPLOAD_LOCKED' });
      await held.release();
      const next = await lockUpload(cache, 'upload-a', 5_000);
      await next.release();
    } finally {
      await cache.close();
    }
  });

  it('keeps the lock alive past its TTL while held, and lets it lapse once released', async () => {
    const cache = await open();
    try {
      const held = await lockUpload(cache, 'upload-b', 150);
      await sleep(500);
      expect(await cache.tryLock(uploadLockKey('upload-b'), 150)).toBeNull();
      await held.release();
      const after = await cache.tryLock(uploadLockKey('upload-b'), 150);
      expect(after).not.toBeNull();
      await after?.release();
    } finally {
      await cache.close();
    }
  });

  it('does not renew a lock that expired and was taken by someone else', async () => {
    const cache = await open();
    try {
      const held = await lockUpload(cache, 'upload-c', 150);
      // Someone frees the key (as an expiry would) and another holder takes it.
      await cache.del(uploadLockKey('upload-c'));
      const other = await cache.tryLock(uploadLockKey('upload-c'), 150);
      expect(other).not.toBeNull();
      await sleep(400);
      // The first holder's renewals must not have extended the other's lock.
      const third = await cache.tryLock(uploadLockKey('upload-c'), 1_000);
      expect(third).not.toBeNull();
      await held.release();
      // Releasing the stale holder does not free the current one.
      expect(await cache.tryLock(uploadLockKey('upload-c'), 1_000)).toBeNull();
      await third?.release();
    } finally {
      await cache.close();
    }
  });
});
