import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../core/domain/clock.js';
import { createTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
const clock = new ManualClock(Date.UTC(2026, 4, 1));
let counter = 0;

async function registerAndLogin() {
  counter += 1;
  const email = `tokens${counter}@example.test`;
  const password = 'token test password';
  await request(t.app).post('/api/v1/auth/register').send({ email, password }).expect(201);
  const res = await request(t.app)
    .post('/api/v1/auth/login')
    .set('User-Agent', 'auth-tests/1.0')
    .send({ email, password })
    .expect(200);
  return {
    email,
    password,
    userId: res.body.user.id as string,
    bearer: { Authorization: `Bearer ${res.body.accessToken}` },
  };
}

const asToken = (token: string) => ({ Authorization: `Bearer ${token}` });

beforeAll(async () => {
  t = await createTestApp({ clock });
});
afterAll(async () => {
  await t.close();
});

describe('personal API tokens', () => {
  it('creates a token shown once, with all scopes and a 90-day expiry by default', async () => {
    const s = await registerAndLogin();
    const res = await request(t.app).post('/api/v1/tokens').set(s.bearer).send({ name: 'CI' }).expect(201);
    expect(res.body).toMatchObject({ name: 'CI', scopes: ['read', 'write', 'share'], lastUsedAt: null });
    expect(res.body.token).toMatch(/^aio_[A-Za-z0-9_-]{43}$/);
    expect(res.body.token.startsWith(res.body.prefix)).toBe(true);
    expect(res.body.expiresAt).toBe(new Date(clock.now().getTime() + 90 * 86_400_000).toISOString());

    const list = await request(t.app).get('/api/v1/tokens').set(s.bearer).expect(200);
    expect(list.body.items).toEqual([
      {
        id: res.body.id,
        name: 'CI',
        prefix: res.body.prefix,
        scopes: ['read', 'write', 'share'],
        createdAt: res.body.createdAt,
        expiresAt: res.body.expiresAt,
        lastUsedAt: null,
      },
    ]);
    expect(list.text).not.toContain(res.body.token);
  });

  it('accepts expiresIn as a duration, as seconds, or null for no expiry', async () => {
    const s = await registerAndLogin();
    const now = clock.now().getTime();
    const days = await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'a', expiresIn: '7d' });
    expect(days.body.expiresAt).toBe(new Date(now + 7 * 86_400_000).toISOString());
    const secs = await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'b', expiresIn: 3600 });
    expect(secs.body.expiresAt).toBe(new Date(now + 3_600_000).toISOString());
    const never = await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'c', expiresIn: null });
    expect(never.body.expiresAt).toBeNull();
    for (const expiresIn of ['soon', -5, '0d', 1.5, '99999w']) {
      await request(t.app).post('/api/v1/tokens').set(s.bearer).send({ name: 'd', expiresIn }).expect(400);
    }
  });

  it('rejects extra fields and unknown scopes', async () => {
    const s = await registerAndLogin();
    await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'x', userId: 'someone' })
      .expect(400);
    await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'x', scopes: ['admin'] })
      .expect(400);
  });

  it('lets a read-only token read but not write (403 INSUFFICIENT_SCOPE)', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'ro', scopes: ['read'] });
    const token = asToken(created.body.token);
    const me = await request(t.app).get('/api/v1/auth/me').set(token).expect(200);
    expect(me.body.email).toBe(s.email);
    const patch = await request(t.app).patch('/api/v1/auth/me').set(token).send({ name: 'nope' }).expect(403);
    expect(patch.body.error.code).toBe('INSUFFICIENT_SCOPE');
    await request(t.app).get('/api/v1/audit').set(token).expect(200);
  });

  it('lets a write token change the name but not the password', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'rw', scopes: ['write'] });
    const token = asToken(created.body.token);
    await request(t.app).patch('/api/v1/auth/me').set(token).send({ name: 'Via token' }).expect(200);
    const res = await request(t.app)
      .patch('/api/v1/auth/me')
      .set(token)
      .send({ currentPassword: s.password, newPassword: 'another password' })
      .expect(403);
    expect(res.body.error.code).toBe('FORBIDDEN');
  });

  it('does not let an API token mint, list or revoke tokens (403)', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app).post('/api/v1/tokens').set(s.bearer).send({ name: 'all' });
    const token = asToken(created.body.token);
    const mint = await request(t.app).post('/api/v1/tokens').set(token).send({ name: 'child' }).expect(403);
    expect(mint.body.error.code).toBe('FORBIDDEN');
    await request(t.app).get('/api/v1/tokens').set(token).expect(403);
    await request(t.app).delete(`/api/v1/tokens/${created.body.id}`).set(token).expect(403);
  });

  it('refuses an expired token with 401', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app)
      .post('/api/v1/tokens')
      .set(s.bearer)
      .send({ name: 'short', expiresIn: '1h' });
    const token = asToken(created.body.token);
    await request(t.app).get('/api/v1/auth/me').set(token).expect(200);
    clock.advance(3_600_000);
    const res = await request(t.app).get('/api/v1/auth/me').set(token).expect(401);
    expect(res.body.error.code).toBe('INVALID_TOKEN');
  });

  it('revokes a token: 204, then the token gets 401 and disappears from the list', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app).post('/api/v1/tokens').set(s.bearer).send({ name: 'gone' });
    await request(t.app).delete(`/api/v1/tokens/${created.body.id}`).set(s.bearer).expect(204);
    await request(t.app).get('/api/v1/auth/me').set(asToken(created.body.token)).expect(401);
    const list = await request(t.app).get('/api/v1/tokens').set(s.bearer).expect(200);
    expect(list.body.items).toEqual([]);
    await request(t.app).delete(`/api/v1/tokens/${created.body.id}`).set(s.bearer).expect(404);
  });

  it("answers 404 for another user's token and for an unknown id, leaving the token alive", async () => {
    const owner = await registerAndLogin();
    const other = await registerAndLogin();
    const created = await request(t.app).post('/api/v1/tokens').set(owner.bearer).send({ name: 'mine' });
    const res = await request(t.app)
      .delete(`/api/v1/tokens/${created.body.id}`)
      .set(other.bearer)
      .expect(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    await request(t.app).delete('/api/v1/tokens/does-not-exist').set(other.bearer).expect(404);
    await request(t.app).get('/api/v1/auth/me').set(asToken(created.body.token)).expect(200);
  });

  it('records the last-used time', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app).post('/api/v1/tokens').set(s.bearer).send({ name: 'used' });
    clock.advance(60_000);
    const usedAt = clock.now().toISOString();
    await request(t.app).get('/api/v1/auth/me').set(asToken(created.body.token)).expect(200);
    await vi.waitFor(async () => {
      const list = await request(t.app).get('/api/v1/tokens').set(s.bearer).expect(200);
      expect(list.body.items[0].lastUsedAt).toBe(usedAt);
    });
  });

  it('keeps API tokens working after a password change that ends every session', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app).post('/api/v1/tokens').set(s.bearer).send({ name: 'ci' });
    await request(t.app)
      .patch('/api/v1/auth/me')
      .set(s.bearer)
      .send({ currentPassword: s.password, newPassword: 'fresh password' })
      .expect(200);
    await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(401);
    await request(t.app).get('/api/v1/auth/me').set(asToken(created.body.token)).expect(200);
  });
});

describe('the audit log', () => {
  it('lists the caller’s own entries newest first, with ip and user agent and no secrets', async () => {
    const s = await registerAndLogin();
    const created = await request(t.app).post('/api/v1/tokens').set(s.bearer).send({ name: 'audited' });
    await request(t.app).delete(`/api/v1/tokens/${created.body.id}`).set(s.bearer).expect(204);
    await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: s.email, password: 'wrong password' })
      .expect(401);

    const res = await request(t.app).get('/api/v1/audit').set(s.bearer).expect(200);
    expect(res.body.items.map((e: { action: string }) => e.action)).toEqual([
      'auth.login_failed',
      'token.revoke',
      'token.create',
      'auth.login',
      'auth.register',
    ]);
    const login = res.body.items.find((e: { action: string }) => e.action === 'auth.login');
    expect(login.userAgent).toBe('auth-tests/1.0');
    expect(login.ip).toMatch(/127\.0\.0\.1|::1/);
    expect(res.text).not.toContain(created.body.token);
    expect(res.text).not.toContain(s.password);
    expect(res.body.nextCursor).toBeNull();

    const other = await registerAndLogin();
    const theirs = await request(t.app).get('/api/v1/audit').set(other.bearer).expect(200);
    expect(theirs.body.items.map((e: { action: string }) => e.action)).toEqual([
      'auth.login',
      'auth.register',
    ]);
  });

  it('pages with limit and cursor without gaps or repeats', async () => {
    const s = await registerAndLogin();
    for (let i = 0; i < 4; i += 1) {
      clock.advance(1000);
      await request(t.app)
        .post('/api/v1/tokens')
        .set(s.bearer)
        .send({ name: `t${i}` })
        .expect(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string> = { limit: '2', ...(cursor ? { cursor } : {}) };
      const res = await request(t.app).get('/api/v1/audit').query(query).set(s.bearer).expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((e: { id: string }) => e.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(6);
    expect(new Set(seen).size).toBe(6);
    await request(t.app).get('/api/v1/audit').query({ limit: '0' }).set(s.bearer).expect(400);
    await request(t.app).get('/api/v1/audit').query({ cursor: 'garbage' }).set(s.bearer).expect(400);
  });
});
