/**
 * `/api/v1/notifications` (scope read). A notification is a `notify` change of the
 * caller's own feed (`data.type`: `share.received`, `share.opened`, `zip.ready`, …), so
 * it also arrives through `GET /api/v1/changes`; the store keeps a durable read marker.
 *
 * - `GET /notifications?unread=1&limit=&cursor=` → `{ items, nextCursor }`, newest first.
 * - `POST /notifications/read {ids: [id…]}` or `{all: true}` → `{ marked }`: how many were unread.
 */
import { Router } from 'express';
import {
  markReadBodySchema,
  notificationsQuerySchema,
  type NotificationPage,
} from '../../contract/schemas/shares.js';
import { parseInput } from '../auth/parse-input.js';
import type { AppDeps } from '../deps.js';
import { authOf, authenticate, requireScope } from '../middleware/authenticate.js';
import { apiRateLimit } from '../middleware/rate-limit.js';
import { notificationView } from '../shares/views.js';

export function notificationRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use(authenticate(deps), apiRateLimit(deps), requireScope('read'));

  router.get('/', async (req, res) => {
    const query = parseInput(notificationsQuerySchema, req.query);
    const page = await deps.metadata.listNotifications(authOf(req).user.id, {
      unreadOnly: query.unread === '1' || query.unread === 'true',
      limit: query.limit,
      cursor: query.cursor ?? null,
    });
    const body: NotificationPage = { items: page.items.map(notificationView), nextCursor: page.nextCursor };
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  });

  router.post('/read', async (req, res) => {
    const body = parseInput(markReadBodySchema, req.body);
    const marked = await deps.metadata.markNotificationsRead(
      authOf(req).user.id,
      'all' in body ? 'all' : body.ids,
      deps.clock.now(),
    );
    res.json({ marked });
  });

  return router;
}
