/**
 * `/api/v1/shares`: public links and shares with other users. See `docs/api-shares.md`.
 *
 * - `POST /shares {path|id, expiresIn?, password?, maxDownloads?}` (scope share) → 201
 *   the link with `url` (`<public url>/s/<token>`) and `token`, shown this once: only
 *   the token's sha256 is stored. Default lifetime 7 days; `expiresIn: null` = never.
 * - `GET /shares` (scope read) → `{ items }`: the caller's links and user shares, newest
 *   first, with download counts and state.
 * - `DELETE /shares/:id` (scope share) → 204; the link stops at the next request.
 * - `POST /shares/users {path|id, email, role}` (scope share) → 202, the same answer
 *   for a known and an unknown email; only a known one (not the caller) gets a share.
 * - `GET /shares/with-me` (scope read) → `{ items }`: what others share with the caller,
 *   with the path under `/Shared` where it appears.
 */
import { Router, type Request } from 'express';
import { NotFoundError } from '../../contract/errors.js';
import {
  DEFAULT_SHARE_LIFETIME_S,
  createLinkBodySchema,
  createUserShareBodySchema,
  shareLifetimeSeconds,
  type CreatedLinkBody,
  type SharedWithMeBody,
  type UserShareAcceptedBody,
} from '../../contract/schemas/shares.js';
import { pathOf } from '../../core/tree.js';
import { parseInput } from '../auth/parse-input.js';
import { PasswordHasher } from '../auth/passwords.js';
import { hashSecret } from '../auth/secrets.js';
import { audit } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { authOf, authenticate, requireScope } from '../middleware/authenticate.js';
import { apiRateLimit } from '../middleware/rate-limit.js';
import { newLinkToken } from '../shares/link-token.js';
import { listMounts, SHARED_ROOT } from '../shares/mounts.js';
import { notify } from '../shares/notify.js';
import { shareTarget } from '../shares/target.js';
import { shareView } from '../shares/views.js';

/** The absolute base URL of links: `AIO_PUBLIC_URL`, else the request's own origin. */
export function publicBase(deps: AppDeps, req: Request): string {
  return deps.config.publicUrl?.replace(/\/+$/u, '') ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}

export function shareRoutes(deps: AppDeps): Router {
  const router = Router();
  const passwords = new PasswordHasher(deps.config.bcryptCost);
  router.use(authenticate(deps), apiRateLimit(deps));
  const share = requireScope('share');
  const read = requireScope('read');

  router.post('/', share, async (req, res) => {
    const ownerId = authOf(req).user.id;
    const body = parseInput(createLinkBodySchema, req.body);
    const node = await shareTarget(deps, ownerId, body);
    const lifetimeS =
      body.expiresIn === undefined
        ? DEFAULT_SHARE_LIFETIME_S
        : body.expiresIn === null
          ? null
          : shareLifetimeSeconds(body.expiresIn);
    const now = deps.clock.now();
    const token = newLinkToken();
    const created = await deps.metadata.createShare({
      ownerId,
      nodeId: node.id,
      tokenHash: hashSecret(token),
      granteeId: null,
      role: 'viewer',
      passwordHash: body.password === undefined ? null : await passwords.hash(body.password),
      expiresAt: lifetimeS === null ? null : new Date(now.getTime() + lifetimeS * 1000),
      maxDownloads: body.maxDownloads ?? null,
    });
    await audit(deps, req, 'share.create', {
      shareId: created.id,
      nodeId: node.id,
      expiresAt: created.expiresAt?.toISOString() ?? null,
      hasPassword: created.passwordHash !== null,
      maxDownloads: created.maxDownloads,
    });
    const response: CreatedLinkBody = {
      ...(await shareView(deps, created)),
      url: `${publicBase(deps, req)}/s/${token}`,
      token,
    };
    res.status(201).json(response);
  });

  router.get('/', read, async (req, res) => {
    const shares = await deps.metadata.listShares(authOf(req).user.id);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ items: await Promise.all(shares.map((s) => shareView(deps, s))) });
  });

  router.get('/with-me', read, async (req, res) => {
    const mounts = await listMounts(deps, authOf(req).user.id);
    const items: SharedWithMeBody[] = [];
    for (const mount of mounts) {
      const owner = await deps.metadata.getUserById(mount.share.ownerId);
      if (!owner) continue;
      items.push({
        id: mount.share.id,
        nodeId: mount.node.id,
        name: mount.name,
        kind: mount.node.kind,
        path: `/${SHARED_ROOT}/${mount.name}`,
        role: mount.share.role,
        owner: { id: owner.id, email: owner.email },
        createdAt: mount.share.createdAt.toISOString(),
      });
    }
    res.setHeader('Cache-Control', 'no-store');
    res.json({ items });
  });

  router.post('/users', share, async (req, res) => {
    const owner = authOf(req).user;
    const body = parseInput(createUserShareBodySchema, req.body);
    const node = await shareTarget(deps, owner.id, body);
    const path = await pathOf(deps.metadata, owner.id, node);
    const grantee = await deps.metadata.getUserByEmail(body.email);
    // Same audit entry and answer whether or not the account exists: no enumeration.
    await audit(deps, req, 'share.user_grant', { nodeId: node.id, email: body.email, role: body.role });
    if (grantee !== null && grantee.id !== owner.id) {
      // Sharing again with the same person replaces the earlier grant (e.g. a new role).
      for (const old of await deps.metadata.listShares(owner.id)) {
        if (old.granteeId === grantee.id && old.nodeId === node.id && old.revokedAt === null)
          await deps.metadata.revokeShare(owner.id, old.id, deps.clock.now());
      }
      const created = await deps.metadata.createShare({
        ownerId: owner.id,
        nodeId: node.id,
        tokenHash: null,
        granteeId: grantee.id,
        role: body.role,
        passwordHash: null,
        expiresAt: null,
        maxDownloads: null,
      });
      const mount = (await listMounts(deps, grantee.id)).find((m) => m.share.id === created.id);
      await notify(deps, grantee.id, 'share.received', {
        shareId: created.id,
        name: node.name,
        kind: node.kind,
        role: body.role,
        path: mount ? `/${SHARED_ROOT}/${mount.name}` : null,
        from: { id: owner.id, email: owner.email },
      });
    }
    const response: UserShareAcceptedBody = { email: body.email, role: body.role, path };
    res.status(202).json(response);
  });

  router.delete('/:id', share, async (req, res) => {
    const ownerId = authOf(req).user.id;
    const id = String(req.params.id);
    const found = await deps.metadata.getShare(ownerId, id);
    if (found === null || !(await deps.metadata.revokeShare(ownerId, id, deps.clock.now())))
      throw new NotFoundError('No such share.');
    const action = found.granteeId === null ? 'share.revoke' : 'share.user_revoke';
    await audit(deps, req, action, { shareId: id, nodeId: found.nodeId, granteeId: found.granteeId });
    res.status(204).end();
  });

  return router;
}
