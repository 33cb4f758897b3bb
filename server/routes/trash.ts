/**
 * The trash (`/api/v1/trash`). Items stay 30 days (see `TrashPurge`), then are purged.
 *
 * - `GET    /trash?limit=&cursor=` → `{ items, nextCursor }`: what was trashed on its own, newest first
 * - `POST   /trash/:id/restore` → entry back in place (in `/` when its folder is gone);
 *   409 `NAME_CONFLICT` when the name was taken meanwhile
 * - `DELETE /trash/:id` → 204; deletes it for good and frees blobs nothing else uses;
 *   409 when the item is not in the trash
 */
import { Router, type Request } from 'express';
import { NotFoundError } from '../../contract/errors.js';
import { pageQuerySchema } from '../../contract/schemas/common.js';
import { nodeIdSchema } from '../../contract/schemas/files.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { pathOf } from '../../core/tree.js';
import type { AppDeps } from '../deps.js';
import { announceLatest } from '../files/announce.js';
import { deleteUnreferencedBlobs } from '../files/blob-gc.js';
import { toEntry } from '../files/entry.js';
import { listTrash } from '../files/trash-list.js';
import { authenticate, authOf, requireScope } from '../middleware/authenticate.js';

function ownerOf(req: Request): string {
  return authOf(req).user.id;
}

async function nodeOf(deps: AppDeps, req: Request): Promise<TreeNode> {
  const node = await deps.metadata.getNode(ownerOf(req), nodeIdSchema.parse(req.params.id));
  if (!node) throw new NotFoundError('No such item.');
  return node;
}

export function trashRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use(authenticate(deps));

  router.get('/', requireScope('read'), async (req, res) => {
    const query = pageQuerySchema.parse(req.query);
    res.json(await listTrash(deps.metadata, ownerOf(req), query));
  });

  router.post('/:id/restore', requireScope('write'), async (req, res) => {
    const ownerId = ownerOf(req);
    const node = await nodeOf(deps, req);
    const restored = await deps.metadata.restoreNode(ownerId, node.id);
    await announceLatest(deps, ownerId);
    res.json(toEntry(restored, await pathOf(deps.metadata, ownerId, restored)));
  });

  router.delete('/:id', requireScope('write'), async (req, res) => {
    const ownerId = ownerOf(req);
    const node = await nodeOf(deps, req);
    const { droppedBlobs } = await deps.metadata.purgeNode(ownerId, node.id);
    await announceLatest(deps, ownerId);
    await deleteUnreferencedBlobs(deps, droppedBlobs);
    res.status(204).end();
  });

  return router;
}
