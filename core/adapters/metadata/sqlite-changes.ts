/**
 * The per-owner change feed in SQLite. `appendChangeTx` must run inside the transaction
 * of the mutation it records: it bumps `users.change_seq` there, so the seq is allocated
 * and the change becomes visible in the same commit — gapless and in commit order.
 */
import { NotFoundError } from '../../../contract/errors.js';
import type { SqliteDatabase } from '../sqlite/database.js';
import type { Change, ChangeKind } from '../../ports/metadata-store.js';
import { toChange, type ChangeRow } from './sqlite-rows.js';

/** Appends a change; call inside an open transaction. Throws `NotFoundError` for an unknown owner. */
export function appendChangeTx(
  db: SqliteDatabase,
  ownerId: string,
  kind: ChangeKind,
  nodeId: string | null,
  data: Record<string, unknown>,
  now: number,
): Change {
  const bumped = db
    .prepare('UPDATE users SET change_seq = change_seq + 1 WHERE id = ? RETURNING change_seq')
    .get(ownerId) as { change_seq: number } | undefined;
  if (!bumped) throw new NotFoundError('No such user.');
  const row: ChangeRow = {
    owner_id: ownerId,
    seq: bumped.change_seq,
    kind,
    node_id: nodeId,
    data: JSON.stringify(data),
    created_at: now,
  };
  db.prepare(
    'INSERT INTO changes (owner_id, seq, kind, node_id, data, created_at) VALUES (@owner_id, @seq, @kind, @node_id, @data, @created_at)',
  ).run(row);
  return toChange(row);
}

export function listChanges(db: SqliteDatabase, ownerId: string, cursor: number, limit: number): Change[] {
  const rows = db
    .prepare('SELECT * FROM changes WHERE owner_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?')
    .all(ownerId, Math.max(0, Math.floor(cursor)), Math.max(1, Math.floor(limit))) as ChangeRow[];
  return rows.map(toChange);
}

export function latestChangeSeq(db: SqliteDatabase, ownerId: string): number {
  const row = db.prepare('SELECT change_seq FROM users WHERE id = ?').get(ownerId) as
    { change_seq: number } | undefined;
  return row?.change_seq ?? 0;
}
