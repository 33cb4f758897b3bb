/**
 * The namespace by path (`/api/v1/fs`). Reads need scope read, changes scope write.
 * Every path is checked with the name rules before the store is touched, so a bad name
 * is a 400 with nothing written. Mutations are appended to the change feed by the store
 * and announced to long-polls afterwards.
 *
 * - `GET  /fs/list?path=&limit=&cursor=&sort=name|mtime|size&order=asc|desc` → `{ items, nextCursor }`
 * - `GET  /fs/stat?path=` → entry (`id: null` for `/`)
 * - `POST /fs/mkdir {path, parents?}` → 201 entry (200 when `parents` and it exists)
 * - `POST /fs/move {from, to}` → entry; `to` is the full new path
 * - `POST /fs/copy {from, to}` → 201 entry of the copy
 * - `POST /fs/delete {path}` → entry, now in the trash
 */
import { Router, type Request } from 'express';
import { AppError, ConflictError, NotFoundError } from '../../contract/errors.js';
import {
  copyBodySchema,
  deleteBodySchema,
  listQuerySchema,
  mkdirBodySchema,
  moveBodySchema,
  statQuerySchema,
  type EntryPage,
} from '../../contract/schemas/files.js';
import { splitPath } from '../../core/domain/names.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { ensureFolders, resolveFolderId, resolvePath } from '../../core/tree.js';
import type { AppDeps } from '../deps.js';
import { announceLatest } from '../files/announce.js';
import { copyNode } from '../files/copy.js';
import { joinPath, rootEntry, toEntry } from '../files/entry.js';
import { authenticate, authOf, requireScope } from '../middleware/authenticate.js';

/** `/a/b` from validated segments. */
function pathFrom(segments: readonly string[]): string {
  return `/${segments.join('/')}`;
}

/** Splits a target path into its parent's segments and its (validated) last name; the root has none. */
function target(path: string): { parent: string[]; name: string; path: string } {
  const segments = splitPath(path);
  const name = segments.at(-1);
  if (name === undefined) throw new AppError('INVALID_PATH', 'The root cannot be the target.');
  return { parent: segments.slice(0, -1), name, path: pathFrom(segments) };
}

/** The node at a path that must not be the root. */
async function existing(deps: AppDeps, ownerId: string, segments: readonly string[]): Promise<TreeNode> {
  if (segments.length === 0)
    throw new AppError('INVALID_PATH', 'The root cannot be moved, copied or deleted.');
  return (await resolvePath(deps.metadata, ownerId, pathFrom(segments))) as TreeNode;
}

function ownerOf(req: Request): string {
  return authOf(req).user.id;
}

export function fsRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use(authenticate(deps));
  const read = requireScope('read');
  const write = requireScope('write');

  router.get('/list', read, async (req, res) => {
    const query = listQuerySchema.parse(req.query);
    const segments = splitPath(query.path);
    const folderPath = pathFrom(segments);
    const folderId = await resolveFolderId(deps.metadata, ownerOf(req), folderPath);
    const page = await deps.metadata.listChildren(ownerOf(req), folderId, {
      limit: query.limit,
      cursor: query.cursor ?? null,
      sort: query.sort,
      order: query.order,
    });
    const body: EntryPage = {
      items: page.items.map((node) => toEntry(node, joinPath(folderPath, node.name))),
      nextCursor: page.nextCursor,
    };
    res.json(body);
  });

  router.get('/stat', read, async (req, res) => {
    const query = statQuerySchema.parse(req.query);
    const segments = splitPath(query.path);
    const node = await resolvePath(deps.metadata, ownerOf(req), pathFrom(segments));
    res.json(node ? toEntry(node, pathFrom(segments)) : rootEntry(deps.clock.now()));
  });

  router.post('/mkdir', write, async (req, res) => {
    const body = mkdirBodySchema.parse(req.body);
    const segments = splitPath(body.path);
    const ownerId = ownerOf(req);
    const path = pathFrom(segments);
    const name = segments.at(-1);
    if (name === undefined) {
      if (!body.parents) throw new ConflictError('NAME_CONFLICT', 'The root folder exists.');
      res.json(rootEntry(deps.clock.now()));
      return;
    }
    if (body.parents) {
      const found = await resolvePath(deps.metadata, ownerId, path).catch((err: unknown) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      });
      if (found?.kind === 'folder') {
        res.json(toEntry(found, path));
        return;
      }
      if (found) throw new ConflictError('NAME_CONFLICT', `A file exists at ${path}.`);
      const id = (await ensureFolders(deps.metadata, ownerId, segments)) as string;
      await announceLatest(deps, ownerId);
      const folder = await deps.metadata.getNode(ownerId, id);
      res.status(201).json(toEntry(folder as TreeNode, path));
      return;
    }
    const parentId = await resolveFolderId(deps.metadata, ownerId, pathFrom(segments.slice(0, -1)));
    const folder = await deps.metadata.createFolder(ownerId, parentId, name);
    await announceLatest(deps, ownerId);
    res.status(201).json(toEntry(folder, path));
  });

  router.post('/move', write, async (req, res) => {
    const body = moveBodySchema.parse(req.body);
    const from = splitPath(body.from);
    const to = target(body.to);
    const ownerId = ownerOf(req);
    const node = await existing(deps, ownerId, from);
    const parentId = await resolveFolderId(deps.metadata, ownerId, pathFrom(to.parent));
    const moved = await deps.metadata.moveNode(ownerId, node.id, parentId, to.name);
    await announceLatest(deps, ownerId);
    res.json(toEntry(moved, to.path));
  });

  router.post('/copy', write, async (req, res) => {
    const body = copyBodySchema.parse(req.body);
    const from = splitPath(body.from);
    const to = target(body.to);
    const ownerId = ownerOf(req);
    const source = await existing(deps, ownerId, from);
    const parentId = await resolveFolderId(deps.metadata, ownerId, pathFrom(to.parent));
    try {
      const copy = await copyNode(deps.metadata, ownerId, source, parentId, to.name);
      res.status(201).json(toEntry(copy, to.path));
    } finally {
      // A folder copy that failed half-way has still committed (and fed) what it copied.
      await announceLatest(deps, ownerId);
    }
  });

  router.post('/delete', write, async (req, res) => {
    const body = deleteBodySchema.parse(req.body);
    const segments = splitPath(body.path);
    const ownerId = ownerOf(req);
    const node = await existing(deps, ownerId, segments);
    const trashed = await deps.metadata.trashNode(ownerId, node.id, deps.clock.now());
    await announceLatest(deps, ownerId);
    res.json(toEntry(trashed, pathFrom(segments)));
  });

  return router;
}
