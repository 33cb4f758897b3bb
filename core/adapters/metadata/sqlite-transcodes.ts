/**
 * Transcode outcomes in SQLite (`transcodes`, one row per source content): see
 * `putTranscode` in the port. The rows' poster and preview keep their blobs referenced
 * (`SqliteTree.isBlobReferenced`).
 */
import { cachedStatement, type SqliteDatabase } from '../../sqlite.js';
import type { TranscodeRecord } from '../../ports/metadata-store.js';

interface TranscodeRow {
  sha256: string;
  status: TranscodeRecord['status'];
  file_id: string;
  poster_sha256: string | null;
  preview_sha256: string | null;
  reason: string | null;
  updated_at: number;
}

function toRecord(row: TranscodeRow): TranscodeRecord {
  return {
    sha256: row.sha256,
    status: row.status,
    fileId: row.file_id,
    posterSha256: row.poster_sha256,
    previewSha256: row.preview_sha256,
    reason: row.reason,
    updatedAt: new Date(row.updated_at),
  };
}

export function putTranscode(db: SqliteDatabase, record: TranscodeRecord): void {
  cachedStatement(
    db,
    `INSERT INTO transcodes (sha256, status, file_id, poster_sha256, preview_sha256, reason, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET status = excluded.status, file_id = excluded.file_id,
         poster_sha256 = excluded.poster_sha256, preview_sha256 = excluded.preview_sha256,
         reason = excluded.reason, updated_at = excluded.updated_at`,
  ).run(
    record.sha256,
    record.status,
    record.fileId,
    record.posterSha256,
    record.previewSha256,
    record.reason,
    record.updatedAt.getTime(),
  );
}

export function getTranscode(db: SqliteDatabase, sha256: string): TranscodeRecord | null {
  const row = cachedStatement(db, 'SELECT * FROM transcodes WHERE sha256 = ?').get(sha256) as
    TranscodeRow | undefined;
  return row ? toRecord(row) : null;
}

export function deleteTranscode(db: SqliteDatabase, sha256: string): TranscodeRecord | null {
  const row = cachedStatement(db, 'DELETE FROM transcodes WHERE sha256 = ? RETURNING *').get(sha256) as
    TranscodeRow | undefined;
  return row ? toRecord(row) : null;
}
