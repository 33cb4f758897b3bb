/**
 * Copying within an owner's tree. A copied file is a new node whose first revision
 * shares the original's blob (content-addressed, so no bytes are copied); a folder is
 * copied recursively. Quota is checked once for the whole copy before anything is written.
 * The blobs are held while the copy commits its references (`core/blob-holds.ts`), and
 * each is checked to be there under the hold: a purge of the original meanwhile cannot
 * leave a copy pointing at nothing.
 */
import { randomUUID } from 'node:crypto';
import { AppError, ConflictError, NotFoundError } from '../../contract/errors.js';
import { holdBlobs, withBlobHold } from '../../core/blob-holds.js';
import type { Clock } from '../../core/domain/clock.js';
import type { BlobStore } from '../../core/ports/blob-store.js';
import type { MetadataStore, TreeNode } from '../../core/ports/metadata-store.js';

type CopyDeps = { metadata: MetadataStore; blobs: BlobStore; clock: Clock };

/** The blobs one copy holds: its holder, the sha256s it holds, and those seen present under the hold. */
interface Held {
  holder: string;
  held: Set<string>;
  present: Set<string>;
}

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

/**
 * Bytes the copy of `source` adds to the owner's usage, and the blobs it will reference.
 * Refuses a subtree holding files that are not ready.
 */
async function contentOf(
  metadata: MetadataStore,
  ownerId: string,
  source: TreeNode,
): Promise<{ bytes: number; sha256s: Set<string> }> {
  const sha256s = new Set<string>();
  let bytes = 0;
  const add = (node: TreeNode): void => {
    if (node.status !== 'ready') throw new AppError('CONFLICT', `"${node.name}" is not ready yet.`);
    bytes += node.size;
    if (node.sha256 !== null) sha256s.add(node.sha256);
  };
  if (source.kind === 'file') add(source);
  else
    for await (const node of descendants(metadata, ownerId, source.id)) if (node.kind === 'file') add(node);
  return { bytes, sha256s };
}

/** Holds `sha256` for this copy if not yet, and checks that its blob is there (410 `GONE` for `name` if not). */
async function present(deps: CopyDeps, held: Held, sha256: string, name: string): Promise<void> {
  if (held.present.has(sha256)) return;
  if (!held.held.has(sha256)) {
    await holdBlobs(deps, held.holder, [sha256]);
    held.held.add(sha256);
  }
  if ((await deps.blobs.stat(sha256)) === null)
    throw new AppError('GONE', `The content of "${name}" is gone.`);
  held.present.add(sha256);
}

async function copyFile(
  deps: CopyDeps,
  held: Held,
  ownerId: string,
  file: TreeNode,
  parentId: string | null,
  name: string,
): Promise<TreeNode> {
  if (file.sha256 === null) throw new AppError('CONFLICT', `"${file.name}" has no content yet.`);
  await present(deps, held, file.sha256, file.name);
  try {
    const { node } = await deps.metadata.commitFile({
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
  deps: CopyDeps,
  held: Held,
  ownerId: string,
  source: TreeNode,
  parentId: string | null,
  name: string,
): Promise<TreeNode> {
  if (source.kind === 'file') return copyFile(deps, held, ownerId, source, parentId, name);
  const folder = await deps.metadata.createFolder(ownerId, parentId, name);
  let cursor: string | null = null;
  do {
    const page = await deps.metadata.listChildren(ownerId, source.id, { limit: PAGE, cursor });
    for (const child of page.items) await copyInto(deps, held, ownerId, child, folder.id, child.name);
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
  deps: CopyDeps,
  ownerId: string,
  source: TreeNode,
  parentId: string | null,
  name: string,
): Promise<TreeNode> {
  const { metadata } = deps;
  if (source.kind === 'folder' && (await isWithin(metadata, ownerId, parentId, source.id))) {
    throw new ConflictError('CONFLICT', 'A folder cannot be copied into itself or one of its subfolders.');
  }
  if (await metadata.findChild(ownerId, parentId, name)) {
    throw new ConflictError('NAME_CONFLICT', 'An item with that name already exists.');
  }
  const { bytes, sha256s } = await contentOf(metadata, ownerId, source);
  const user = await metadata.getUserById(ownerId);
  if (!user) throw new NotFoundError('No such user.');
  if (user.storageUsed + bytes > user.storageQuota) throw new AppError('QUOTA_EXCEEDED');
  const held: Held = { holder: `copy:${randomUUID()}`, held: sha256s, present: new Set() };
  // Every blob known now in one hold; a file that appears in the source meanwhile is held
  // when it is reached.
  return withBlobHold(deps, held.holder, [...sha256s], () =>
    copyInto(deps, held, ownerId, source, parentId, name),
  );
}
