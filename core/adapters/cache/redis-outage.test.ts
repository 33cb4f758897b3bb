/**
 * RedisCache against a throwaway `redis-server` that this test kills and restarts, to
 * show that a dead Redis makes calls fail fast with UnavailableError and that the same
 * instance recovers. Never touches the shared Redis.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../../contract/errors.js';
import { RedisCache } from './redis.js';
import { freePort, hasRedisServer, killRedis, startRedis } from '../../../test/helpers/redis-server.js';

/** Expects `call` to reject with UnavailableError in under a second. */
async function expectFastUnavailable(call: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const error = await call().then(
    () => undefined,
    (err: unknown) => err,
  );
  const elapsed = performance.now() - started;
  expect(error).toBeInstanceOf(UnavailableError);
  expect(elapsed).toBeLessThan(1_000);
}

async function eventually(check: () => Promise<void>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

describe.runIf(hasRedisServer || process.env.CI === 'true')(
  'RedisCache when Redis dies and comes back',
  () => {
    let port = 0;
    let server: ChildProcess | undefined;
    let cache: RedisCache | undefined;

    beforeAll(async () => {
      port = await freePort();
      server = await startRedis(port);
      cache = await RedisCache.connect(`redis://127.0.0.1:${port}`, { keyPrefix: 'outage:' });
    });

    afterAll(async () => {
      await cache?.close();
      if (server !== undefined) await killRedis(server);
    });

    it('rejects get, set, hit, ping and publish within 1 s with UnavailableError, then recovers on restart', async () => {
      const c = cache!;
      await c.set('k', 'before');
      const received: string[] = [];
      await c.subscribe('news', (m) => received.push(m));

      await killRedis(server!);
      // Give the client the moment it needs to notice the closed socket; calls in that moment are covered too.
      await expectFastUnavailable(() => c.get('k'));
      await sleep(100);
      await expectFastUnavailable(() => c.get('k'));
      await expectFastUnavailable(() => c.set('k', 'during'));
      await expectFastUnavailable(() => c.hit('rate', 1_000));
      await expectFastUnavailable(() => c.ping());
      await expectFastUnavailable(() => c.publish('news', 'lost'));
      await expectFastUnavailable(async () => (await c.tryLock('lock', 1_000)) ?? undefined);

      server = await startRedis(port);
      await eventually(() => c.ping());
      // The new server started empty (no persistence): the old value is gone, new writes work.
      expect(await c.get('k')).toBeNull();
      await c.set('k', 'after');
      expect(await c.get('k')).toBe('after');
      expect((await c.hit('rate', 1_000)).count).toBe(1);
      // The subscription made before the outage is restored by the reconnect.
      await eventually(async () => {
        await c.publish('news', 'back');
        expect(received).toContain('back');
      });
    });

    it('rejects within the command timeout with UnavailableError while Redis is frozen, then answers again', async () => {
      const c = cache!;
      await eventually(() => c.ping());
      server!.kill('SIGSTOP');
      try {
        // The socket stays open, so only the command timeout (500 ms) can end the wait.
        await expectFastUnavailable(() => c.get('k'));
      } finally {
        server!.kill('SIGCONT');
      }
      await eventually(async () => expect(await c.get('k')).toBe('after'));
    });

    it('fails to connect with UnavailableError within about 2 s when nothing listens', async () => {
      const deadPort = await freePort();
      const started = performance.now();
      await expect(RedisCache.connect(`redis://127.0.0.1:${deadPort}`)).rejects.toBeInstanceOf(
        UnavailableError,
      );
      expect(performance.now() - started).toBeLessThan(2_500);
    });
  },
);

if (!hasRedisServer && process.env.CI !== 'true') {
  console.log('RedisCache outage test skipped: no redis-server binary on PATH.');
}
