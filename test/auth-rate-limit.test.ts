import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/domain/clock.js';
import { createTestApp, type TestApp } from './helpers/app.js';

const WINDOW_MS = 15 * 60_000;
let apps: TestApp[] = [];

async function app(env: Record<string, string> = {}, clock = new ManualClock()): Promise<TestApp> {
  const t = await createTestApp({ clock, env });
  apps.push(t);
  return t;
}

afterEach(async () => {
  await Promise.all(apps.map((t) => t.close()));
  apps = [];
});

async function register(t: TestApp, email: string, password = 'limit password') {
  await request(t.app).post('/api/v1/auth/register').send({ email, password }).expect(201);
}

describe('login rate limits', () => {
  it('answers 429 with Retry-After after 10 bad logins for one email and recovers after the window', async () => {
    const clock = new ManualClock();
    const t = await app({}, clock);
    await register(t, 'victim@example.test');
    const statuses: number[] = [];
    let limited: request.Response | undefined;
    for (let i = 0; i < 20; i += 1) {
      const res = await request(t.app)
        .post('/api/v1/auth/login')
        .send({ email: 'victim@example.test', password: `guess ${i}` });
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses).toEqual([...Array<number>(10).fill(401), ...Array<number>(10).fill(429)]);
    expect(limited?.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited?.headers['retry-after'])).toBe(WINDOW_MS / 1000);

    // Even the right password is refused while the window lasts …
    await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: 'victim@example.test', password: 'limit password' })
      .expect(429);
    clock.advance(WINDOW_MS - 60_000);
    const later = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: 'victim@example.test', password: 'limit password' })
      .expect(429);
    expect(Number(later.headers['retry-after'])).toBe(60);

    // … and accepted once it is over.
    clock.advance(60_000);
    await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: 'victim@example.test', password: 'limit password' })
      .expect(200);
  });

  it('limits one email per ip without locking out other emails', async () => {
    const t = await app();
    await register(t, 'other@example.test');
    for (let i = 0; i < 11; i += 1) {
      await request(t.app)
        .post('/api/v1/auth/login')
        .send({ email: 'target@example.test', password: 'guess pw' });
    }
    await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: 'other@example.test', password: 'limit password' })
      .expect(200);
  });

  it('limits logins per ip across emails', async () => {
    const t = await app({ AIO_RATE_LIMIT_LOGIN_IP: '5' });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) {
      const res = await request(t.app)
        .post('/api/v1/auth/login')
        .send({ email: `spray${i}@example.test`, password: 'pw pw pw' });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
  });

  it('limits registrations per ip', async () => {
    const clock = new ManualClock();
    const t = await app({ AIO_RATE_LIMIT_REGISTER: '3' }, clock);
    for (let i = 0; i < 3; i += 1) await register(t, `new${i}@example.test`);
    const res = await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email: 'new3@example.test', password: 'limit password' })
      .expect(429);
    expect(res.headers['retry-after']).toBe(String(WINDOW_MS / 1000));
    expect(await t.deps.metadata.getUserByEmail('new3@example.test')).toBeNull();
    clock.advance(WINDOW_MS);
    await register(t, 'new3@example.test');
  });

  it('keeps limiting logins in the process when the Cache fails', async () => {
    const t = await app({ AIO_RATE_LIMIT_LOGIN: '3' });
    await register(t, 'cacheless@example.test');
    await t.deps.cache.close(); // every Cache call now rejects with UnavailableError
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const res = await request(t.app)
        .post('/api/v1/auth/login')
        .send({ email: 'cacheless@example.test', password: 'bad password' });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });
});

describe('the general API limit', () => {
  async function loggedIn(t: TestApp) {
    await register(t, 'busy@example.test');
    const res = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: 'busy@example.test', password: 'limit password' })
      .expect(200);
    return { Authorization: `Bearer ${res.body.accessToken}` };
  }

  it('limits requests per user per window and recovers after it', async () => {
    const clock = new ManualClock();
    const t = await app({ AIO_RATE_LIMIT_API: '5', AIO_RATE_LIMIT_API_WINDOW_MS: '60000' }, clock);
    const auth = await loggedIn(t);
    for (let i = 0; i < 5; i += 1) await request(t.app).get('/api/v1/auth/me').set(auth).expect(200);
    const res = await request(t.app).get('/api/v1/tokens').set(auth).expect(429);
    expect(res.body.error.code).toBe('RATE_LIMITED');
    expect(res.headers['retry-after']).toBe('60');
    clock.advance(60_000);
    await request(t.app).get('/api/v1/auth/me').set(auth).expect(200);
  });

  it('fails open when the Cache fails', async () => {
    const t = await app({ AIO_RATE_LIMIT_API: '2' });
    const auth = await loggedIn(t);
    await t.deps.cache.close();
    for (let i = 0; i < 5; i += 1) await request(t.app).get('/api/v1/auth/me').set(auth).expect(200);
  });
});
