/**
 * The owner's trash: every node that was trashed on its own (not along with a trashed
 * parent), newest first, with the path it had.
 *
 * The MetadataStore port has no owner-scoped trash index yet, so this walks the owner's
 * tree (live and trashed folders) with `listChildren(includeTrashed)`: O(nodes of the
 * owner). A node counts as a trash root when it is trashed and its parent is live, or its
 * parent was trashed at a different moment (it went to the trash separately, earlier).
 */
import { AppError } from '../../contract/errors.js';
import type { Entry } from '../../contract/schemas/files.js';
import type { MetadataStore, TreeNode } from '../../core/ports/metadata-store.js';
import { joinPath, toEntry } from './entry.js';

const PAGE = 1000;

async function collect(
  metadata: MetadataStore,
  ownerId: string,
  folderId: string | null,
  folderPath: string,
  folderTrashedAt: number | null,
  out: Entry[],
): Promise<void> {
  let cursor: string | null = null;
  do {
    const page = await metadata.listChildren(ownerId, folderId, {
      limit: PAGE,
      cursor,
      includeTrashed: true,
    });
    for (const node of page.items) {
      const path = joinPath(folderPath, node.name);
      const trashedAt = node.trashedAt?.getTime() ?? null;
      if (trashedAt !== null && trashedAt !== folderTrashedAt) out.push(toEntry(node, path));
      if (node.kind === 'folder') await collect(metadata, ownerId, node.id, path, trashedAt, out);
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
}

/** One page of the trash; `cursor` is the opaque value of the previous page's `nextCursor`. */
export async function listTrash(
  metadata: MetadataStore,
  ownerId: string,
  options: { limit: number; cursor?: string | undefined },
): Promise<{ items: Entry[]; nextCursor: string | null }> {
  const offset = options.cursor === undefined ? 0 : decodeOffset(options.cursor);
  const all: Entry[] = [];
  await collect(metadata, ownerId, null, '/', null, all);
  all.sort(
    (a, b) => (b.trashedAt ?? '').localeCompare(a.trashedAt ?? '') || (a.id ?? '').localeCompare(b.id ?? ''),
  );
  const items = all.slice(offset, offset + options.limit);
  const next = offset + items.length;
  return { items, nextCursor: next < all.length ? Buffer.from(String(next)).toString('base64url') : null };
}

function decodeOffset(cursor: string): number {
  const value = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Number.isSafeInteger(value) || value < 0)
    throw new AppError('BAD_REQUEST', 'The cursor is not valid.');
  return value;
}

/** True when `node` may be purged or restored through the trash routes. */
export function isTrashed(node: TreeNode | null): node is TreeNode {
  return node !== null && node.trashedAt !== null;
}
