/**
 * Folders shared with a user appear in their namespace under `/Shared/<name>`.
 *
 * A mount is an unrevoked user share whose item is alive. `<name>` is the shared
 * item's current name; when two mounts would have the same name (up to case), the
 * older share keeps it and the younger gets ` (<first 8 characters of the share id>)`
 * appended, so each path stays the same for as long as both shares exist.
 *
 * Everything under a mount lives in the owner's tree: reads and writes go to the
 * owner's nodes (and the owner's quota), checked here to be inside the mount. A node
 * outside every mount of the caller is not found, exactly like a missing one.
 */
import { AppError, ConflictError, NotFoundError } from '../../contract/errors.js';
import { nameKey, splitPath } from '../../core/domain/names.js';
import type { Share, TreeNode } from '../../core/ports/metadata-store.js';
import { resolveFolderId } from '../../core/tree.js';
import type { AppDeps } from '../deps.js';

/** The first segment of every shared path. */
export const SHARED_ROOT = 'Shared';

export interface Mount {
  share: Share;
  /** The shared item in the owner's tree. */
  node: TreeNode;
  /** The name under `/Shared`. */
  name: string;
}

export interface SharedTarget {
  mount: Mount;
  /** Owner of everything under the mount. */
  ownerId: string;
  node: TreeNode;
  /** The path in the caller's namespace, `/Shared/<name>/…`. */
  path: string;
}

type Deps = Pick<AppDeps, 'metadata' | 'clock'>;

/** True when the path is `/Shared` or below it (compared like names: up to case). */
export function isSharedPath(segments: readonly string[]): boolean {
  return segments.length > 0 && nameKey(segments[0] ?? '') === nameKey(SHARED_ROOT);
}

/** The caller's mounts, oldest share first. */
export async function listMounts(deps: Deps, userId: string): Promise<Mount[]> {
  const now = deps.clock.now();
  const shares = (await deps.metadata.listSharesWithUser(userId))
    .filter((s) => s.revokedAt === null && (s.expiresAt === null || s.expiresAt > now))
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
  const mounts: Mount[] = [];
  const taken = new Set<string>();
  for (const share of shares) {
    const node = await deps.metadata.getNode(share.ownerId, share.nodeId);
    if (node === null || node.trashedAt !== null) continue;
    let name = node.name;
    if (taken.has(nameKey(name))) name = `${node.name} (${share.id.slice(0, 8)})`;
    taken.add(nameKey(name));
    mounts.push({ share, node, name });
  }
  return mounts;
}

/**
 * The node at `/Shared/<name>/…` (at least two segments), or `null` when the path is
 * not inside one of the caller's mounts. A missing item inside a mount is `NotFoundError`.
 */
export async function resolveShared(
  deps: Deps,
  userId: string,
  segments: readonly string[],
): Promise<SharedTarget | null> {
  if (segments.length < 2 || !isSharedPath(segments)) return null;
  const key = nameKey(segments[1] ?? '');
  const mount = (await listMounts(deps, userId)).find((m) => nameKey(m.name) === key);
  if (!mount) return null;
  const ownerId = mount.share.ownerId;
  let node = mount.node;
  for (const segment of segments.slice(2)) {
    if (node.kind !== 'folder') throw new NotFoundError(`No such folder: ${node.name}`);
    const child = await deps.metadata.findChild(ownerId, node.id, segment);
    if (!child) throw new NotFoundError('Not found.');
    node = child;
  }
  return { mount, ownerId, node, path: `/${[SHARED_ROOT, mount.name, ...segments.slice(2)].join('/')}` };
}

/** 403 `FORBIDDEN` unless the mount lets the caller write. */
export function requireEditor(mount: Mount): void {
  if (mount.share.role !== 'editor')
    throw new AppError('FORBIDDEN', 'This folder is shared with you read-only.');
}

/**
 * A node by id that the caller sees through one of their mounts (inside the shared
 * folder, not trashed), with its path in the caller's namespace; `null` otherwise.
 */
export async function findSharedNode(
  deps: Deps,
  userId: string,
  nodeId: string,
): Promise<SharedTarget | null> {
  for (const mount of await listMounts(deps, userId)) {
    const ownerId = mount.share.ownerId;
    const node = await deps.metadata.getNode(ownerId, nodeId);
    if (node === null || node.trashedAt !== null) continue;
    const names: string[] = [];
    let current: TreeNode | null = node;
    for (let depth = 0; current !== null && depth < 1000; depth++) {
      if (current.id === mount.node.id) {
        const path = `/${[SHARED_ROOT, mount.name, ...names.reverse()].join('/')}`;
        return { mount, ownerId, node, path };
      }
      names.push(current.name);
      current = current.parentId === null ? null : await deps.metadata.getNode(ownerId, current.parentId);
    }
  }
  return null;
}

/**
 * Where an upload to the folder at `path` (validated here: 400 for a bad name) goes: the caller's own folder, or — under
 * `/Shared/<name>` — the owner's folder when the caller is an editor of that share
 * (403 `FORBIDDEN` for a viewer; a path under no mount resolves in the caller's own
 * tree, so a stranger gets 404). `folderId` is
 * `null` for the caller's root. The file counts against `ownerId`'s quota.
 */
export async function resolveWritableFolder(
  deps: Deps,
  userId: string,
  path: string,
): Promise<{ ownerId: string; folderId: string | null }> {
  const segments = splitPath(path);
  const target = await resolveShared(deps, userId, segments);
  if (target === null) {
    // Not under a mount: the caller's own tree (a real `/Shared` folder of theirs included).
    return {
      ownerId: userId,
      folderId: await resolveFolderId(deps.metadata, userId, `/${segments.join('/')}`),
    };
  }
  requireEditor(target.mount);
  if (target.node.kind !== 'folder') throw new AppError('CONFLICT', `Not a folder: ${target.path}`);
  return { ownerId: target.ownerId, folderId: target.node.id };
}

/** Where a new file goes: `folders` (created when missing) below `baseId` in `ownerId`'s tree. */
export interface UploadPlace {
  /** Whose tree (and quota) the file goes into. */
  ownerId: string;
  /** The folder `folders` start in; `null` for the owner's root. */
  baseId: string | null;
  /** Folder names below `baseId`, from the top down; missing ones are created. */
  folders: string[];
  name: string;
}

/**
 * The place of an upload to `folders`/`name` (validated segments) in the caller's
 * namespace. Outside `/Shared` it is the caller's own tree. Under `/Shared/<name>/…` it
 * is the owner's shared folder when the caller is an editor of that share (403
 * `FORBIDDEN` for a viewer; 409 when the shared item is a file) and only the folders
 * below the mount may be created; with no such mount it is the caller's own
 * `/Shared/<name>` folder, which must exist (404 otherwise, as for a stranger). A file
 * named like a mount directly in `/Shared` cannot be uploaded (409). Nothing is
 * created here.
 */
export async function resolveUploadPlace(
  deps: Deps,
  userId: string,
  folders: readonly string[],
  name: string,
): Promise<UploadPlace> {
  if (!isSharedPath(folders)) return { ownerId: userId, baseId: null, folders: [...folders], name };
  if (folders.length === 1) {
    // `/Shared/<name>` itself: the file would take the place of a mount.
    const mount = (await listMounts(deps, userId)).find((m) => nameKey(m.name) === nameKey(name));
    if (mount) {
      requireEditor(mount);
      if (mount.node.kind === 'folder')
        throw new ConflictError('NAME_CONFLICT', `A folder named "${mount.name}" exists.`);
      throw new AppError('CONFLICT', `/${SHARED_ROOT}/${mount.name} is a shared file.`);
    }
    return { ownerId: userId, baseId: null, folders: [...folders], name };
  }
  const { ownerId, folderId } = await resolveWritableFolder(
    deps,
    userId,
    `/${folders.slice(0, 2).join('/')}`,
  );
  return { ownerId, baseId: folderId, folders: folders.slice(2), name };
}

/**
 * For an upload made by an editor into a shared folder (`uploaderId` ≠ `ownerId`):
 * throws unless the uploader still may write to its target folder — 404 when the share
 * was revoked (or the folder left it), 403 when the role became `viewer`. Own uploads pass.
 */
export async function requireUploadAccess(
  deps: Deps,
  upload: { ownerId: string; uploaderId: string; parentId: string | null },
): Promise<void> {
  if (upload.uploaderId === upload.ownerId) return;
  const target =
    upload.parentId === null ? null : await findSharedNode(deps, upload.uploaderId, upload.parentId);
  if (target === null || target.ownerId !== upload.ownerId)
    throw new NotFoundError('The target folder is no longer shared with you.');
  requireEditor(target.mount);
}

/** The path of a shared upload's target folder as its uploader sees it, or null when it is gone. */
export async function sharedFolderPath(
  deps: Deps,
  uploaderId: string,
  ownerId: string,
  folderId: string,
): Promise<string | null> {
  const target = await findSharedNode(deps, uploaderId, folderId);
  return target !== null && target.ownerId === ownerId ? target.path : null;
}
