/**
 * How nodes, revisions and changes look on the wire (see `contract/schemas/files.ts`).
 */
import type { ChangeBody, Entry, EntryField, RevisionBody } from '../../contract/schemas/files.js';
import type { Change, FileRevision, TreeNode } from '../../core/ports/metadata-store.js';

/** Joins a folder path and a child name: `('/', 'a')` → `/a`, `('/a', 'b')` → `/a/b`. */
export function joinPath(folder: string, name: string): string {
  return folder === '/' || folder === '' ? `/${name}` : `${folder.replace(/\/+$/u, '')}/${name}`;
}

export function toEntry(node: TreeNode, path: string): Entry {
  return {
    id: node.id,
    name: node.name,
    path,
    parentId: node.parentId,
    kind: node.kind,
    size: node.size,
    sha256: node.sha256,
    mtime: node.mtime,
    revision: node.revision,
    status: node.status,
    mediaType: node.mediaType,
    trashedAt: node.trashedAt?.toISOString() ?? null,
    createdAt: node.createdAt.toISOString(),
    updatedAt: node.updatedAt.toISOString(),
  };
}

/** How each field of an `Entry` is read off a node (`toEntry`, field by field). */
const ENTRY_FIELDS: { [K in EntryField]: (node: TreeNode, path: string) => Entry[K] } = {
  id: (n) => n.id,
  name: (n) => n.name,
  path: (_, path) => path,
  parentId: (n) => n.parentId,
  kind: (n) => n.kind,
  size: (n) => n.size,
  sha256: (n) => n.sha256,
  mtime: (n) => n.mtime,
  revision: (n) => n.revision,
  status: (n) => n.status,
  mediaType: (n) => n.mediaType,
  trashedAt: (n) => n.trashedAt?.toISOString() ?? null,
  createdAt: (n) => n.createdAt.toISOString(),
  updatedAt: (n) => n.updatedAt.toISOString(),
};

/**
 * The given fields of `toEntry(node, path)`, in that order (a field named twice comes
 * once), computing only those: a tree of 5,000 entries asked for four fields skipped
 * 15,000 date formats and the whole entries.
 */
export function pickEntry(node: TreeNode, path: string, fields: readonly EntryField[]): Partial<Entry> {
  const out: Partial<Record<EntryField, unknown>> = {};
  for (const field of fields) if (!(field in out)) out[field] = ENTRY_FIELDS[field](node, path);
  return out as Partial<Entry>;
}

/** The root folder, which has no node of its own. */
export function rootEntry(now: Date): Entry {
  const at = now.toISOString();
  return {
    id: null,
    name: '',
    path: '/',
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

export function toRevisionBody(revision: FileRevision, current: number): RevisionBody {
  return {
    revision: revision.revision,
    sha256: revision.sha256,
    size: revision.size,
    mtime: revision.mtime,
    mediaType: revision.mediaType,
    createdAt: revision.createdAt.toISOString(),
    current: revision.revision === current,
  };
}

export function toChangeBody(change: Change): ChangeBody {
  return {
    seq: change.seq,
    kind: change.kind,
    nodeId: change.nodeId,
    data: change.data,
    createdAt: change.createdAt.toISOString(),
  };
}
