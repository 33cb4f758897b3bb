/**
 * Login sessions: an access JWT (15 min) plus an opaque refresh token (`aior_…`, 256
 * bits, stored as sha256, 30 days) in a session family. Each refresh rotates the
 * refresh token within its family; presenting a token that was already rotated
 * revokes the whole family (the store does that atomically).
 */
import { AppError } from '../../contract/errors.js';
import type { RefreshSession, User } from '../../core/ports/metadata-store.js';
import type { ClientInfo } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { signAccessToken } from './access-token.js';
import { REFRESH_TOKEN_PREFIX, hashSecret, newSecret } from './secrets.js';

export const REFRESH_TOKEN_TTL_MS = 30 * 86_400_000;

export interface SessionTokens {
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

type SessionDeps = Pick<AppDeps, 'metadata' | 'clock' | 'jwtSecret'>;

/** Starts a new session family for `user` (a login). */
export async function startSession(
  deps: SessionDeps,
  user: User,
  client: ClientInfo,
): Promise<SessionTokens> {
  const now = deps.clock.now();
  const refreshToken = newSecret(REFRESH_TOKEN_PREFIX);
  const session = await deps.metadata.createRefreshSession({
    userId: user.id,
    tokenHash: hashSecret(refreshToken),
    expiresAt: new Date(now.getTime() + REFRESH_TOKEN_TTL_MS),
    ip: client.ip,
    userAgent: client.userAgent,
  });
  const access = await signAccessToken(
    deps.jwtSecret,
    { userId: user.id, familyId: session.familyId, tokenVersion: user.tokenVersion },
    now,
  );
  return { accessToken: access.token, refreshToken, expiresIn: access.expiresIn };
}

export type RefreshOutcome =
  | { kind: 'rotated'; user: User; tokens: SessionTokens }
  /** The token had been rotated before: its family is revoked now. */
  | { kind: 'reused'; previous: RefreshSession };

/**
 * Exchanges a refresh token for a new pair in the same family.
 * Throws `INVALID_TOKEN` for an unknown, expired or revoked token (or a deleted user);
 * returns `reused` (and the family is revoked) for a token that was already rotated.
 */
export async function rotateSession(deps: SessionDeps, refreshToken: string): Promise<RefreshOutcome> {
  const now = deps.clock.now();
  const nextToken = newSecret(REFRESH_TOKEN_PREFIX);
  const result = await deps.metadata.rotateRefreshSession(
    hashSecret(refreshToken),
    { tokenHash: hashSecret(nextToken), expiresAt: new Date(now.getTime() + REFRESH_TOKEN_TTL_MS) },
    now,
  );
  if (result.kind === 'invalid') throw new AppError('INVALID_TOKEN');
  if (result.kind === 'reused') return { kind: 'reused', previous: result.previous };
  const user = await deps.metadata.getUserById(result.next.userId);
  if (!user) throw new AppError('INVALID_TOKEN');
  const access = await signAccessToken(
    deps.jwtSecret,
    { userId: user.id, familyId: result.next.familyId, tokenVersion: user.tokenVersion },
    now,
  );
  return {
    kind: 'rotated',
    user,
    tokens: { accessToken: access.token, refreshToken: nextToken, expiresIn: access.expiresIn },
  };
}

/** Revokes the family of `refreshToken` (any member, rotated or not). Returns it, or null when unknown. */
export async function revokeByRefreshToken(
  deps: SessionDeps,
  refreshToken: string,
): Promise<RefreshSession | null> {
  const session = await deps.metadata.getRefreshSessionByHash(hashSecret(refreshToken));
  if (!session) return null;
  await deps.metadata.revokeSessionFamily(session.familyId, deps.clock.now());
  return session;
}
