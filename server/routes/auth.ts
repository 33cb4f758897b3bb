/**
 * `/api/v1/auth`: register, login, refresh, logout, and the caller's own account
 * (`GET`/`PATCH /me`). Bodies are validated with the strict schemas of
 * `contract/schemas/auth.ts`.
 *
 * No user enumeration: an unknown email and a wrong password both answer 401
 * `INVALID_CREDENTIALS` with the same body after one bcrypt comparison each, and
 * registering a taken email answers exactly like a new registration (201
 * `{ "status": "registered" }`) after hashing the password all the same.
 */
import { Router, type Request } from 'express';
import { AppError, ConflictError } from '../../contract/errors.js';
import {
  PASSWORD_MAX_BYTES,
  loginBodySchema,
  logoutBodySchema,
  refreshBodySchema,
  registerBodySchema,
  updateMeBodySchema,
} from '../../contract/schemas/auth.js';
import type { User } from '../../core/ports/metadata-store.js';
import { parseInput } from '../auth/parse-input.js';
import { PasswordHasher } from '../auth/passwords.js';
import { revokeByRefreshToken, rotateSession, startSession } from '../auth/sessions.js';
import { userView } from '../auth/views.js';
import { audit, clientOf } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { authOf, authenticate, bearerToken, requireScope, resolveAuth } from '../middleware/authenticate.js';
import { RateLimiter, apiRateLimit, loginLimits, registerLimits } from '../middleware/rate-limit.js';

const REGISTERED = { status: 'registered' } as const;

function ipOf(req: Request): string {
  return req.ip ?? 'unknown';
}

export function authRoutes(deps: AppDeps): Router {
  const router = Router();
  const passwords = new PasswordHasher(deps.config.bcryptCost);
  passwords.warmUp();
  const limiter = new RateLimiter(deps.cache, deps.clock, { onCacheFailure: 'fallback' });
  const signedIn = [authenticate(deps), apiRateLimit(deps)];

  /**
   * Checks `password` against `user`'s hash with one bcrypt comparison whatever the
   * case (unknown user, or a password bcrypt would truncate: never a match).
   */
  async function passwordMatches(user: User | null, password: string): Promise<boolean> {
    const tooLong = Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES;
    const ok = await passwords.verifyOrDummy(password, tooLong ? null : (user?.passwordHash ?? null));
    return user !== null && ok;
  }

  router.post('/register', async (req, res) => {
    await limiter.consume(registerLimits(deps.config, ipOf(req)));
    const body = parseInput(registerBodySchema, req.body);
    const passwordHash = await passwords.hash(body.password);
    let existing = await deps.metadata.getUserByEmail(body.email);
    if (!existing) {
      try {
        const user = await deps.metadata.createUser({
          email: body.email,
          name: body.name ?? null,
          passwordHash,
          storageQuota: deps.config.defaultQuota,
        });
        await audit(deps, req, 'auth.register', {}, { userId: user.id });
      } catch (err) {
        // A concurrent registration of the same email won the race.
        if (!(err instanceof ConflictError)) throw err;
        existing = await deps.metadata.getUserByEmail(body.email);
      }
    }
    if (existing) await audit(deps, req, 'auth.register_duplicate', {}, { userId: existing.id });
    res.status(201).json(REGISTERED);
  });

  router.post('/login', async (req, res) => {
    const body = parseInput(loginBodySchema, req.body);
    await limiter.consume(loginLimits(deps.config, ipOf(req), body.email));
    const user = await deps.metadata.getUserByEmail(body.email);
    if (!(await passwordMatches(user, body.password)) || !user) {
      const details = user ? { reason: 'wrong_password' } : { reason: 'unknown_email', email: body.email };
      await audit(deps, req, 'auth.login_failed', details, { userId: user?.id ?? null });
      throw new AppError('INVALID_CREDENTIALS');
    }
    const tokens = await startSession(deps, user, clientOf(req));
    await audit(deps, req, 'auth.login', {}, { userId: user.id });
    res.json({ ...tokens, user: userView(user) });
  });

  router.post('/refresh', async (req, res) => {
    const body = parseInput(refreshBodySchema, req.body);
    const outcome = await rotateSession(deps, body.refreshToken);
    if (outcome.kind === 'reused') {
      const { familyId, userId } = outcome.previous;
      await audit(deps, req, 'auth.refresh_reuse', { familyId }, { userId });
      throw new AppError('INVALID_TOKEN');
    }
    res.json({ ...outcome.tokens, user: userView(outcome.user) });
  });

  router.post('/logout', async (req, res) => {
    const body = parseInput(logoutBodySchema, req.body);
    if (body.refreshToken !== undefined) {
      const session = await revokeByRefreshToken(deps, body.refreshToken);
      if (session) {
        await audit(deps, req, 'auth.logout', { familyId: session.familyId }, { userId: session.userId });
      }
    } else {
      const token = bearerToken(req);
      if (!token) throw new AppError('UNAUTHENTICATED');
      const auth = await resolveAuth(deps, token);
      if (auth.kind !== 'session') {
        throw new AppError('BAD_REQUEST', 'API tokens are revoked with DELETE /api/v1/tokens/:id.');
      }
      await deps.metadata.revokeSessionFamily(auth.sessionId, deps.clock.now());
      await audit(deps, req, 'auth.logout', { familyId: auth.sessionId }, { userId: auth.user.id });
    }
    res.status(204).end();
  });

  router.get('/me', ...signedIn, requireScope('read'), (req, res) => {
    res.json(userView(authOf(req).user));
  });

  router.patch('/me', ...signedIn, requireScope('write'), async (req, res) => {
    const auth = authOf(req);
    const body = parseInput(updateMeBodySchema, req.body);
    if (body.newPassword === undefined || body.currentPassword === undefined) {
      const user = await deps.metadata.updateUser(auth.user.id, { name: body.name ?? null });
      await audit(deps, req, 'auth.profile_update', { fields: ['name'] });
      res.json({ user: userView(user) });
      return;
    }
    if (auth.kind !== 'session') {
      throw new AppError('FORBIDDEN', 'Changing the password needs a login session, not an API token.');
    }
    await limiter.consume(loginLimits(deps.config, ipOf(req), auth.user.email));
    if (!(await passwordMatches(auth.user, body.currentPassword))) {
      await audit(deps, req, 'auth.password_change_failed', { reason: 'wrong_password' });
      throw new AppError('INVALID_CREDENTIALS');
    }
    const passwordHash = await passwords.hash(body.newPassword);
    // The store bumps tokenVersion and revokes every session: all old tokens stop working.
    const user = await deps.metadata.updateUser(auth.user.id, {
      passwordHash,
      ...(body.name !== undefined ? { name: body.name } : {}),
    });
    const tokens = await startSession(deps, user, clientOf(req));
    await audit(deps, req, 'auth.password_change', {});
    res.json({ ...tokens, user: userView(user) });
  });

  return router;
}
