/**
 * `/api/v1/tokens`: personal API tokens (`aio_…`) for scripts and CI. Managing them
 * needs a login session: an API token gets 403 `FORBIDDEN` here, so a leaked token
 * cannot mint more. The secret is returned once, by `POST`; only its sha256 is kept.
 *
 * `POST /` `{ name, scopes?, expiresIn? }` → 201 token with `token`;
 * `GET /` → `{ items }` (unrevoked tokens, no secrets);
 * `DELETE /:id` → 204, 404 `NOT_FOUND` for an unknown, revoked or foreign id.
 */
import { Router } from 'express';
import { NotFoundError } from '../../contract/errors.js';
import {
  ALL_TOKEN_SCOPES,
  DEFAULT_TOKEN_LIFETIME_S,
  createTokenBodySchema,
  durationSeconds,
} from '../../contract/schemas/auth.js';
import { parseInput } from '../auth/parse-input.js';
import { API_TOKEN_PREFIX, hashSecret, newSecret } from '../auth/secrets.js';
import { apiTokenView } from '../auth/views.js';
import { audit } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { authOf, authenticate, requireSession } from '../middleware/authenticate.js';
import { apiRateLimit } from '../middleware/rate-limit.js';

/** Characters of the secret after `aio_` kept as the visible prefix. */
const VISIBLE_CHARS = 6;

export function tokenRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use(authenticate(deps), apiRateLimit(deps), requireSession());

  router.post('/', async (req, res) => {
    const userId = authOf(req).user.id;
    const body = parseInput(createTokenBodySchema, req.body);
    const scopes = [...new Set(body.scopes ?? ALL_TOKEN_SCOPES)];
    const lifetimeS =
      body.expiresIn === undefined
        ? DEFAULT_TOKEN_LIFETIME_S
        : body.expiresIn === null
          ? null
          : durationSeconds(body.expiresIn);
    const now = deps.clock.now();
    const secret = newSecret(API_TOKEN_PREFIX);
    const token = await deps.metadata.createApiToken({
      userId,
      name: body.name,
      prefix: secret.slice(0, API_TOKEN_PREFIX.length + VISIBLE_CHARS),
      tokenHash: hashSecret(secret),
      scopes,
      expiresAt: lifetimeS === null ? null : new Date(now.getTime() + lifetimeS * 1000),
    });
    await audit(deps, req, 'token.create', {
      tokenId: token.id,
      name: token.name,
      prefix: token.prefix,
      scopes: token.scopes,
      expiresAt: token.expiresAt?.toISOString() ?? null,
    });
    res.status(201).json({ ...apiTokenView(token), token: secret });
  });

  router.get('/', async (req, res) => {
    const tokens = await deps.metadata.listApiTokens(authOf(req).user.id);
    res.json({ items: tokens.filter((t) => t.revokedAt === null).map(apiTokenView) });
  });

  router.delete('/:id', async (req, res) => {
    const id = String(req.params.id);
    if (!(await deps.metadata.revokeApiToken(authOf(req).user.id, id, deps.clock.now())))
      throw new NotFoundError();
    await audit(deps, req, 'token.revoke', { tokenId: id });
    res.status(204).end();
  });

  return router;
}
