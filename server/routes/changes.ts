/**
 * The change feed (`/api/v1/changes`, scope read).
 *
 * - `GET /changes?cursor=N&limit=L&wait=S`: the owner's changes with `seq > N`, in
 *   order, at most L (default 100, max 1000), as `{ changes, cursor, hasMore }` where
 *   `cursor` is the last seq returned (or N when none). With `wait` (≤ 60 s) and nothing
 *   new, the request long-polls and answers as soon as a change commits.
 * - `cursor` omitted or `latest`: answers at once with no changes and the current seq,
 *   so a client that has just scanned can follow from now. `GET /changes/latest` → `{ cursor }`.
 * - A cursor past the newest seq (the server's store was replaced or reset) → 410
 *   `CURSOR_EXPIRED`: the client must rescan. The store keeps the whole feed, so no
 *   cursor is ever too old.
 */
import { Router } from 'express';
import { AppError } from '../../contract/errors.js';
import { changesQuerySchema, type ChangesResponse } from '../../contract/schemas/files.js';
import type { AppDeps } from '../deps.js';
import { toChangeBody } from '../files/entry.js';
import { readChanges } from '../files/long-poll.js';
import { authenticate, authOf, requireScope } from '../middleware/authenticate.js';

export interface ChangesRoutesOptions {
  /** Re-read period of a long-poll when no notification arrives. Default 1000 ms. */
  fallbackMs?: number;
}

export function changesRoutes(deps: AppDeps, options: ChangesRoutesOptions = {}): Router {
  const router = Router();
  router.use(authenticate(deps), requireScope('read'));

  router.get('/latest', async (req, res) => {
    const cursor = await deps.metadata.latestChangeSeq(authOf(req).user.id);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ cursor });
  });

  router.get('/', async (req, res) => {
    const query = changesQuerySchema.parse(req.query);
    const ownerId = authOf(req).user.id;
    const latest = await deps.metadata.latestChangeSeq(ownerId);
    res.setHeader('Cache-Control', 'no-store');
    if (query.cursor === 'latest') {
      const body: ChangesResponse = { changes: [], cursor: latest, hasMore: false };
      res.json(body);
      return;
    }
    if (query.cursor > latest) {
      throw new AppError(
        'CURSOR_EXPIRED',
        `The cursor ${query.cursor} is past the newest change ${latest}; rescan.`,
        {
          details: { latest },
        },
      );
    }
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    res.on('close', onClose);
    try {
      const found = await readChanges(deps, {
        ownerId,
        cursor: query.cursor,
        limit: query.limit + 1,
        waitMs: Math.round(query.wait * 1000),
        signal: abort.signal,
        fallbackMs: options.fallbackMs,
      });
      if (abort.signal.aborted) return; // the client is gone
      const page = found.slice(0, query.limit);
      const body: ChangesResponse = {
        changes: page.map(toChangeBody),
        cursor: page.at(-1)?.seq ?? query.cursor,
        hasMore: found.length > query.limit,
      };
      res.json(body);
    } finally {
      res.off('close', onClose);
    }
  });

  return router;
}
