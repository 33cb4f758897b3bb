import { randomUUID } from 'node:crypto';
import { SignJWT, decodeJwt, type JWTPayload } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/domain/clock.js';
import { JWT_AUDIENCE, JWT_ISSUER } from '../server/auth/access-token.js';
import { createTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
const clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0));
let session: { accessToken: string; claims: JWTPayload };

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs `claims` as the server would, unless told otherwise. */
async function sign(
  claims: JWTPayload,
  options: { secret?: Uint8Array; alg?: string; omit?: (keyof JWTPayload)[] } = {},
): Promise<string> {
  const payload: JWTPayload = { ...claims };
  for (const key of options.omit ?? []) delete payload[key];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' })
    .sign(options.secret ?? t.deps.jwtSecret);
}

async function status(token: string): Promise<number> {
  const res = await request(t.app).get('/api/v1/auth/me').set('Authorization', `Bearer ${token}`);
  if (res.status === 401) expect(['INVALID_TOKEN', 'UNAUTHENTICATED']).toContain(res.body.error.code);
  return res.status;
}

beforeAll(async () => {
  t = await createTestApp({ clock });
  const email = 'jwt@example.test';
  await request(t.app).post('/api/v1/auth/register').send({ email, password: 'jwt password' }).expect(201);
  const login = await request(t.app)
    .post('/api/v1/auth/login')
    .send({ email, password: 'jwt password' })
    .expect(200);
  session = { accessToken: login.body.accessToken, claims: decodeJwt(login.body.accessToken) };
});
afterAll(async () => {
  await t.close();
});

describe('access token verification', () => {
  it('accepts the issued token and a re-signed copy of its claims (the crafting below is sound)', async () => {
    expect(await status(session.accessToken)).toBe(200);
    expect(await status(await sign(session.claims))).toBe(200);
  });

  it('refuses alg none', async () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(session.claims)}.`;
    expect(await status(unsigned)).toBe(401);
    const unsignedUpper = `${b64({ alg: 'None', typ: 'JWT' })}.${b64(session.claims)}.`;
    expect(await status(unsignedUpper)).toBe(401);
  });

  it('refuses an HMAC signed with the wrong key', async () => {
    const wrongKey = new TextEncoder().encode('another-secret-another-secret-0123456789');
    expect(await status(await sign(session.claims, { secret: wrongKey }))).toBe(401);
  });

  it('refuses another HMAC algorithm with the right key', async () => {
    expect(await status(await sign(session.claims, { alg: 'HS512' }))).toBe(401);
  });

  it('refuses a token without exp', async () => {
    expect(await status(await sign(session.claims, { omit: ['exp'] }))).toBe(401);
  });

  it('refuses a wrong issuer or audience', async () => {
    expect(await status(await sign({ ...session.claims, iss: 'someone-else' }))).toBe(401);
    expect(await status(await sign({ ...session.claims, aud: 'another-api' }))).toBe(401);
    expect(await status(await sign({ ...session.claims, iss: undefined }))).toBe(401);
    expect(session.claims.iss).toBe(JWT_ISSUER);
    expect(session.claims.aud).toBe(JWT_AUDIENCE);
  });

  it('refuses a token whose user token version is stale', async () => {
    const ver = session.claims.ver as number;
    expect(await status(await sign({ ...session.claims, ver: ver + 1, jti: randomUUID() }))).toBe(401);
  });

  it('refuses a token with one flipped bit in the signature or the payload', async () => {
    const [header, payload, signature] = session.accessToken.split('.') as [string, string, string];
    const sig = Buffer.from(signature, 'base64url');
    sig[5] = sig[5]! ^ 0x01;
    expect(await status(`${header}.${payload}.${sig.toString('base64url')}`)).toBe(401);

    const body = Buffer.from(payload, 'base64url');
    const at = body.indexOf('"sub"') + 8; // inside the user id
    body[at] = body[at]! ^ 0x01;
    expect(await status(`${header}.${body.toString('base64url')}.${signature}`)).toBe(401);
  });

  it('refuses an expired token (after 15 minutes on the clock)', async () => {
    const token = await sign(session.claims);
    expect(await status(token)).toBe(200);
    clock.advance(15 * 60_000 + 10_000);
    try {
      expect(await status(token)).toBe(401);
      expect(await status(session.accessToken)).toBe(401);
    } finally {
      clock.advance(-(15 * 60_000 + 10_000));
    }
  });

  it('answers 401 UNAUTHENTICATED without a token and for a malformed header', async () => {
    const none = await request(t.app).get('/api/v1/auth/me').expect(401);
    expect(none.body.error.code).toBe('UNAUTHENTICATED');
    await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Basic ${session.accessToken}`)
      .expect(401);
  });
});
