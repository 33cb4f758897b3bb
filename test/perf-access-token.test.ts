import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { AppError } from '../contract/errors.js';
import { JWT_AUDIENCE, JWT_ISSUER, signAccessToken, verifyAccessToken } from '../server/auth/access-token.js';

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const at = (seconds: number): Date => new Date(T0 + seconds * 1000);
const subject = { userId: 'user-1', familyId: 'family-1', tokenVersion: 3 };

async function expectInvalid(promise: Promise<unknown>): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe('INVALID_TOKEN');
}

describe('access tokens verified before (remembered claims)', () => {
  it('are refused exactly when exp passes (5 s tolerance), also when verified at that clock before', async () => {
    const secret = randomBytes(32);
    const { token, expiresIn } = await signAccessToken(secret, subject, at(0));
    const first = await verifyAccessToken(secret, token, at(0));
    expect(first).toMatchObject({ sub: 'user-1', sid: 'family-1', ver: 3 });
    expect(await verifyAccessToken(secret, token, at(expiresIn + 4))).toEqual(first);
    await expectInvalid(verifyAccessToken(secret, token, at(expiresIn + 5)));
    // The clock going back makes it valid again, as jose would say.
    expect(await verifyAccessToken(secret, token, at(1))).toEqual(first);
    await expectInvalid(verifyAccessToken(secret, token, at(expiresIn + 60)));
  });

  it('are refused before nbf on every call, not only the first', async () => {
    const secret = randomBytes(32);
    const iat = Math.floor(T0 / 1000);
    const token = await new SignJWT({ sid: 'family-1', ver: 0 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(JWT_ISSUER)
      .setAudience(JWT_AUDIENCE)
      .setSubject('user-1')
      .setJti('jti-1')
      .setIssuedAt(iat)
      .setNotBefore(iat + 100)
      .setExpirationTime(iat + 900)
      .sign(secret);
    await expectInvalid(verifyAccessToken(secret, token, at(0)));
    expect(await verifyAccessToken(secret, token, at(100))).toMatchObject({ sub: 'user-1' });
    await expectInvalid(verifyAccessToken(secret, token, at(0)));
    expect(await verifyAccessToken(secret, token, at(96))).toMatchObject({ sub: 'user-1' });
  });

  it('do not carry over to another secret', async () => {
    const secret = randomBytes(32);
    const { token } = await signAccessToken(secret, subject, at(0));
    await verifyAccessToken(secret, token, at(0));
    await expectInvalid(verifyAccessToken(randomBytes(32), token, at(0)));
  });

  it('do not vouch for a copy with a flipped signature bit', async () => {
    const secret = randomBytes(32);
    const { token } = await signAccessToken(secret, subject, at(0));
    await verifyAccessToken(secret, token, at(0));
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const sig = Buffer.from(signature, 'base64url');
    sig[0] = sig[0]! ^ 0x01;
    await expectInvalid(
      verifyAccessToken(secret, `${header}.${payload}.${sig.toString('base64url')}`, at(0)),
    );
  });

  it('are returned frozen, so no caller can change what the next request sees', async () => {
    const secret = randomBytes(32);
    const { token } = await signAccessToken(secret, subject, at(0));
    const claims = await verifyAccessToken(secret, token, at(0));
    expect(Object.isFrozen(claims)).toBe(true);
    expect(await verifyAccessToken(secret, token, at(1))).toBe(claims);
  });
});
