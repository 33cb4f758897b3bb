/**
 * The file tree in SQLite: lookups, listing, folders, file commits and moves. Trash
 * lives in `sqlite-trash.ts`. Every mutation is one IMMEDIATE transaction that also
 * appends its change, so the feed and the tree never disagree.
 */
import { ConflictError, NotFoundError } from '../../../contract/errors.js';
import { uuidv7 } from '../../domain/ids.js';
import type { Clock } from '../../domain/clock.js';
import { nameKey } from '../../domain/names.js';
import { StampedMemo, cachedStatement, type SqliteDatabase } from '../../sqlite.js';
import type {
  CommitFileInput,
  CommitFileResult,
  FileRevision,
  ListOptions,
  Page,
  TreeNode,
} from '../../ports/metadata-store.js';
import {
  DEFAULT_KEEP_REVISIONS,
  decodeChildCursor,
  encodeChildCursor,
  nodeSnapshot,
  pageLimit,
  sortKeyOf,
} from './shared.js';
import { appendChangeTx } from './sqlite-changes.js';
import { toNode, toRevision, translateSqliteError, type NodeRow, type RevisionRow } from './sqlite-rows.js';

const SORT_SQL = { name: 'name_key', size: 'size', mtime: 'COALESCE(mtime, 0)' } as const;

const INSERT_NODE = `INSERT INTO nodes (id, owner_id, parent_id, name, name_key, kind, size, sha256, media_type, mtime,
  revision, status, trashed_at, trash_root, created_at, updated_at) VALUES (@id, @owner_id, @parent_id, @name,
  @name_key, @kind, @size, @sha256, @media_type, @mtime, @revision, @status, @trashed_at, @trash_root, @created_at,
  @updated_at)`;

/** Name keys remembered by `lookupKey`; beyond it the memo starts over. */
const MAX_NAME_KEYS = 10_000;
const nameKeys = new Map<string, string>();

/**
 * `nameKey(name)`, remembered: it is a pure function but costs ICU case mapping, and
 * path lookups repeat the same few names on every request.
 */
function lookupKey(name: string): string {
  let key = nameKeys.get(name);
  if (key === undefined) {
    key = nameKey(name);
    if (nameKeys.size >= MAX_NAME_KEYS) nameKeys.clear();
    nameKeys.set(name, key);
  }
  return key;
}

/** Nodes kept in remembered listing pages, over all pages; the oldest pages go first. */
const MAX_LISTED_NODES = 20_000;

export class SqliteTree {
  /**
   * Listing pages as last read, while the database is unchanged (`StampedMemo`), at most
   * `MAX_LISTED_NODES` nodes in all. Pages and their nodes are frozen, since every caller
   * gets the same objects.
   */
  private readonly listings: StampedMemo<Page<TreeNode>>;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: Clock,
  ) {
    this.listings = new StampedMemo(db, MAX_LISTED_NODES, (page) => page.items.length);
  }

  getNode(ownerId: string, id: string): TreeNode | null {
    const row = this.nodeRow(ownerId, id);
    return row ? toNode(row) : null;
  }

  findChild(ownerId: string, parentId: string | null, name: string): TreeNode | null {
    const row = this.liveChild(ownerId, parentId, lookupKey(name));
    return row ? toNode(row) : null;
  }

  /**
   * Keyset pagination over (sort key, id), so pages stay stable while entries change.
   * Throws `NotFoundError` when `parentId` is not a folder of the owner. While the
   * database is unchanged, the same call returns the same (frozen) page again without
   * reading the rows: building 100 nodes costs far more than checking the stamp.
   */
  listChildren(ownerId: string, parentId: string | null, options: ListOptions = {}): Page<TreeNode> {
    const key = JSON.stringify([
      ownerId,
      parentId,
      options.sort ?? 'name',
      options.order ?? 'asc',
      pageLimit(options.limit),
      options.includeTrashed === true,
      options.cursor ?? null,
    ]);
    return this.listings.get(key, () => {
      const page = this.readChildren(ownerId, parentId, options);
      for (const node of page.items) Object.freeze(node);
      Object.freeze(page.items);
      return Object.freeze(page);
    });
  }

  private readChildren(ownerId: string, parentId: string | null, options: ListOptions): Page<TreeNode> {
    const sort = options.sort ?? 'name';
    const order = options.order ?? 'asc';
    const limit = pageLimit(options.limit);
    if (parentId !== null) {
      const parent = this.nodeRow(ownerId, parentId);
      if (!parent || parent.kind !== 'folder') throw new NotFoundError('No such folder.');
    }
    const expr = SORT_SQL[sort];
    const cmp = order === 'asc' ? '>' : '<';
    const dir = order === 'asc' ? 'ASC' : 'DESC';
    const where = ['owner_id = ?', 'parent_id IS ?'];
    const params: (string | number | null)[] = [ownerId, parentId];
    if (!options.includeTrashed) where.push('trashed_at IS NULL');
    if (options.cursor) {
      const c = decodeChildCursor(options.cursor, sort, order);
      where.push(`(${expr} ${cmp} ? OR (${expr} = ? AND id ${cmp} ?))`);
      params.push(c.key, c.key, c.id);
    }
    const rows = cachedStatement(
      this.db,
      `SELECT * FROM nodes WHERE ${where.join(' AND ')} ORDER BY ${expr} ${dir}, id ${dir} LIMIT ?`,
    ).all(...params, limit + 1) as NodeRow[];
    const items = rows.slice(0, limit).map(toNode);
    const last = items.at(-1);
    return {
      items,
      nextCursor:
        rows.length > limit && last
          ? encodeChildCursor({ sort, order, key: sortKeyOf(last, sort, nameKey), id: last.id })
          : null,
    };
  }

  createFolder(ownerId: string, parentId: string | null, name: string): TreeNode {
    return this.db
      .transaction((): TreeNode => {
        const now = this.clock.now().getTime();
        this.requireFolder(ownerId, parentId);
        const clean = name.normalize('NFC');
        const row: NodeRow = {
          ...this.blankNode(ownerId, parentId, clean, now),
          kind: 'folder',
          status: 'ready',
        };
        this.insertNode(row);
        const node = toNode(row);
        appendChangeTx(this.db, ownerId, 'create', node.id, nodeSnapshot(node), now);
        return node;
      })
      .immediate();
  }

  commitFile(input: CommitFileInput): CommitFileResult {
    return this.db.transaction((): CommitFileResult => this.commitFileInTransaction(input)).immediate();
  }

  listRevisions(ownerId: string, fileId: string): FileRevision[] {
    const node = this.nodeRow(ownerId, fileId);
    if (!node) throw new NotFoundError('No such file.');
    const rows = cachedStatement(
      this.db,
      'SELECT * FROM file_revisions WHERE file_id = ? ORDER BY revision DESC',
    ).all(fileId) as RevisionRow[];
    return rows.map(toRevision);
  }

  moveNode(ownerId: string, id: string, parentId: string | null, name: string): TreeNode {
    return this.db
      .transaction((): TreeNode => {
        const now = this.clock.now().getTime();
        const row = this.nodeRow(ownerId, id);
        if (!row || row.trashed_at !== null) throw new NotFoundError('No such item.');
        this.requireFolder(ownerId, parentId);
        if (row.kind === 'folder' && parentId !== null && this.isSelfOrDescendant(id, parentId)) {
          throw new ConflictError(
            'CONFLICT',
            'A folder cannot be moved into itself or one of its subfolders.',
          );
        }
        const clean = name.normalize('NFC');
        const moved: NodeRow = {
          ...row,
          parent_id: parentId,
          name: clean,
          name_key: nameKey(clean),
          updated_at: now,
        };
        try {
          cachedStatement(
            this.db,
            'UPDATE nodes SET parent_id = @parent_id, name = @name, name_key = @name_key, updated_at = @updated_at WHERE id = @id',
          ).run(moved);
        } catch (err) {
          translateSqliteError(err, 'NAME_CONFLICT');
        }
        const node = toNode(moved);
        appendChangeTx(
          this.db,
          ownerId,
          'move',
          id,
          { ...nodeSnapshot(node), from: { parentId: row.parent_id, name: row.name } },
          now,
        );
        return node;
      })
      .immediate();
  }

  /** A revision's content, a done transcode's poster or preview, or kept until after `now` (see the port). */
  isBlobReferenced(sha256: string, now: Date = this.clock.now()): boolean {
    return (
      cachedStatement(
        this.db,
        `SELECT 1 FROM file_revisions WHERE sha256 = @sha256
         UNION ALL SELECT 1 FROM transcodes WHERE poster_sha256 = @sha256 AND status = 'done'
         UNION ALL SELECT 1 FROM transcodes WHERE preview_sha256 = @sha256 AND status = 'done'
         UNION ALL SELECT 1 FROM blob_keeps WHERE sha256 = @sha256 AND expires_at > @now
         LIMIT 1`,
      ).get({ sha256, now: now.getTime() }) !== undefined
    );
  }

  /** Prefers a live file over one in the trash; both keep the blob alive. */
  findFileBySha256(ownerId: string, sha256: string): TreeNode | null {
    const row = cachedStatement(
      this.db,
      `SELECT * FROM nodes WHERE owner_id = ? AND sha256 = ? AND kind = 'file' AND status = 'ready'
         ORDER BY trashed_at IS NOT NULL, updated_at DESC LIMIT 1`,
    ).get(ownerId, sha256) as NodeRow | undefined;
    return row ? toNode(row) : null;
  }

  /** The owner's node (trashed or not), or undefined for a missing or foreign id. */
  nodeRow(ownerId: string, id: string): NodeRow | undefined {
    return cachedStatement(this.db, 'SELECT * FROM nodes WHERE id = ? AND owner_id = ?').get(id, ownerId) as
      NodeRow | undefined;
  }

  /** Throws `NotFoundError` unless `parentId` is the root or a live folder of the owner. */
  requireFolder(ownerId: string, parentId: string | null): void {
    if (parentId === null) return;
    const parent = this.nodeRow(ownerId, parentId);
    if (!parent || parent.trashed_at !== null || parent.kind !== 'folder')
      throw new NotFoundError('No such folder.');
  }

  /**
   * `commitFile` inside the caller's transaction, with no savepoint of its own: a throw
   * may leave part of its writes, which the caller must roll back (`commitUploads` does).
   */
  commitFileInTransaction(input: CommitFileInput): CommitFileResult {
    const now = this.clock.now().getTime();
    const keep = Math.max(1, Math.floor(input.keepRevisions ?? DEFAULT_KEEP_REVISIONS));
    // Idempotency is looked up across the owner's files, so a retry finds its revision
    // even when the file was renamed or moved after the first commit.
    const earlier = cachedStatement(
      this.db,
      `SELECT r.* FROM file_revisions r JOIN nodes n ON n.id = r.file_id
         WHERE n.owner_id = ? AND r.source_id = ? LIMIT 1`,
    ).get(input.ownerId, input.sourceId) as RevisionRow | undefined;
    if (earlier) {
      const node = this.nodeRow(input.ownerId, earlier.file_id) as NodeRow;
      return { node: toNode(node), revision: toRevision(earlier), duplicate: true, droppedBlobs: [] };
    }
    this.requireFolder(input.ownerId, input.parentId);
    const name = input.name.normalize('NFC');
    const existing = this.liveChild(input.ownerId, input.parentId, lookupKey(name));
    if (existing?.kind === 'folder')
      throw new ConflictError('NAME_CONFLICT', 'A folder with that name exists.');
    if (input.baseRevision !== undefined && input.baseRevision !== (existing?.revision ?? 0)) {
      throw new ConflictError(
        'REVISION_CONFLICT',
        `The file is at revision ${existing?.revision ?? 0}, not ${input.baseRevision}.`,
      );
    }
    const fields = {
      size: input.size,
      sha256: input.sha256,
      media_type: input.mediaType,
      mtime: input.mtime,
      status: 'ready' as const,
      updated_at: now,
    };
    let row: NodeRow;
    if (existing) {
      row = { ...existing, ...fields, revision: existing.revision + 1 };
      cachedStatement(
        this.db,
        `UPDATE nodes SET size = @size, sha256 = @sha256, media_type = @media_type, mtime = @mtime,
           revision = @revision, status = @status, updated_at = @updated_at WHERE id = @id`,
      ).run(row);
    } else {
      row = {
        ...this.blankNode(input.ownerId, input.parentId, name, now),
        ...fields,
        kind: 'file',
        revision: 1,
      };
      this.insertNode(row);
    }
    const revision: RevisionRow = {
      file_id: row.id,
      revision: row.revision,
      sha256: input.sha256,
      size: input.size,
      mtime: input.mtime,
      media_type: input.mediaType,
      source_id: input.sourceId,
      created_at: now,
    };
    cachedStatement(
      this.db,
      `INSERT INTO file_revisions (file_id, revision, sha256, size, mtime, media_type, source_id, created_at)
         VALUES (@file_id, @revision, @sha256, @size, @mtime, @media_type, @source_id, @created_at)`,
    ).run(revision);
    // Revisions are numbered from 1 without repeats: a file at revision `keep` or lower
    // has no more than `keep` of them (every new file), and nothing to drop.
    const dropped =
      row.revision <= keep
        ? []
        : (cachedStatement(
            this.db,
            'SELECT revision, sha256 FROM file_revisions WHERE file_id = ? ORDER BY revision DESC LIMIT -1 OFFSET ?',
          ).all(row.id, keep) as { revision: number; sha256: string }[]);
    if (dropped.length > 0) {
      const newestDropped = Math.max(...dropped.map((d) => d.revision));
      cachedStatement(this.db, 'DELETE FROM file_revisions WHERE file_id = ? AND revision <= ?').run(
        row.id,
        newestDropped,
      );
    }
    cachedStatement(
      this.db,
      'UPDATE users SET storage_used = storage_used + ?, updated_at = ? WHERE id = ?',
    ).run(input.size - (existing?.size ?? 0), now, input.ownerId);
    const node = toNode(row);
    appendChangeTx(this.db, input.ownerId, existing ? 'update' : 'create', node.id, nodeSnapshot(node), now);
    return {
      node,
      revision: toRevision(revision),
      duplicate: false,
      droppedBlobs: [...new Set(dropped.map((d) => d.sha256))],
    };
  }

  /**
   * Written against the unique index `nodes_live_name (owner_id, COALESCE(parent_id, ''),
   * name_key) WHERE trashed_at IS NULL`, so it is one index probe; `parent_id IS ?` could
   * only use `nodes_parent` and scanned every child of the folder.
   */
  private liveChild(ownerId: string, parentId: string | null, key: string): NodeRow | undefined {
    // '' stands for the root in the index: no real id may look like it.
    if (parentId === '') return undefined;
    return cachedStatement(
      this.db,
      "SELECT * FROM nodes WHERE owner_id = ? AND COALESCE(parent_id, '') = ? AND name_key = ? AND trashed_at IS NULL",
    ).get(ownerId, parentId ?? '', key) as NodeRow | undefined;
  }

  private isSelfOrDescendant(id: string, candidate: string): boolean {
    const hit = cachedStatement(
      this.db,
      `WITH RECURSIVE up(id, parent_id) AS (
           SELECT id, parent_id FROM nodes WHERE id = ?
           UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id
         ) SELECT 1 FROM up WHERE id = ? LIMIT 1`,
    ).get(candidate, id);
    return hit !== undefined;
  }

  private blankNode(ownerId: string, parentId: string | null, name: string, now: number): NodeRow {
    return {
      id: uuidv7(),
      owner_id: ownerId,
      parent_id: parentId,
      name,
      name_key: nameKey(name),
      kind: 'folder',
      size: 0,
      sha256: null,
      media_type: null,
      mtime: null,
      revision: 0,
      status: 'ready',
      trashed_at: null,
      trash_root: null,
      created_at: now,
      updated_at: now,
    };
  }

  private insertNode(row: NodeRow): void {
    try {
      cachedStatement(this.db, INSERT_NODE).run(row);
    } catch (err) {
      translateSqliteError(err, 'NAME_CONFLICT');
    }
  }
}
