/**
 * Copying within an owner's tree. A copied file is a new node whose first revision
 * shares the original's blob (content-addressed, so no bytes are copied); a folder is
 * copied recursively. Quota is checked once for the whole copy before anything is written.
 */
import { randomUUID } from 'node:crypto';
import { AppError, ConflictError, NotFoundError } from '../../contract/errors.js';
import type { MetadataStore, TreeNode } from '../../core/ports/metadata-store.js';

const PAGE = 500;

/** Every live descendant of folder `id` (files and folders), depth first. */
async function* descendants(metadata: MetadataStore, ownerId: string, id: string): AsyncGenerator<TreeNode> {
  let cursor: string | null = null;
  do {
    const page = await metadata.listChildren(ownerId, id, { limit: PAGE, cursor });
    for (const child of page.items) {
      yield child;
      if (child.kind === 'folder') yield* descendants(metadata, ownerId, child.id);
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
}

/** True when `folderId` is `ancestorId` or lies below it. */
export async function isWithin(
  metadata: MetadataStore,
  ownerId: string,
  folderId: string | null,
  ancestorId: string,
): Promise<boolean> {
  let current = folderId;
  for (let depth = 0; current !== null && depth < 10_000; depth++) {
    if (current === ancestorId) return true;
    const node = await metadata.getNode(ownerId, current);
    current = node?.parentId ?? null;
  }
  return false;
}

/** Bytes the copy of `source` adds to the owner's usage. Refuses a subtree holding files that are not ready. */
async function bytesOf(metadata: MetadataStore, ownerId: string, source: TreeNode): Promise<number> {
  if (source.kind === 'file') {
    if (source.status !== 'ready') throw new AppError('CONFLICT', `"${source.name}" is not ready yet.`);
    return source.size;
  }
  let total = 0;
  for await (const node of descendants(metadata, ownerId, source.id)) {
    if (node.kind !== 'file') continue;
    if (node.status !== 'ready') throw new AppError('CONFLICT', `"${node.name}" is not ready yet.`);
    total += node.size;
  }
  return total;
}

async function copyFile(
  metadata: MetadataStore,
  ownerId: string,
  file: TreeNode,
  parentId: string | null,
  name: string,
): Promise<TreeNode> {
  if (file.sha256 === null) throw new AppError('CONFLICT', `"${file.name}" has no content yet.`);
  try {
    const { node } = await metadata.commitFile({
      ownerId,
      parentId,
      name,
      sha256: file.sha256,
      size: file.size,
      mtime: file.mtime,
      mediaType: file.mediaType,
      sourceId: `copy:${randomUUID()}`,
      // The target must not exist: a copy never overwrites.
      baseRevision: 0,
    });
    return node;
  } catch (err) {
    if (err instanceof ConflictError && err.code === 'REVISION_CONFLICT') {
      throw new ConflictError('NAME_CONFLICT', 'An item with that name already exists.', err);
    }
    throw err;
  }
}

async function copyInto(
  metadata: MetadataStore,
  ownerId: string,
  source: TreeNode,
  parentId: string | null,
  name: string,
): Promise<TreeNode> {
  if (source.kind === 'file') return copyFile(metadata, ownerId, source, parentId, name);
  const folder = await metadata.createFolder(ownerId, parentId, name);
  let cursor: string | null = null;
  do {
    const page = await metadata.listChildren(ownerId, source.id, { limit: PAGE, cursor });
    for (const child of page.items) await copyInto(metadata, ownerId, child, folder.id, child.name);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return folder;
}

/**
 * Copies `source` to `name` in folder `parentId` and returns the new top node.
 * Throws `CONFLICT` for a folder copied into itself and for content that is not ready,
 * `NAME_CONFLICT` when the target (or, for a file, any sibling up to case) exists,
 * `QUOTA_EXCEEDED` when the copied bytes do not fit.
 */
export async function copyNode(
  metadata: MetadataStore,
  ownerId: string,
  source: TreeNode,
  parentId: string | null,
  name: string,
): Promise<TreeNode> {
  if (source.kind === 'folder' && (await isWithin(metadata, ownerId, parentId, source.id))) {
    throw new ConflictError('CONFLICT', 'A folder cannot be copied into itself or one of its subfolders.');
  }
  if (await metadata.findChild(ownerId, parentId, name)) {
    throw new ConflictError('NAME_CONFLICT', 'An item with that name already exists.');
  }
  const bytes = await bytesOf(metadata, ownerId, source);
  const user = await metadata.getUserById(ownerId);
  if (!user) throw new NotFoundError('No such user.');
  if (user.storageUsed + bytes > user.storageQuota) throw new AppError('QUOTA_EXCEEDED');
  return copyInto(metadata, ownerId, source, parentId, name);
}
