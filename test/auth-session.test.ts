import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
let counter = 0;

function freshEmail(): string {
  counter += 1;
  return `person${counter}@example.test`;
}

async function registerAndLogin(password = 'correct horse battery') {
  const email = freshEmail();
  await request(t.app).post('/api/v1/auth/register').send({ email, password }).expect(201);
  const res = await request(t.app).post('/api/v1/auth/login').send({ email, password }).expect(200);
  const body = res.body as { accessToken: string; refreshToken: string; user: { id: string } };
  return { email, password, ...body, bearer: { Authorization: `Bearer ${body.accessToken}` } };
}

beforeAll(async () => {
  t = await createTestApp({ env: { AIO_RATE_LIMIT_LOGIN_IP: '10000', AIO_RATE_LIMIT_REGISTER: '10000' } });
});
afterAll(async () => {
  await t.close();
});

describe('registration and login', () => {
  it('registers with a trimmed, lower-cased email and logs in with any casing of it', async () => {
    const res = await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email: '  Mixed.Case@Example.TEST ', password: 'long enough pw', name: 'Mixed' })
      .expect(201);
    expect(res.body).toEqual({ status: 'registered' });

    const login = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: 'MIXED.case@example.test', password: 'long enough pw' })
      .expect(200);
    expect(login.body).toMatchObject({
      expiresIn: 900,
      user: { email: 'mixed.case@example.test', name: 'Mixed' },
    });
    expect(login.body.refreshToken).toMatch(/^aior_[A-Za-z0-9_-]{43}$/);
    expect(login.body.accessToken.split('.')).toHaveLength(3);
  });

  it('gives a new user the default quota and reports it on GET /auth/me', async () => {
    const s = await registerAndLogin();
    const me = await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(200);
    expect(me.body).toEqual({
      id: s.user.id,
      email: s.email,
      name: null,
      storageUsed: 0,
      storageQuota: t.deps.config.defaultQuota,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it('stores a bcrypt hash of the configured cost, never the password', async () => {
    const s = await registerAndLogin('a password to hash');
    const user = await t.deps.metadata.getUserByEmail(s.email);
    expect(user?.passwordHash).toMatch(/^\$2[aby]\$04\$/);
    expect(user?.passwordHash).not.toContain('a password to hash');
  });

  it('rejects an invalid email and a short password with 400 VALIDATION_FAILED', async () => {
    for (const body of [
      { email: 'not-an-email', password: 'long enough pw' },
      { email: freshEmail(), password: 'short' },
      { email: freshEmail() },
    ]) {
      const res = await request(t.app).post('/api/v1/auth/register').send(body).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
  });
});

describe('the 72-byte password rule', () => {
  it('accepts a password of exactly 72 bytes made of multibyte characters and logs in with it', async () => {
    const password = 'é'.repeat(36); // 36 × 2 bytes
    expect(Buffer.byteLength(password)).toBe(72);
    const email = freshEmail();
    await request(t.app).post('/api/v1/auth/register').send({ email, password }).expect(201);
    await request(t.app).post('/api/v1/auth/login').send({ email, password }).expect(200);
  });

  it('refuses 73 bytes with 400 PASSWORD_TOO_LONG and a message about bcrypt', async () => {
    const password = `${'é'.repeat(36)}x`;
    const res = await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email: freshEmail(), password })
      .expect(400);
    expect(res.body.error.code).toBe('PASSWORD_TOO_LONG');
    expect(res.body.error.message).toMatch(/72 bytes.*bcrypt/);
  });

  it('does not let a login with extra bytes past 72 match the truncated hash', async () => {
    const password = 'p'.repeat(72);
    const email = freshEmail();
    await request(t.app).post('/api/v1/auth/register').send({ email, password }).expect(201);
    const res = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email, password: `${password}extra` });
    expect(res.status).toBe(401);
  });
});

describe('strict bodies', () => {
  it.each([
    ['role', { role: 'admin' }],
    ['isAdmin', { isAdmin: true }],
    ['storageQuota', { storageQuota: 1e15 }],
  ])('rejects registration with an extra %s field', async (_field, extra) => {
    const email = freshEmail();
    const res = await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email, password: 'long enough pw', ...extra })
      .expect(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(await t.deps.metadata.getUserByEmail(email)).toBeNull();
  });

  it('rejects operator objects in login and register bodies with 400', async () => {
    const login = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: { $ne: null }, password: { $ne: null } })
      .expect(400);
    expect(login.body.error.code).toBe('VALIDATION_FAILED');
    await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email: { $gt: '' }, password: 'long enough pw' })
      .expect(400);
  });

  it('rejects extra fields in login, refresh, logout and PATCH /auth/me', async () => {
    const s = await registerAndLogin();
    await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: s.email, password: s.password, remember: true })
      .expect(400);
    await request(t.app)
      .post('/api/v1/auth/refresh')
      .send({ refreshToken: s.refreshToken, userId: 'x' })
      .expect(400);
    await request(t.app).post('/api/v1/auth/logout').set(s.bearer).send({ everywhere: true }).expect(400);
    await request(t.app)
      .patch('/api/v1/auth/me')
      .set(s.bearer)
      .send({ name: 'n', storageQuota: 1 })
      .expect(400);
    const me = await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(200);
    expect(me.body.storageQuota).toBe(t.deps.config.defaultQuota);
  });
});

describe('no user enumeration', () => {
  it('answers an unknown email and a wrong password with byte-identical 401 bodies', async () => {
    const s = await registerAndLogin();
    const unknown = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: 'nobody-here@example.test', password: 'whatever pw' });
    const wrong = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: s.email, password: 'whatever pw' });
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(unknown.text).toBe(wrong.text);
    expect(JSON.parse(wrong.text)).toEqual({
      error: { code: 'INVALID_CREDENTIALS', message: 'The email or password is wrong.' },
    });
  });

  it('answers a duplicate registration exactly like a new one and keeps the original password', async () => {
    const email = freshEmail();
    const first = await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email, password: 'original pw 1' });
    const second = await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email, password: 'attacker pw 2' });
    expect(second.status).toBe(first.status);
    expect(second.text).toBe(first.text);
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    await request(t.app).post('/api/v1/auth/login').send({ email, password: 'original pw 1' }).expect(200);
    await request(t.app).post('/api/v1/auth/login').send({ email, password: 'attacker pw 2' }).expect(401);

    const user = await t.deps.metadata.getUserByEmail(email);
    const audit = await t.deps.metadata.listAudit(user!.id, { limit: 10 });
    expect(audit.items.map((e) => e.action)).toContain('auth.register_duplicate');
  });

  it('takes a similar time for an unknown email as for a wrong password', async () => {
    const slow = await createTestApp({
      env: { AIO_BCRYPT_COST: '10', AIO_RATE_LIMIT_LOGIN: '1000', AIO_RATE_LIMIT_LOGIN_IP: '1000' },
    });
    try {
      const email = 'timed@example.test';
      await request(slow.app)
        .post('/api/v1/auth/register')
        .send({ email, password: 'timed password' })
        .expect(201);
      const time = async (body: object) => {
        const started = performance.now();
        await request(slow.app).post('/api/v1/auth/login').send(body).expect(401);
        return performance.now() - started;
      };
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const unknown: number[] = [];
      const wrong: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        unknown.push(await time({ email: `ghost${i}@example.test`, password: 'wrong password' }));
        wrong.push(await time({ email, password: 'wrong password' }));
      }
      // Without the dummy comparison an unknown email would answer in well under a millisecond.
      expect(median(unknown)).toBeGreaterThan(median(wrong) * 0.4);
      expect(median(unknown)).toBeLessThan(median(wrong) * 2.5);
    } finally {
      await slow.close();
    }
  });
});

describe('refresh tokens', () => {
  it('rotates the refresh token on every use; the new pair works', async () => {
    const s = await registerAndLogin();
    const res = await request(t.app)
      .post('/api/v1/auth/refresh')
      .send({ refreshToken: s.refreshToken })
      .expect(200);
    expect(res.body.refreshToken).not.toBe(s.refreshToken);
    expect(res.body.user.id).toBe(s.user.id);
    await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${res.body.accessToken}`)
      .expect(200);
    await request(t.app)
      .post('/api/v1/auth/refresh')
      .send({ refreshToken: res.body.refreshToken })
      .expect(200);
  });

  it('revokes the whole family when a rotated token is reused, and audits it', async () => {
    const s = await registerAndLogin();
    const next = await request(t.app)
      .post('/api/v1/auth/refresh')
      .send({ refreshToken: s.refreshToken })
      .expect(200);
    const reuse = await request(t.app).post('/api/v1/auth/refresh').send({ refreshToken: s.refreshToken });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.code).toBe('INVALID_TOKEN');

    // The newest refresh token and the newest access token of that family stop working.
    await request(t.app)
      .post('/api/v1/auth/refresh')
      .send({ refreshToken: next.body.refreshToken })
      .expect(401);
    await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${next.body.accessToken}`)
      .expect(401);

    const audit = await t.deps.metadata.listAudit(s.user.id, { limit: 10 });
    expect(audit.items[0]?.action).toBe('auth.refresh_reuse');
    expect(JSON.stringify(audit.items)).not.toContain(s.refreshToken);
  });

  it('refuses an unknown refresh token with 401 INVALID_TOKEN', async () => {
    const res = await request(t.app)
      .post('/api/v1/auth/refresh')
      .send({ refreshToken: 'aior_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })
      .expect(401);
    expect(res.body.error.code).toBe('INVALID_TOKEN');
  });

  it('leaves other sessions of the same user alive when one family is revoked', async () => {
    const s = await registerAndLogin();
    const other = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: s.email, password: s.password });
    await request(t.app).post('/api/v1/auth/logout').set(s.bearer).expect(204);
    await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${other.body.accessToken}`)
      .expect(200);
  });
});

describe('logout', () => {
  it('makes the access and refresh tokens of the session fail on the next request', async () => {
    const s = await registerAndLogin();
    await request(t.app).post('/api/v1/auth/logout').set(s.bearer).expect(204);
    await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(401);
    await request(t.app).post('/api/v1/auth/refresh').send({ refreshToken: s.refreshToken }).expect(401);
  });

  it('logs out by refresh token without an access token', async () => {
    const s = await registerAndLogin();
    await request(t.app).post('/api/v1/auth/logout').send({ refreshToken: s.refreshToken }).expect(204);
    await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(401);
    const audit = await t.deps.metadata.listAudit(s.user.id, { limit: 1 });
    expect(audit.items[0]?.action).toBe('auth.logout');
  });

  it('needs an access token or a refresh token', async () => {
    const res = await request(t.app).post('/api/v1/auth/logout').expect(401);
    expect(res.body.error.code).toBe('UNAUTHENTICATED');
  });
});

describe('PATCH /auth/me', () => {
  it('changes the name', async () => {
    const s = await registerAndLogin();
    const res = await request(t.app)
      .patch('/api/v1/auth/me')
      .set(s.bearer)
      .send({ name: '  Ada  ' })
      .expect(200);
    expect(res.body.user.name).toBe('Ada');
    const me = await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(200);
    expect(me.body.name).toBe('Ada');
  });

  it('changes the password, kills every old token and returns a fresh working pair', async () => {
    const s = await registerAndLogin('old password 1');
    const second = await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: s.email, password: s.password });
    const res = await request(t.app)
      .patch('/api/v1/auth/me')
      .set(s.bearer)
      .send({ currentPassword: 'old password 1', newPassword: 'new password 2' })
      .expect(200);
    expect(res.body.refreshToken).toMatch(/^aior_/);

    await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(401);
    await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${second.body.accessToken}`)
      .expect(401);
    await request(t.app).post('/api/v1/auth/refresh').send({ refreshToken: s.refreshToken }).expect(401);
    await request(t.app)
      .post('/api/v1/auth/refresh')
      .send({ refreshToken: second.body.refreshToken })
      .expect(401);

    await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${res.body.accessToken}`)
      .expect(200);
    await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: s.email, password: 'old password 1' })
      .expect(401);
    await request(t.app)
      .post('/api/v1/auth/login')
      .send({ email: s.email, password: 'new password 2' })
      .expect(200);
    const audit = await t.deps.metadata.listAudit(s.user.id, { limit: 5 });
    expect(audit.items.map((e) => e.action)).toContain('auth.password_change');
  });

  it('refuses a wrong current password with 401 INVALID_CREDENTIALS, audits it and keeps the session', async () => {
    const s = await registerAndLogin();
    const res = await request(t.app)
      .patch('/api/v1/auth/me')
      .set(s.bearer)
      .send({ currentPassword: 'not my password', newPassword: 'new password 2' })
      .expect(401);
    expect(res.body.error.code).toBe('INVALID_CREDENTIALS');
    await request(t.app).get('/api/v1/auth/me').set(s.bearer).expect(200);
    const audit = await t.deps.metadata.listAudit(s.user.id, { limit: 1 });
    expect(audit.items[0]?.action).toBe('auth.password_change_failed');
  });

  it('needs currentPassword to set a new password', async () => {
    const s = await registerAndLogin();
    await request(t.app)
      .patch('/api/v1/auth/me')
      .set(s.bearer)
      .send({ newPassword: 'new password 2' })
      .expect(400);
  });
});
