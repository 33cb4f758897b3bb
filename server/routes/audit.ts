/**
 * `/api/v1/audit`: the caller's own audit log, newest first, paged.
 * `GET /?limit=&cursor=` → `{ items, nextCursor }`; needs the `read` scope.
 * A malformed cursor is 400.
 */
import { Router } from 'express';
import { pageQuerySchema } from '../../contract/schemas/common.js';
import { parseInput } from '../auth/parse-input.js';
import { auditEntryView } from '../auth/views.js';
import type { AppDeps } from '../deps.js';
import { authOf, authenticate, requireScope } from '../middleware/authenticate.js';
import { apiRateLimit } from '../middleware/rate-limit.js';

export function auditRoutes(deps: AppDeps): Router {
  const router = Router();
  router.get('/', authenticate(deps), apiRateLimit(deps), requireScope('read'), async (req, res) => {
    const query = parseInput(pageQuerySchema, req.query);
    const page = await deps.metadata.listAudit(authOf(req).user.id, {
      limit: query.limit,
      cursor: query.cursor ?? null,
    });
    res.json({ items: page.items.map(auditEntryView), nextCursor: page.nextCursor });
  });
  return router;
}
