/**
 * Rate limits over Redis: counters shared by two API instances, and a Redis that dies
 * under a running app. Uses its own throwaway `redis-server` (never the shared one on
 * 6379, which other suites use).
 */
import type { ChildProcess } from 'node:child_process';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, requireService, type TestApp } from './helpers/app.js';
import { freePort, hasRedisServer, killRedis, startRedis } from './helpers/redis-server.js';

async function timedLogin(t: TestApp, body: object): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const res = await request(t.app).post('/api/v1/auth/login').send(body);
  return { status: res.status, ms: performance.now() - started };
}

describe.runIf(Boolean(requireService('REDIS_URL')))('auth rate limits with Redis as the Cache', () => {
  let redis: ChildProcess;
  let first: TestApp;
  let second: TestApp;

  beforeAll(async () => {
    expect(hasRedisServer, 'redis-server must be installed').toBe(true);
    const port = await freePort();
    redis = await startRedis(port);
    const env = { REDIS_URL: `redis://127.0.0.1:${port}`, AIO_RATE_LIMIT_LOGIN: '4' };
    first = await createTestApp({ env });
    // A second API instance over the same database and the same Redis.
    second = await createTestApp({ env, dataDir: first.dataDir });
    await request(first.app)
      .post('/api/v1/auth/register')
      .send({ email: 'shared@example.test', password: 'shared password' })
      .expect(201);
  });

  afterAll(async () => {
    await killRedis(redis);
    await second?.close();
    await first?.close();
  });

  it('shares login counters between API instances through Redis', async () => {
    for (let i = 0; i < 2; i += 1) {
      await request(first.app)
        .post('/api/v1/auth/login')
        .send({ email: 'shared@example.test', password: 'bad pw 1' })
        .expect(401);
      await request(second.app)
        .post('/api/v1/auth/login')
        .send({ email: 'shared@example.test', password: 'bad pw 2' })
        .expect(401);
    }
    const res = await request(second.app)
      .post('/api/v1/auth/login')
      .send({ email: 'shared@example.test', password: 'shared password' })
      .expect(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    await request(first.app).get('/api/v1/health/ready').expect(200);
  });

  it('keeps answering logins within a second after Redis dies, limited per process, and reports the cache down', async () => {
    await killRedis(redis);

    const good = await timedLogin(first, {
      email: 'fresh-after-outage@example.test',
      password: 'no such user',
    });
    expect(good.ms).toBeLessThan(1000);
    expect([401, 429, 503]).toContain(good.status);

    // The fallback limiter counts in the process: 4 more attempts pass, the 5th is refused.
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const attempt = await timedLogin(first, { email: 'fallback@example.test', password: 'bad password' });
      expect(attempt.ms).toBeLessThan(1000);
      statuses.push(attempt.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);

    const ok = await timedLogin(second, { email: 'shared@example.test', password: 'shared password' });
    expect(ok.ms).toBeLessThan(1000);
    // The Redis window had refused it; the per-process fallback starts afresh.
    expect(ok.status).toBe(200);

    const ready = await request(first.app).get('/api/v1/health/ready').expect(503);
    expect(ready.body.components.cache.status).toBe('down');
    expect(ready.body.components.metadata.status).toBe('up');
  });
});
