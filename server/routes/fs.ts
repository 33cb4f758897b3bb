/**
 * The namespace by path (`/api/v1/fs`). Reads need scope read, changes scope write.
 * Every path is checked with the name rules before the store is touched, so a bad name
 * is a 400 with nothing written. Mutations are appended to the change feed by the store
 * and announced to long-polls afterwards.
 *
 * - `GET  /fs/list?path=&limit=&cursor=&sort=name|mtime|size&order=asc|desc` → `{ items, nextCursor }`
 * - `GET  /fs/stat?path=` → entry (`id: null` for `/`)
 * - `POST /fs/mkdir {path, parents?}` → 201 entry (200 when `parents` and it exists)
 * - `POST /fs/mkdirs {paths}` → `{ items }`: per path (≤ 1,000, in order) `{path, entry}`
 *   or `{path, error: {code, message}}`, each a `mkdir -p`
 * - `POST /fs/move {from, to}` → entry; `to` is the full new path
 * - `POST /fs/copy {from, to}` → 201 entry of the copy
 * - `POST /fs/delete {path}` → entry, now in the trash
 *
 * Folders shared with the caller appear under `/Shared/<name>` (see
 * `server/shares/mounts.ts`): reads work for any role, writes need an `editor` share
 * (403 `FORBIDDEN` for a viewer), the shared folder itself cannot be moved or deleted
 * by its recipient, and nothing moves or copies between a shared tree and another one
 * (409). `/Shared` itself lists the caller's mounts (then their own `Shared` folder, if any).
 */
import { Router, type Application, type Request } from 'express';
import { drained } from '../../contract/drained.js';
import { AppError, ConflictError, NotFoundError } from '../../contract/errors.js';
import {
  copyBodySchema,
  deleteBodySchema,
  listQuerySchema,
  mkdirBodySchema,
  mkdirsBodySchema,
  moveBodySchema,
  statQuerySchema,
  treeQuerySchema,
  type Entry,
  type EntryPage,
  type ListQuery,
  type MkdirsResponse,
} from '../../contract/schemas/files.js';
import { runPool } from '../../core/domain/pool.js';
import { splitPath } from '../../core/domain/names.js';
import type { ListOptions, Page, TreeNode } from '../../core/ports/metadata-store.js';
import { ensureFolders } from '../../core/tree.js';
import type { AppDeps } from '../deps.js';
import { announceLatest } from '../files/announce.js';
import { copyNode } from '../files/copy.js';
import { joinPath, pickEntry, rootEntry, toEntry } from '../files/entry.js';
import { authenticate, authOf, requireScope } from '../middleware/authenticate.js';
import { isSharedPath, listMounts, SHARED_ROOT } from '../shares/mounts.js';
import {
  folderAt,
  placeAt,
  placeEntry,
  requireNotMountRoot,
  requireSameTree,
  requireWritable,
  sharedRootEntry,
  type Place,
} from '../shares/places.js';

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

/** The place of a path that must not be the root. */
async function existing(
  deps: AppDeps,
  userId: string,
  segments: readonly string[],
): Promise<Place & { node: TreeNode }> {
  if (segments.length === 0)
    throw new AppError('INVALID_PATH', 'The root cannot be moved, copied or deleted.');
  const place = await placeAt(deps, userId, segments);
  if (place.node === null) throw new NotFoundError(`Not found: ${place.path}`);
  return place as Place & { node: TreeNode };
}

/** Null when the path is not found (instead of `NotFoundError`). */
async function placeOrNull(
  deps: AppDeps,
  userId: string,
  segments: readonly string[],
): Promise<Place | null> {
  return placeAt(deps, userId, segments).catch((err: unknown) => {
    if (err instanceof NotFoundError) return null;
    throw err;
  });
}

/** A listing's response body, ready to send: JSON bytes and their ETag. */
export interface ListingBody {
  folderPath: string;
  bytes: Buffer;
  etag: string | undefined;
}

/** The app's `etag fn` setting (Express's weak ETag by default), or none when ETags are off. */
export type EtagOf = ((body: Buffer) => string) | undefined;

/**
 * Bodies of pages the store handed out frozen (the SQLite store returns the same frozen
 * page while the database is unchanged): such a page, seen at the same folder path,
 * always gives the same bytes, so they are built once. Held weakly, for as long as the
 * store keeps the page.
 */
const listingBodies = new WeakMap<Page<TreeNode>, ListingBody>();

/** `{ items, nextCursor }` of a page of `folderPath` as `res.json` would write it, built once per frozen page. */
function listingBodyOf(page: Page<TreeNode>, folderPath: string, etagOf: EtagOf): ListingBody {
  let body = listingBodies.get(page);
  if (body === undefined || body.folderPath !== folderPath) {
    const entries: EntryPage = {
      items: page.items.map((node) => toEntry(node, joinPath(folderPath, node.name))),
      nextCursor: page.nextCursor,
    };
    const bytes = Buffer.from(JSON.stringify(entries), 'utf8');
    body = { folderPath, bytes, etag: etagOf?.(bytes) };
    if (Object.isFrozen(page) && Object.isFrozen(page.items)) listingBodies.set(page, body);
  }
  return body;
}

/**
 * The body of `GET /fs/list` for any folder but `/Shared` itself (null for that one: the
 * route lists the caller's mounts there). Throws the route's errors: 404 for a missing
 * folder, 409 for a file. Shared by the route and the fast lane (`server/fast-lane.ts`),
 * so both send the same bytes.
 */
export async function folderListing(
  deps: AppDeps,
  userId: string,
  query: ListQuery,
  etagOf: EtagOf,
): Promise<ListingBody | null> {
  const segments = splitPath(query.path);
  if (segments.length === 1 && isSharedPath(segments)) return null;
  const folder = await folderAt(deps, userId, segments);
  const page = await deps.metadata.listChildren(folder.ownerId, folder.node?.id ?? null, listOptions(query));
  return listingBodyOf(page, folder.path, etagOf);
}

function listOptions(query: ListQuery): ListOptions {
  return { limit: query.limit, cursor: query.cursor ?? null, sort: query.sort, order: query.order };
}

/** The app's ETag function, as Express's `res.send` uses it (the route's and the fast lane's). */
export function appEtag(app: Application): EtagOf {
  const etagOf: unknown = app.get('etag fn');
  return typeof etagOf === 'function' ? (etagOf as (b: Buffer) => string) : undefined;
}

/** Children read per query while walking a tree. */
const TREE_PAGE = 1000;
/** Paths of one `POST /fs/mkdirs` worked on at once. */
const MKDIRS_IN_FLIGHT = 16;

function ownerOf(req: Request): string {
  return authOf(req).user.id;
}

/** The writer's feed and the owner's (when they differ) learn of the change at once. */
async function announceBoth(deps: AppDeps, userId: string, place: Place): Promise<void> {
  await announceLatest(deps, place.ownerId);
  if (place.ownerId !== userId) await announceLatest(deps, userId);
}

/** Announces the newest change of every owner in `owners` (once each). */
async function announceAll(deps: AppDeps, owners: ReadonlySet<string>): Promise<void> {
  for (const owner of owners) await announceLatest(deps, owner);
}

export function fsRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use(authenticate(deps));
  const read = requireScope('read');
  const write = requireScope('write');

  router.get('/list', read, async (req, res) => {
    const query = listQuerySchema.parse(req.query);
    const userId = ownerOf(req);
    const listing = await folderListing(deps, userId, query, appEtag(req.app));
    if (listing) {
      res.set('Content-Type', 'application/json; charset=utf-8');
      if (listing.etag) res.set('ETag', listing.etag);
      res.send(listing.bytes);
      return;
    }
    // `/Shared` itself: the caller's mounts first, then their own `Shared` folder, if any.
    const folder = await placeOrNull(deps, userId, splitPath(query.path));
    if (folder?.node && folder.node.kind !== 'folder')
      throw new AppError('CONFLICT', `Not a folder: ${folder.path}`);
    const items: Entry[] = [];
    let nextCursor: string | null = null;
    if (query.cursor === undefined) {
      for (const mount of await listMounts(deps, userId))
        items.push({ ...toEntry(mount.node, `/${SHARED_ROOT}/${mount.name}`), name: mount.name });
    }
    if (folder) {
      const page = await deps.metadata.listChildren(
        folder.ownerId,
        folder.node?.id ?? null,
        listOptions(query),
      );
      // Under the path asked for, as every listing gives its entries (it said `/Shared/…`
      // for a listing of `/shared`).
      items.push(...page.items.map((node) => toEntry(node, joinPath(folder.path, node.name))));
      nextCursor = page.nextCursor;
    }
    const body: EntryPage = { items, nextCursor };
    res.json(body);
  });

  /**
   * `GET /fs/tree?path=&fields=`: every entry below a folder (not the folder itself), as NDJSON —
   * one entry per line, folders before their contents, then `{"end":true,"count":N,"path":P}`. A
   * client that sees no end line got a cut answer. One request instead of one listing
   * per folder (rclone's `--fast-list`); written page by page with backpressure, so the
   * server holds one id and path per folder, not the entries.
   */
  router.get('/tree', read, async (req, res) => {
    const query = treeQuerySchema.parse(req.query);
    const keys = query.fields ? (['path', ...query.fields] as const) : undefined;
    const segments = splitPath(query.path);
    if (segments.length === 1 && isSharedPath(segments))
      throw new AppError('BAD_REQUEST', `List /${SHARED_ROOT} itself with GET /fs/list.`);
    const folder = await folderAt(deps, ownerOf(req), segments);
    res.status(200).type('application/x-ndjson; charset=utf-8');
    res.set('Cache-Control', 'no-store');
    const pending: Array<{ id: string | null; path: string }> = [
      { id: folder.node?.id ?? null, path: folder.path },
    ];
    let count = 0;
    try {
      // Breadth first through an index (shift() would move the whole queue per folder).
      for (let at = 0; at < pending.length && !res.destroyed; at++) {
        const dir = pending[at] as { id: string | null; path: string };
        let cursor: string | null = null;
        do {
          const page: Page<TreeNode> = await deps.metadata.listChildren(folder.ownerId, dir.id, {
            limit: TREE_PAGE,
            cursor,
          });
          let chunk = '';
          for (const node of page.items) {
            const path = joinPath(dir.path, node.name);
            chunk += `${JSON.stringify(keys ? pickEntry(node, path, keys) : toEntry(node, path))}\n`;
            if (node.kind === 'folder') pending.push({ id: node.id, path });
          }
          count += page.items.length;
          if (chunk && !res.write(chunk)) await drained(res);
          cursor = page.nextCursor;
        } while (cursor !== null && !res.destroyed);
      }
      res.end(`${JSON.stringify({ end: true, count, path: folder.path })}\n`);
    } catch (err) {
      // Headers are out: the only honest signal left is a cut answer (no end line).
      req.log?.warn({ err }, 'tree listing failed part-way');
      res.destroy();
    }
  });

  router.get('/stat', read, async (req, res) => {
    const query = statQuerySchema.parse(req.query);
    const segments = splitPath(query.path);
    const userId = ownerOf(req);
    if (segments.length === 1 && isSharedPath(segments)) {
      const own = await placeOrNull(deps, userId, segments);
      res.json(own?.node ? toEntry(own.node, own.path) : sharedRootEntry(deps.clock.now()));
      return;
    }
    const place = await placeAt(deps, userId, segments);
    res.json(place.node ? placeEntry({ ...place, node: place.node }) : rootEntry(deps.clock.now()));
  });

  router.post('/mkdir', write, async (req, res) => {
    const body = mkdirBodySchema.parse(req.body);
    const segments = splitPath(body.path);
    const userId = ownerOf(req);
    const path = pathFrom(segments);
    const name = segments.at(-1);
    if (name === undefined) {
      if (!body.parents) throw new ConflictError('NAME_CONFLICT', 'The root folder exists.');
      res.json(rootEntry(deps.clock.now()));
      return;
    }
    if (body.parents) {
      const changed = new Set<string>();
      const made = await mkdirP(userId, segments, changed);
      await announceAll(deps, changed);
      res.status(made.created ? 201 : 200).json(made.entry);
      return;
    }
    const parent = await folderAt(deps, userId, segments.slice(0, -1));
    requireWritable(parent);
    const folder = await deps.metadata.createFolder(parent.ownerId, parent.node?.id ?? null, name);
    await announceBoth(deps, userId, parent);
    res.status(201).json(toEntry(folder, path));
  });

  // Many `mkdir -p` at once (a new tree's folders): several in flight, so that their
  // writes share the store's group commits instead of one commit (and fsync) each.
  router.post('/mkdirs', write, async (req, res) => {
    const { paths } = mkdirsBodySchema.parse(req.body);
    const userId = ownerOf(req);
    const changed = new Set<string>();
    const made = await runPool(paths, MKDIRS_IN_FLIGHT, async (raw) => {
      const segments = splitPath(raw);
      if (segments.length === 0) return { entry: rootEntry(deps.clock.now()), created: false };
      return mkdirP(userId, segments, changed);
    });
    // Once per owner whose tree changed, not once per folder.
    await announceAll(deps, changed);
    const items: MkdirsResponse['items'] = made.map((r, i) => {
      const path = paths[i] as string;
      if (r.ok) return { path, entry: r.value.entry };
      // Only what a path itself can cause is its item's error; anything else fails the request.
      if (!(r.error instanceof AppError)) throw r.error;
      return { path, error: { code: r.error.code, message: r.error.message } };
    });
    res.json({ items } satisfies MkdirsResponse);
  });

  /**
   * mkdir -p of `segments` (not the root): the folder, and whether it was made now. The
   * owners whose trees changed go into `changed`, for the caller to announce.
   */
  async function mkdirP(
    userId: string,
    segments: readonly string[],
    changed: Set<string>,
  ): Promise<{ entry: Entry; created: boolean }> {
    const path = pathFrom(segments);
    const found = await placeOrNull(deps, userId, segments);
    if (found?.node?.kind === 'folder')
      return { entry: placeEntry({ ...found, node: found.node }), created: false };
    if (found) throw new ConflictError('NAME_CONFLICT', `A file exists at ${path}.`);
    const folder = await mkdirParents(deps, userId, segments, changed);
    return { entry: toEntry(folder, path), created: true };
  }

  router.post('/move', write, async (req, res) => {
    const body = moveBodySchema.parse(req.body);
    const from = splitPath(body.from);
    const to = target(body.to);
    const userId = ownerOf(req);
    const source = await existing(deps, userId, from);
    requireWritable(source);
    requireNotMountRoot(source);
    const parent = await folderAt(deps, userId, to.parent);
    requireWritable(parent);
    requireSameTree(source, parent);
    const moved = await deps.metadata.moveNode(
      source.ownerId,
      source.node.id,
      parent.node?.id ?? null,
      to.name,
    );
    await announceBoth(deps, userId, source);
    res.json(toEntry(moved, to.path));
  });

  router.post('/copy', write, async (req, res) => {
    const body = copyBodySchema.parse(req.body);
    const from = splitPath(body.from);
    const to = target(body.to);
    const userId = ownerOf(req);
    const source = await existing(deps, userId, from);
    const parent = await folderAt(deps, userId, to.parent);
    requireWritable(parent);
    requireSameTree(source, parent);
    try {
      const copy = await copyNode(deps, parent.ownerId, source.node, parent.node?.id ?? null, to.name);
      res.status(201).json(toEntry(copy, to.path));
    } finally {
      // A folder copy that failed half-way has still committed (and fed) what it copied.
      await announceBoth(deps, userId, parent);
    }
  });

  router.post('/delete', write, async (req, res) => {
    const body = deleteBodySchema.parse(req.body);
    const segments = splitPath(body.path);
    const userId = ownerOf(req);
    const place = await existing(deps, userId, segments);
    requireWritable(place);
    requireNotMountRoot(place);
    const trashed = await deps.metadata.trashNode(place.ownerId, place.node.id, deps.clock.now());
    await announceBoth(deps, userId, place);
    res.json(toEntry(trashed, pathFrom(segments)));
  });

  /** mkdir -p in the caller's tree, or below a mount they may write to (see `mkdirP`). */
  async function mkdirParents(
    deps: AppDeps,
    userId: string,
    segments: readonly string[],
    changed: Set<string>,
  ): Promise<TreeNode> {
    // The deepest existing ancestor decides whose tree the new folders go into.
    let found = segments.length - 1;
    let base: Place | null = await placeOrNull(deps, userId, segments.slice(0, found));
    while (base === null && found > 0) {
      found -= 1;
      base = await placeOrNull(deps, userId, segments.slice(0, found));
    }
    if (base === null || base.mount === null) {
      const id = (await ensureFolders(deps.metadata, userId, segments)) as string;
      changed.add(userId);
      return (await deps.metadata.getNode(userId, id)) as TreeNode;
    }
    if (base.node?.kind !== 'folder')
      throw new ConflictError('NAME_CONFLICT', `A file exists at ${base.path}.`);
    requireWritable(base);
    let parentId = base.node.id;
    let folder: TreeNode = base.node;
    for (const name of segments.slice(found)) {
      folder =
        (await deps.metadata.findChild(base.ownerId, parentId, name)) ??
        (await deps.metadata.createFolder(base.ownerId, parentId, name));
      if (folder.kind !== 'folder') throw new ConflictError('NAME_CONFLICT', `A file exists at ${name}.`);
      parentId = folder.id;
    }
    changed.add(base.ownerId).add(userId);
    return folder;
  }

  return router;
}
