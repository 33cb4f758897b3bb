/**
 * Authentication: `Authorization: Bearer <token>` where the token is either an access
 * JWT (a login session: all scopes) or a personal API token (`aio_…`, its scopes).
 * Sets `req.auth`. Every request re-checks the user, the token version (password
 * change) and the session family (logout, refresh reuse), so revocation is immediate.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AppError } from '../../contract/errors.js';
import type { TokenScope, User } from '../../core/ports/metadata-store.js';
import { verifyAccessToken } from '../auth/access-token.js';
import { API_TOKEN_PREFIX, hashSecret } from '../auth/secrets.js';
import type { AppDeps } from '../deps.js';

export interface AuthContext {
  user: User;
  kind: 'session' | 'token';
  scopes: ReadonlySet<TokenScope>;
  /** Session family of an access token; API token id for tokens. */
  sessionId: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    auth?: AuthContext;
  }
}

const ALL_SCOPES: ReadonlySet<TokenScope> = new Set<TokenScope>(['read', 'write', 'share']);

export function bearerToken(req: Pick<IncomingMessage, 'headers'>): string | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]{10,4096})$/.exec(header.trim());
  return match?.[1] ?? null;
}

export async function resolveAuth(deps: AppDeps, token: string): Promise<AuthContext> {
  const now = deps.clock.now();
  if (token.startsWith(API_TOKEN_PREFIX)) {
    const row = await deps.metadata.getApiTokenByHash(hashSecret(token));
    if (!row || row.revokedAt || (row.expiresAt && row.expiresAt <= now)) throw new AppError('INVALID_TOKEN');
    const user = await deps.metadata.getUserById(row.userId);
    if (!user) throw new AppError('INVALID_TOKEN');
    // Last-used time is informative; a failure to record it must not fail the request.
    deps.metadata.touchApiToken(row.id, now).catch(() => undefined);
    return { user, kind: 'token', scopes: new Set(row.scopes), sessionId: row.id };
  }
  const claims = await verifyAccessToken(deps.jwtSecret, token, now);
  const user = await deps.metadata.getUserById(claims.sub);
  if (!user || user.tokenVersion !== claims.ver) throw new AppError('INVALID_TOKEN');
  if (!(await deps.metadata.isSessionFamilyActive(claims.sid, now))) throw new AppError('INVALID_TOKEN');
  return { user, kind: 'session', scopes: ALL_SCOPES, sessionId: claims.sid };
}

/** Requires a valid token; 401 `UNAUTHENTICATED` / `INVALID_TOKEN` otherwise. */
export function authenticate(deps: AppDeps): RequestHandler {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const token = bearerToken(req);
    if (!token) throw new AppError('UNAUTHENTICATED');
    req.auth = await resolveAuth(deps, token);
    next();
  };
}

/** Requires the scope on top of `authenticate` (403 `INSUFFICIENT_SCOPE`). */
export function requireScope(scope: TokenScope): RequestHandler {
  return (req, _res, next) => {
    if (!req.auth) throw new AppError('UNAUTHENTICATED');
    if (!req.auth.scopes.has(scope)) throw new AppError('INSUFFICIENT_SCOPE');
    next();
  };
}

/**
 * Requires a login session on top of `authenticate`: personal API tokens get 403
 * `FORBIDDEN` (they cannot mint tokens or change the password).
 */
export function requireSession(): RequestHandler {
  return (req, _res, next) => {
    if (!req.auth) throw new AppError('UNAUTHENTICATED');
    if (req.auth.kind !== 'session')
      throw new AppError('FORBIDDEN', 'This action needs a login session, not an API token.');
    next();
  };
}

/** The authenticated context; for handlers behind `authenticate`. */
export function authOf(req: Request): AuthContext {
  if (!req.auth) throw new AppError('UNAUTHENTICATED');
  return req.auth;
}
