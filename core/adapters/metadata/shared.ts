/**
 * Pieces both MetadataStore adapters share: opaque page cursors, paging limits, the
 * change snapshot of a node and the sort keys of `listChildren`.
 */
import { AppError } from '../../../contract/errors.js';
import type { ListOptions, TreeNode } from '../../ports/metadata-store.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;
export const DEFAULT_KEEP_REVISIONS = 10;

export function pageLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE;
  return Math.min(MAX_PAGE, Math.max(1, Math.floor(limit)));
}

/** Encodes a keyset position as an opaque base64url string. */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/**
 * Decodes a cursor made by `encodeCursor`, checking each listed field's type. Throws
 * `AppError('BAD_REQUEST')` for anything else, so a tampered cursor is a 400, not a 500.
 */
export function decodeCursor<K extends string>(
  cursor: string,
  fields: Record<K, 'string' | 'number'>,
): Record<K, string | number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (err) {
    throw new AppError('BAD_REQUEST', 'The cursor is not valid.', { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw new AppError('BAD_REQUEST', 'The cursor is not valid.');
  const record = parsed as Record<string, unknown>;
  const out = {} as Record<K, string | number>;
  for (const [field, type] of Object.entries(fields) as [K, 'string' | 'number'][]) {
    const value = record[field];
    if (typeof value !== type || (type === 'number' && !Number.isFinite(value))) {
      throw new AppError('BAD_REQUEST', 'The cursor is not valid.');
    }
    out[field] = value as string | number;
  }
  return out;
}

export type SortField = NonNullable<ListOptions['sort']>;
export type SortOrder = NonNullable<ListOptions['order']>;

/** The cursor of `listChildren`: the sort it was made for and the last item's key and id. */
export interface ChildCursor {
  sort: SortField;
  order: SortOrder;
  key: string | number;
  id: string;
}

export function encodeChildCursor(c: ChildCursor): string {
  return encodeCursor({ s: c.sort, o: c.order, k: c.key, i: c.id });
}

/** Decodes a `listChildren` cursor; refuses one made for another sort (`BAD_REQUEST`). */
export function decodeChildCursor(cursor: string, sort: SortField, order: SortOrder): ChildCursor {
  const raw = decodeCursor(cursor, { s: 'string', o: 'string', i: 'string' });
  const key = decodeCursor(cursor, sort === 'name' ? { k: 'string' } : { k: 'number' }).k;
  if (raw.s !== sort || raw.o !== order) {
    throw new AppError('BAD_REQUEST', 'The cursor belongs to a listing with another sort order.');
  }
  return { sort, order, key, id: String(raw.i) };
}

/** The sort key of a node: the name key for `name`, else the number (null mtime sorts as 0). */
export function sortKeyOf(
  node: TreeNode,
  sort: SortField,
  nameKeyOf: (name: string) => string,
): string | number {
  if (sort === 'name') return nameKeyOf(node.name);
  if (sort === 'size') return node.size;
  return node.mtime ?? 0;
}

/** What a change feed entry tells clients about a node. */
export function nodeSnapshot(node: TreeNode): Record<string, unknown> {
  return {
    name: node.name,
    parentId: node.parentId,
    kind: node.kind,
    revision: node.revision,
    sha256: node.sha256,
    size: node.size,
    mtime: node.mtime,
    mediaType: node.mediaType,
    status: node.status,
    trashedAt: node.trashedAt === null ? null : node.trashedAt.getTime(),
  };
}

/** Trimmed and lower-cased, as `User.email` promises. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export { FINAL_COMMIT_ERRORS, finalCommitError } from '../../ports/metadata-store.js';
