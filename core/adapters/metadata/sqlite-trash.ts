/**
 * Trash in SQLite. Trashing marks a node and its live subtree with `trashed_at` and
 * `trash_root` (the trashed node), so restore brings back exactly that batch — entries
 * trashed earlier on their own stay in the trash. Purge deletes for good.
 */
import { ConflictError, NotFoundError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
import { cachedStatement, type SqliteDatabase } from '../../sqlite.js';
import type { TreeNode } from '../../ports/metadata-store.js';
import { nodeSnapshot } from './shared.js';
import { appendChangeTx } from './sqlite-changes.js';
import { toNode, translateSqliteError, type NodeRow } from './sqlite-rows.js';
import type { SqliteTree } from './sqlite-tree.js';

export class SqliteTrash {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: Clock,
    private readonly tree: SqliteTree,
  ) {}

  /** Idempotent: a node already in the trash is returned unchanged. */
  trashNode(ownerId: string, id: string, now: Date): TreeNode {
    return this.db
      .transaction((): TreeNode => {
        const row = this.tree.nodeRow(ownerId, id);
        if (!row) throw new NotFoundError('No such item.');
        if (row.trashed_at !== null) return toNode(row);
        const at = now.getTime();
        // Descends only through live entries: a subfolder trashed earlier keeps its own batch.
        cachedStatement(
          this.db,
          `WITH RECURSIVE sub(id) AS (
               SELECT ? UNION ALL SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id WHERE n.trashed_at IS NULL
             ) UPDATE nodes SET trashed_at = ?, trash_root = ?, updated_at = ? WHERE id IN (SELECT id FROM sub)`,
        ).run(id, at, id, at);
        const node = toNode({ ...row, trashed_at: at, trash_root: id, updated_at: at });
        appendChangeTx(this.db, ownerId, 'delete', id, nodeSnapshot(node), at);
        return node;
      })
      .immediate();
  }

  /**
   * Restores the node and the part of its subtree trashed with it. When its parent is
   * still in the trash the node comes back in the root. Throws `NAME_CONFLICT` when a
   * live sibling took the name meanwhile; idempotent for a node that is not trashed.
   */
  restoreNode(ownerId: string, id: string): TreeNode {
    return this.db
      .transaction((): TreeNode => {
        const now = this.clock.now().getTime();
        const row = this.tree.nodeRow(ownerId, id);
        if (!row) throw new NotFoundError('No such item.');
        if (row.trashed_at === null) return toNode(row);
        let parentId = row.parent_id;
        if (parentId !== null) {
          const parent = this.tree.nodeRow(ownerId, parentId);
          if (!parent || parent.trashed_at !== null) parentId = null;
        }
        try {
          cachedStatement(
            this.db,
            'UPDATE nodes SET parent_id = ?, trashed_at = NULL, trash_root = NULL, updated_at = ? WHERE id = ?',
          ).run(parentId, now, id);
        } catch (err) {
          translateSqliteError(err, 'NAME_CONFLICT');
        }
        cachedStatement(
          this.db,
          `WITH RECURSIVE sub(id) AS (
               SELECT n.id FROM nodes n WHERE n.parent_id = ? AND n.trash_root = ?
               UNION ALL SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id WHERE n.trash_root = ?
             ) UPDATE nodes SET trashed_at = NULL, trash_root = NULL, updated_at = ? WHERE id IN (SELECT id FROM sub)`,
        ).run(id, row.trash_root, row.trash_root, now);
        const node = toNode({
          ...row,
          parent_id: parentId,
          trashed_at: null,
          trash_root: null,
          updated_at: now,
        });
        appendChangeTx(this.db, ownerId, 'restore', id, nodeSnapshot(node), now);
        return node;
      })
      .immediate();
  }

  /**
   * Deletes a trashed node with its whole subtree, revisions and shares, lowers the
   * owner's `storage_used` by the current sizes, and returns every dropped sha256.
   * Throws `CONFLICT` for a node that is not in the trash.
   */
  purgeNode(ownerId: string, id: string): { droppedBlobs: string[] } {
    return this.db
      .transaction((): { droppedBlobs: string[] } => {
        const now = this.clock.now().getTime();
        const row = this.tree.nodeRow(ownerId, id);
        if (!row) throw new NotFoundError('No such item.');
        if (row.trashed_at === null)
          throw new ConflictError('CONFLICT', 'Only items in the trash can be purged.');
        const subtree = `WITH RECURSIVE sub(id) AS (
            SELECT ? UNION ALL SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id
          )`;
        const blobs = cachedStatement(
          this.db,
          `${subtree} SELECT DISTINCT sha256 FROM file_revisions WHERE file_id IN (SELECT id FROM sub) ORDER BY sha256`,
        ).all(id) as { sha256: string }[];
        const { bytes } = cachedStatement(
          this.db,
          `${subtree} SELECT COALESCE(SUM(size), 0) AS bytes FROM nodes WHERE kind = 'file' AND id IN (SELECT id FROM sub)`,
        ).get(id) as { bytes: number };
        // One statement: the parent_id foreign key is checked when it ends, with the whole subtree gone.
        cachedStatement(this.db, `${subtree} DELETE FROM nodes WHERE id IN (SELECT id FROM sub)`).run(id);
        cachedStatement(
          this.db,
          'UPDATE users SET storage_used = MAX(0, storage_used - ?), updated_at = ? WHERE id = ?',
        ).run(bytes, now, ownerId);
        appendChangeTx(
          this.db,
          ownerId,
          'purge',
          id,
          { name: row.name, parentId: row.parent_id, kind: row.kind },
          now,
        );
        return { droppedBlobs: blobs.map((b) => b.sha256) };
      })
      .immediate();
  }

  /** Nodes trashed on their own (not with a parent) before `before`, oldest first, any owner. */
  listTrashedBefore(before: Date, limit: number): TreeNode[] {
    const rows = cachedStatement(
      this.db,
      'SELECT * FROM nodes WHERE trashed_at < ? AND trash_root = id ORDER BY trashed_at ASC, id ASC LIMIT ?',
    ).all(before.getTime(), Math.max(1, Math.floor(limit))) as NodeRow[];
    return rows.map(toNode);
  }
}
