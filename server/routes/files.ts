/**
 * Files by id (`/api/v1/files`). A foreign or unknown id is a 404 with no side effect.
 *
 * - `GET  /files/:id` → entry (with `path`; trashed items show where they were)
 * - `GET|HEAD /files/:id/content` → the bytes (Range, ETag, If-None-Match, If-Range); scope read
 * - `POST /files/:id/link {expiresIn?}` → `{ url, expiresAt }`, a signed URL under `/api/v1/dl/`; scope read
 * - `GET  /files/:id/versions` → `{ items }`, newest first (the last 10 revisions are kept)
 * - `POST /files/:id/versions/:revision/restore` → 201 entry: a new revision with that content; scope write
 *
 * A node inside a folder shared with the caller (`server/shares/mounts.ts`) can be read
 * by id too (`GET /files/:id`, `/content`, `/link`; its `path` is the one under
 * `/Shared`); versions stay with the owner.
 */
import { randomUUID } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { AppError, ConflictError, NotFoundError } from '../../contract/errors.js';
import { linkBodySchema, nodeIdSchema, type LinkResponse } from '../../contract/schemas/files.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { signDownload } from '../../core/signed-url.js';
import { pathOf } from '../../core/tree.js';
import type { AppDeps } from '../deps.js';
import { announceLatest } from '../files/announce.js';
import { deleteUnreferencedBlobs } from '../files/blob-gc.js';
import { toEntry, toRevisionBody } from '../files/entry.js';
import { fileDownload, serveBlob } from '../files/serve-blob.js';
import { authenticate, authOf, requireScope } from '../middleware/authenticate.js';
import { findSharedNode } from '../shares/mounts.js';

const revisionParamSchema = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** How long the same signed URL is handed out again for the same file revision. */
const LINK_REUSE_MS = 60_000;

function ownerOf(req: Request): string {
  return authOf(req).user.id;
}

/** The owner's node `:id`, trashed or not; 404 otherwise. */
async function nodeOf(deps: AppDeps, req: Request): Promise<TreeNode> {
  const id = nodeIdSchema.parse(req.params.id);
  const node = await deps.metadata.getNode(ownerOf(req), id);
  if (!node) throw new NotFoundError('No such file.');
  return node;
}

/** The caller's node `:id`, or one inside a folder shared with them (with its path there); 404 otherwise. */
async function visibleNodeOf(deps: AppDeps, req: Request): Promise<{ node: TreeNode; path: string | null }> {
  const id = nodeIdSchema.parse(req.params.id);
  const own = await deps.metadata.getNode(ownerOf(req), id);
  if (own) return { node: own, path: null };
  const shared = await findSharedNode(deps, ownerOf(req), id);
  if (!shared) throw new NotFoundError('No such file.');
  return { node: shared.node, path: shared.path };
}

/** A live file whose content is committed: 404 when trashed, 409 for a folder or a pending upload. */
async function readyFileOf(deps: AppDeps, req: Request): Promise<TreeNode & { sha256: string }> {
  const { node } = await visibleNodeOf(deps, req);
  if (node.trashedAt !== null) throw new NotFoundError('The file is in the trash.');
  if (node.kind !== 'file')
    throw new AppError('CONFLICT', 'A folder has no content; download it as a zip job.');
  if (node.status !== 'ready' || node.sha256 === null) {
    throw new AppError('CONFLICT', `The file is not ready (status ${node.status}).`);
  }
  return node as TreeNode & { sha256: string };
}

export function filesRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use(authenticate(deps));
  const read = requireScope('read');
  const write = requireScope('write');

  router.get('/:id', read, async (req, res) => {
    const { node, path } = await visibleNodeOf(deps, req);
    res.json(toEntry(node, path ?? (await pathOf(deps.metadata, ownerOf(req), node))));
  });

  // Express routes HEAD to GET handlers; serveBlob sends no body for HEAD.
  router.get('/:id/content', read, async (req, res) => {
    const file = await readyFileOf(deps, req);
    await serveBlob(req, res, deps, fileDownload(file));
  });

  router.post('/:id/link', read, async (req, res) => {
    const { expiresIn } = linkBodySchema.parse(req.body ?? {});
    const ownerId = ownerOf(req);
    const file = await readyFileOf(deps, req);
    const key = `dl-link:${ownerId}:${file.id}:${file.revision}:${file.sha256}:${expiresIn}`;
    const cached = await deps.cache.get(key).catch(() => null);
    if (cached !== null) {
      res.json(JSON.parse(cached) as LinkResponse);
      return;
    }
    const exp = deps.clock.now().getTime() + expiresIn * 1000;
    const token = signDownload(deps.jwtSecret, {
      sha256: file.sha256,
      name: file.name,
      mediaType: file.mediaType ?? 'application/octet-stream',
      ownerId,
      exp,
    });
    const base =
      deps.config.publicUrl?.replace(/\/+$/u, '') ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
    const body: LinkResponse = { url: `${base}/api/v1/dl/${token}`, expiresAt: new Date(exp).toISOString() };
    // Reused for at most a minute (and at most half its life), so it never hands out a nearly dead URL.
    await deps.cache
      .set(key, JSON.stringify(body), Math.min(LINK_REUSE_MS, (expiresIn * 1000) / 2))
      .catch(() => undefined);
    res.json(body);
  });

  router.get('/:id/versions', read, async (req, res) => {
    const node = await nodeOf(deps, req);
    if (node.kind !== 'file') throw new AppError('CONFLICT', 'A folder has no versions.');
    const revisions = await deps.metadata.listRevisions(ownerOf(req), node.id);
    res.json({ items: revisions.map((r) => toRevisionBody(r, node.revision)) });
  });

  router.post('/:id/versions/:revision/restore', write, async (req, res) => {
    const wanted = revisionParamSchema.parse(req.params.revision);
    const ownerId = ownerOf(req);
    const file = await readyFileOf(deps, req);
    const revision = (await deps.metadata.listRevisions(ownerId, file.id)).find((r) => r.revision === wanted);
    if (!revision) throw new NotFoundError(`Revision ${wanted} is not kept.`);
    if ((await deps.blobs.stat(revision.sha256)) === null) {
      throw new AppError('GONE', `The content of revision ${wanted} is gone.`);
    }
    const user = await deps.metadata.getUserById(ownerId);
    if (user && user.storageUsed + revision.size - file.size > user.storageQuota)
      throw new AppError('QUOTA_EXCEEDED');
    let result;
    try {
      result = await deps.metadata.commitFile({
        ownerId,
        parentId: file.parentId,
        name: file.name,
        sha256: revision.sha256,
        size: revision.size,
        mtime: revision.mtime,
        mediaType: revision.mediaType,
        sourceId: `restore:${file.id}:${wanted}:${randomUUID()}`,
        // Moved, renamed or changed meanwhile: refuse instead of writing somewhere else.
        baseRevision: file.revision,
      });
    } catch (err) {
      if (err instanceof ConflictError) {
        throw new ConflictError('REVISION_CONFLICT', 'The file changed meanwhile; try again.', err);
      }
      throw err;
    }
    await announceLatest(deps, ownerId);
    await deleteUnreferencedBlobs(deps, result.droppedBlobs);
    res.status(201).json(toEntry(result.node, await pathOf(deps.metadata, ownerId, result.node)));
  });

  return router;
}
