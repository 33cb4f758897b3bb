import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheSuite } from '../../testing/cache.suite.js';
import { RedisCache } from './redis.js';

const url = process.env.REDIS_URL ?? '';
const onCi = process.env.CI === 'true';

if (url === '' && onCi) {
  describe('RedisCache', () => {
    it('runs on CI, where REDIS_URL must be set', () => {
      throw new Error('REDIS_URL is not set, but CI=true: the Redis suite must run on CI.');
    });
  });
} else if (url === '') {
  console.log('RedisCache suite skipped: set REDIS_URL (e.g. redis://127.0.0.1:6379) to run it.');
}

describe.runIf(url !== '')('RedisCache', () => {
  // One prefix per run, so parallel runs against the shared Redis never collide.
  const keyPrefix = `aio-test:${randomBytes(6).toString('hex')}:`;
  cacheSuite('RedisCache', async () => {
    const cache = await RedisCache.connect(url, { keyPrefix });
    return { cache, cleanup: () => cache.close() };
  });

  // Leave the shared Redis as we found it: remove every key this run created.
  afterAll(async () => {
    const admin = new Redis(url);
    try {
      const keys: string[] = [];
      for await (const batch of admin.scanStream({ match: `${keyPrefix}*`, count: 500 }))
        keys.push(...(batch as string[]));
      if (keys.length > 0) await admin.del(...keys);
      expect(await admin.keys(`${keyPrefix}*`)).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });
});
