/**
 * Access tokens: short-lived JWTs, HS256 only (the algorithm is pinned on verify, so
 * `alg: none` and RS/HS confusion are refused), with issuer, audience, expiry, subject,
 * id, the login session family (`sid`) and the user's token version (`ver`).
 *
 * Per secret, the HMAC key is imported once, and the claims of tokens that passed full
 * verification are remembered by their exact text: a client sends the same token on
 * every request for its lifetime, and the signature, algorithm, issuer and audience of
 * the same bytes cannot change, so only the time checks (`exp`, `nbf`) are repeated on a
 * repeat. Revocation is not decided here: the caller checks the user, token version and
 * session on every request.
 */
import { randomUUID, webcrypto } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { AppError } from '../../contract/errors.js';

export const JWT_ALG = 'HS256';
export const JWT_ISSUER = 'aio-storage';
export const JWT_AUDIENCE = 'aio-storage-api';
export const ACCESS_TOKEN_TTL_S = 15 * 60;
/** Seconds of clock skew allowed on `exp` and `nbf`. */
const CLOCK_TOLERANCE_S = 5;
/** Verified tokens remembered per secret; beyond it the oldest is forgotten first. */
const MAX_VERIFIED_TOKENS = 10_000;

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

interface VerifiedToken {
  claims: Readonly<AccessClaims>;
  nbf: number | undefined;
}

interface SecretState {
  key: Promise<webcrypto.CryptoKey>;
  verified: Map<string, VerifiedToken>;
}

/** Keyed by the secret's identity: deps hold one secret for the life of the app. */
const secretStates = new WeakMap<Uint8Array, SecretState>();

function stateOf(secret: Uint8Array): SecretState {
  let state = secretStates.get(secret);
  if (state === undefined) {
    state = {
      key: webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [
        'sign',
        'verify',
      ]),
      verified: new Map(),
    };
    secretStates.set(secret, state);
  }
  return state;
}

/** The same time checks as jose's `jwtVerify` (`exp <= now - tolerance` and `nbf > now + tolerance` fail). */
function inTime(token: VerifiedToken, now: Date): boolean {
  const nowS = Math.floor(now.getTime() / 1000);
  if (token.claims.exp <= nowS - CLOCK_TOLERANCE_S) return false;
  return token.nbf === undefined || token.nbf <= nowS + CLOCK_TOLERANCE_S;
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
    .sign(await stateOf(secret).key);
  return { token, expiresIn: ACCESS_TOKEN_TTL_S };
}

/** Verifies signature, algorithm, issuer, audience, expiry and required claims. Throws `INVALID_TOKEN`. */
export async function verifyAccessToken(
  secret: Uint8Array,
  token: string,
  now: Date,
): Promise<Readonly<AccessClaims>> {
  const state = stateOf(secret);
  const known = state.verified.get(token);
  if (known !== undefined) {
    if (inTime(known, now)) return known.claims;
    // Expired (or not yet valid at this clock): full verification gives the error.
    state.verified.delete(token);
  }
  const claims = await verifyFully(state, token, now);
  if (state.verified.size >= MAX_VERIFIED_TOKENS) {
    const oldest = state.verified.keys().next();
    if (oldest.done !== true) state.verified.delete(oldest.value);
  }
  state.verified.set(token, claims);
  return claims.claims;
}

async function verifyFully(state: SecretState, token: string, now: Date): Promise<VerifiedToken> {
  try {
    const { payload } = await jwtVerify(token, await state.key, {
      algorithms: [JWT_ALG],
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      currentDate: now,
      clockTolerance: CLOCK_TOLERANCE_S,
    });
    const { sub, sid, ver, jti, iat, exp, nbf } = payload;
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
    return { claims: Object.freeze({ sub, sid, ver, jti, iat, exp }), nbf };
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof joseErrors.JOSEError || err instanceof TypeError) {
      throw new AppError('INVALID_TOKEN', undefined, { cause: err });
    }
    throw err;
  }
}
