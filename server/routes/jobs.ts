/**
 * Background jobs a person waits for. Mounted at `/api/v1`; every route authenticates
 * on its own, so mounting this router beside others adds nothing to their routes.
 *
 * `POST /folders/zip` `{ path }` or `{ id }` (scope `read`) → 202 `{ jobId }` and
 *   `Location: /api/v1/jobs/<jobId>`: the folder is checked (the caller's, not trashed,
 *   a folder), its status written as `queued`, and a `file.download` job published with
 *   interactive priority. 404 `NOT_FOUND` for a missing or foreign folder, 409
 *   `CONFLICT` when the path names a file, 400 for a malformed body or path.
 * `GET /jobs/:id` (scope `read`) → the status (`contract/schemas/jobs.ts`); 404
 *   `NOT_FOUND` for an unknown, expired or foreign id alike.
 */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { AppError, NotFoundError } from '../../contract/errors.js';
import {
  folderZipBodySchema,
  jobIdSchema,
  type FileDownloadPayload,
  type FolderZipBody,
} from '../../contract/schemas/jobs.js';
import { JobStatusStore, type JobRef } from '../../core/job-status.js';
import { PRIORITY } from '../../core/ports/job-queue.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { resolvePath } from '../../core/tree.js';
import { parseInput } from '../auth/parse-input.js';
import { audit } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { authOf, authenticate, requireScope } from '../middleware/authenticate.js';
import { apiRateLimit } from '../middleware/rate-limit.js';

export function jobRoutes(deps: AppDeps): Router {
  const router = Router();
  const statuses = new JobStatusStore(deps.cache, deps.clock);
  const guard = [authenticate(deps), apiRateLimit(deps), requireScope('read')];

  router.post('/folders/zip', ...guard, async (req, res) => {
    const ownerId = authOf(req).user.id;
    const body = parseInput(folderZipBodySchema, req.body);
    const folder = await findFolder(deps, ownerId, body);
    const ref: JobRef = { id: randomUUID(), ownerId, type: 'file.download' };
    await statuses.create(ref);
    const payload: FileDownloadPayload = { jobId: ref.id, ownerId, folderId: folder?.id ?? null };
    try {
      await deps.queue.publish({
        queue: 'file.download',
        payload: { ...payload },
        idempotencyKey: ref.id,
        priority: PRIORITY.interactive,
      });
    } catch (err) {
      await statuses
        .set(ref, { status: 'failed', error: 'The job could not be queued.' })
        .catch(() => undefined);
      throw err;
    }
    await audit(deps, req, 'folder.zip', { jobId: ref.id, folderId: payload.folderId });
    res.status(202).location(`/api/v1/jobs/${ref.id}`).json({ jobId: ref.id });
  });

  router.get('/jobs/:id', ...guard, async (req, res) => {
    const ownerId = authOf(req).user.id;
    const id = jobIdSchema.safeParse(req.params.id);
    const status = id.success ? await statuses.getForOwner(ownerId, id.data) : null;
    if (status === null) throw new NotFoundError('No such job.');
    res.json(status);
  });

  return router;
}

/** The caller's live folder named by the body; `null` for the root (`{ path: '/' }`). */
async function findFolder(deps: AppDeps, ownerId: string, body: FolderZipBody): Promise<TreeNode | null> {
  const node =
    'path' in body
      ? await resolvePath(deps.metadata, ownerId, body.path)
      : await byId(deps, ownerId, body.id);
  if (node !== null && node.kind !== 'folder') throw new AppError('CONFLICT', 'Only folders can be zipped.');
  return node;
}

async function byId(deps: AppDeps, ownerId: string, id: string): Promise<TreeNode> {
  const node = await deps.metadata.getNode(ownerId, id);
  if (node === null || node.trashedAt !== null) throw new NotFoundError('No such folder.');
  return node;
}
