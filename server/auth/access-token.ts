/**
 * Access tokens: short-lived JWTs, HS256 only (the algorithm is pinned on verify, so
 * `alg: none` and RS/HS confusion are refused), with issuer, audience, expiry, subject,
 * id, the login session family (`sid`) and the user's token version (`ver`).
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { AppError } from '../../contract/errors.js';

export const JWT_ALG = 'HS256';
export const JWT_ISSUER = 'aio-storage';
export const JWT_AUDIENCE = 'aio-storage-api';
export const ACCESS_TOKEN_TTL_S = 15 * 60;

export interface AccessClaims {
  /** User id. */
  sub: string;
  /** Refresh-session family (one login). */
  sid: string;
  /** User's token version at issue time. */
  ver: number;
  jti: string;
  iat: number;
  exp: number;
}

export async function signAccessToken(
  secret: Uint8Array,
  subject: { userId: string; familyId: string; tokenVersion: number },
  now: Date,
): Promise<{ token: string; expiresIn: number }> {
  const iat = Math.floor(now.getTime() / 1000);
  const token = await new SignJWT({ sid: subject.familyId, ver: subject.tokenVersion })
    .setProtectedHeader({ alg: JWT_ALG, typ: 'JWT' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setSubject(subject.userId)
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + ACCESS_TOKEN_TTL_S)
    .sign(secret);
  return { token, expiresIn: ACCESS_TOKEN_TTL_S };
}

/** Verifies signature, algorithm, issuer, audience, expiry and required claims. Throws `INVALID_TOKEN`. */
export async function verifyAccessToken(secret: Uint8Array, token: string, now: Date): Promise<AccessClaims> {
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: [JWT_ALG],
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      currentDate: now,
      clockTolerance: 5,
    });
    const { sub, sid, ver, jti, iat, exp } = payload;
    if (
      typeof sub !== 'string' ||
      typeof sid !== 'string' ||
      typeof ver !== 'number' ||
      typeof jti !== 'string' ||
      typeof iat !== 'number' ||
      typeof exp !== 'number'
    ) {
      throw new AppError('INVALID_TOKEN');
    }
    return { sub, sid, ver, jti, iat, exp };
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof joseErrors.JOSEError || err instanceof TypeError) {
      throw new AppError('INVALID_TOKEN', undefined, { cause: err });
    }
    throw err;
  }
}
