/**
 * Path resolution for the fs routes across the caller's own tree and the folders shared
 * with them (`/Shared/<name>/…`, see `mounts.ts`). A place names the owner whose tree
 * holds the node, so handlers call the store with the right owner, and the mount (if
 * any), so writes can be checked against the share's role.
 */
import type { Entry } from '../../contract/schemas/files.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { resolvePath } from '../../core/tree.js';
import { AppError } from '../../contract/errors.js';
import type { AppDeps } from '../deps.js';
import { toEntry } from '../files/entry.js';
import { requireEditor, resolveShared, SHARED_ROOT, type Mount } from './mounts.js';

export interface Place {
  /** Whose tree the node is in. */
  ownerId: string;
  /** `null` for the caller's root. */
  node: TreeNode | null;
  /** The path as the caller sees it. */
  path: string;
  /** Set when the node is inside a folder shared with the caller. */
  mount: Mount | null;
}

type Deps = Pick<AppDeps, 'metadata' | 'clock'>;

/** The node at `segments` in the caller's namespace; `NotFoundError` when missing. */
export async function placeAt(deps: Deps, userId: string, segments: readonly string[]): Promise<Place> {
  const shared = await resolveShared(deps, userId, segments);
  if (shared) return { ownerId: shared.ownerId, node: shared.node, path: shared.path, mount: shared.mount };
  const path = `/${segments.join('/')}`;
  return { ownerId: userId, node: await resolvePath(deps.metadata, userId, path), path, mount: null };
}

/** Like `placeAt`, but the node must be a folder (409 `CONFLICT` for a file). */
export async function folderAt(deps: Deps, userId: string, segments: readonly string[]): Promise<Place> {
  const place = await placeAt(deps, userId, segments);
  if (place.node && place.node.kind !== 'folder')
    throw new AppError('CONFLICT', `Not a folder: ${place.path}`);
  return place;
}

/** 403 unless the caller may write at this place (own tree, or an editor share). */
export function requireWritable(place: Place): void {
  if (place.mount) requireEditor(place.mount);
}

/** 403 for the shared item itself: only its owner may rename, move or delete it. */
export function requireNotMountRoot(place: Place): void {
  if (place.mount && place.node?.id === place.mount.node.id)
    throw new AppError('FORBIDDEN', 'Only the owner can move or delete a shared folder.');
}

/** Both places must be in the same tree (moving or copying across owners is refused). */
export function requireSameTree(a: Place, b: Place): void {
  if (a.ownerId !== b.ownerId)
    throw new AppError(
      'CONFLICT',
      'Items cannot be moved or copied between a shared folder and other files.',
    );
}

/** The entry of a node at a place; the mount root shows its name under `/Shared`. */
export function placeEntry(place: Place & { node: TreeNode }): Entry {
  const entry = toEntry(place.node, place.path);
  return place.mount && place.node.id === place.mount.node.id ? { ...entry, name: place.mount.name } : entry;
}

/** `/Shared` itself when the caller has no folder of that name: a virtual, empty-named-id folder. */
export function sharedRootEntry(now: Date): Entry {
  const at = now.toISOString();
  return {
    id: null,
    name: SHARED_ROOT,
    path: `/${SHARED_ROOT}`,
    parentId: null,
    kind: 'folder',
    size: 0,
    sha256: null,
    mtime: null,
    revision: 0,
    status: 'ready',
    mediaType: null,
    trashedAt: null,
    createdAt: at,
    updatedAt: at,
  };
}
