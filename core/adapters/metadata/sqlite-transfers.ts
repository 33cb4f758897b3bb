/**
 * Upload sessions, the job outbox and shares in SQLite. The state changes that must not
 * race (offset CAS, finishing an upload, counting a download) are single conditional
 * statements or one IMMEDIATE transaction.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
import { cachedStatement, type SqliteDatabase } from '../../sqlite.js';
import type {
  NewOutboxEntry,
  NewShare,
  NewUploadSession,
  OutboxEntry,
  Share,
  UploadSession,
  UploadStatus,
} from '../../ports/metadata-store.js';
import {
  msOrNull,
  toOutbox,
  toShare,
  toUpload,
  translateSqliteError,
  type OutboxRow,
  type ShareRow,
  type UploadRow,
} from './sqlite-rows.js';

/** The columns `setUploadStatus` may change besides the status. */
export interface UploadStatusFields {
  error?: string | null;
  fileId?: string | null;
  revision?: number | null;
  sha256?: string;
}

export class SqliteTransfers {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: Clock,
  ) {}

  createUpload(input: NewUploadSession): UploadSession {
    const row = this.uploadRow(input, this.clock.now().getTime());
    try {
      this.insertUpload(row);
    } catch (err) {
      translateSqliteError(err);
    }
    return toUpload(row);
  }

  createUploads(inputs: readonly NewUploadSession[]): UploadSession[] {
    const now = this.clock.now().getTime();
    const rows = inputs.map((input) => this.uploadRow(input, now));
    try {
      this.db.transaction(() => rows.forEach((row) => this.insertUpload(row))).immediate();
    } catch (err) {
      translateSqliteError(err);
    }
    return rows.map(toUpload);
  }

  finishUploads(ids: readonly string[], job: NewOutboxEntry): UploadSession[] {
    return this.db
      .transaction((): UploadSession[] => {
        const now = this.clock.now().getTime();
        // Update, then read (not RETURNING: see `setUploadStatus`).
        const finish = cachedStatement(
          this.db,
          `UPDATE uploads SET status = 'processing', "offset" = length, updated_at = ?
           WHERE id = ? AND status = 'receiving'`,
        );
        const read = cachedStatement(this.db, 'SELECT * FROM uploads WHERE id = ?');
        const moved: UploadSession[] = [];
        for (const id of ids) {
          if (finish.run(now, id).changes > 0) moved.push(toUpload(read.get(id) as UploadRow));
        }
        if (moved.length > 0) this.insertOutbox(job, now);
        return moved;
      })
      .immediate();
  }

  listBatchUploads(uploaderId: string, batchId: string): UploadSession[] {
    const rows = cachedStatement(
      this.db,
      `SELECT * FROM uploads WHERE batch_id = ? AND COALESCE(uploader_id, owner_id) = ?
         ORDER BY batch_index ASC`,
    ).all(batchId, uploaderId) as UploadRow[];
    return rows.map(toUpload);
  }

  countBatchPending(uploaderId: string, batchId: string): number | null {
    const row = cachedStatement(
      this.db,
      `SELECT COUNT(*) AS total, COALESCE(SUM(status IN ('receiving', 'processing')), 0) AS pending
         FROM uploads WHERE batch_id = ? AND COALESCE(uploader_id, owner_id) = ?`,
    ).get(batchId, uploaderId) as { total: number; pending: number };
    return row.total === 0 ? null : row.pending;
  }

  private uploadRow(input: NewUploadSession, now: number): UploadRow {
    return {
      id: input.id,
      owner_id: input.ownerId,
      uploader_id: input.uploaderId,
      parent_id: input.parentId,
      name: input.name,
      length: input.length,
      offset: 0,
      sha256: input.sha256,
      mtime: input.mtime,
      base_revision: input.baseRevision,
      metadata: JSON.stringify(input.metadata),
      status: 'receiving',
      error: null,
      file_id: null,
      batch_id: input.batchId ?? null,
      batch_index: input.batchIndex ?? null,
      created_at: now,
      updated_at: now,
      expires_at: input.expiresAt.getTime(),
    };
  }

  private insertUpload(row: UploadRow): void {
    cachedStatement(
      this.db,
      `INSERT INTO uploads (id, owner_id, uploader_id, parent_id, name, length, "offset", sha256, mtime,
         base_revision, metadata, status, error, file_id, batch_id, batch_index, created_at, updated_at,
         expires_at) VALUES (@id, @owner_id, @uploader_id, @parent_id, @name, @length, @offset, @sha256,
         @mtime, @base_revision, @metadata, @status, @error, @file_id, @batch_id, @batch_index, @created_at,
         @updated_at, @expires_at)`,
    ).run(row);
  }

  getUpload(uploaderId: string, id: string): UploadSession | null {
    const row = cachedStatement(
      this.db,
      'SELECT * FROM uploads WHERE id = ? AND COALESCE(uploader_id, owner_id) = ?',
    ).get(id, uploaderId) as UploadRow | undefined;
    return row ? toUpload(row) : null;
  }

  getUploadById(id: string): UploadSession | null {
    const row = cachedStatement(this.db, 'SELECT * FROM uploads WHERE id = ?').get(id) as
      UploadRow | undefined;
    return row ? toUpload(row) : null;
  }

  advanceUpload(id: string, from: number, to: number): UploadSession | null {
    const row = cachedStatement(
      this.db,
      `UPDATE uploads SET "offset" = ?, updated_at = ?
         WHERE id = ? AND "offset" = ? AND status = 'receiving' AND ? >= "offset" AND ? <= length RETURNING *`,
    ).get(to, this.clock.now().getTime(), id, from, to, to) as UploadRow | undefined;
    return row ? toUpload(row) : null;
  }

  finishUpload(id: string, job: NewOutboxEntry): UploadSession | null {
    return this.db
      .transaction((): UploadSession | null => {
        const now = this.clock.now().getTime();
        const row = cachedStatement(
          this.db,
          `UPDATE uploads SET status = 'processing', updated_at = ?
             WHERE id = ? AND status = 'receiving' AND "offset" = length RETURNING *`,
        ).get(now, id) as UploadRow | undefined;
        if (!row) return null;
        this.insertOutbox(job, now);
        return toUpload(row);
      })
      .immediate();
  }

  setUploadStatus(id: string, status: UploadStatus, fields: UploadStatusFields = {}): UploadSession | null {
    // An update, then a read in the same transaction: `UPDATE … RETURNING` cost about
    // twice as much (see `insertChange`).
    const read = cachedStatement(this.db, 'SELECT * FROM uploads WHERE id = ?');
    const apply = (): UploadSession | null =>
      this.markUpload(id, status, fields) ? toUpload(read.get(id) as UploadRow) : null;
    // Inside a caller's transaction already (a batch commit): no savepoint per upload.
    return this.db.inTransaction ? apply() : this.db.transaction(apply)();
  }

  /**
   * `setUploadStatus` without reading the upload back: whether it exists. A batch commit
   * marks 500 uploads and reads none of them (the read and its row mapping were ~15 µs
   * per file on the 2-core VM).
   */
  markUpload(id: string, status: UploadStatus, fields: UploadStatusFields = {}): boolean {
    const sets = ['status = @status', 'updated_at = @now'];
    if (fields.error !== undefined) sets.push('error = @error');
    if (fields.fileId !== undefined) sets.push('file_id = @fileId');
    if (fields.revision !== undefined) sets.push('revision = @revision');
    if (fields.sha256 !== undefined) sets.push('sha256 = @sha256');
    const update = cachedStatement(this.db, `UPDATE uploads SET ${sets.join(', ')} WHERE id = @id`);
    return (
      update.run({
        id,
        status,
        now: this.clock.now().getTime(),
        error: fields.error ?? null,
        fileId: fields.fileId ?? null,
        revision: fields.revision ?? null,
        sha256: fields.sha256 ?? null,
      }).changes > 0
    );
  }

  listExpiredUploads(now: Date, limit: number): UploadSession[] {
    const rows = cachedStatement(
      this.db,
      "SELECT * FROM uploads WHERE status = 'receiving' AND expires_at < ? ORDER BY expires_at ASC, id ASC LIMIT ?",
    ).all(now.getTime(), Math.max(1, Math.floor(limit))) as UploadRow[];
    return rows.map(toUpload);
  }

  addOutbox(job: NewOutboxEntry): OutboxEntry {
    return this.insertOutbox(job, this.clock.now().getTime());
  }

  listOutbox(limit: number): OutboxEntry[] {
    const rows = cachedStatement(this.db, 'SELECT * FROM metadata_outbox ORDER BY pk ASC LIMIT ?').all(
      Math.max(1, Math.floor(limit)),
    ) as OutboxRow[];
    return rows.map(toOutbox);
  }

  deleteOutbox(id: string): void {
    cachedStatement(this.db, 'DELETE FROM metadata_outbox WHERE id = ?').run(id);
  }

  /** Throws `NotFoundError` when the node is not the owner's. */
  createShare(input: NewShare): Share {
    const node = cachedStatement(this.db, 'SELECT 1 FROM nodes WHERE id = ? AND owner_id = ?').get(
      input.nodeId,
      input.ownerId,
    );
    if (!node) throw new NotFoundError('No such item.');
    const row: ShareRow = {
      id: randomUUID(),
      owner_id: input.ownerId,
      node_id: input.nodeId,
      token_hash: input.tokenHash,
      grantee_id: input.granteeId,
      role: input.role,
      password_hash: input.passwordHash,
      expires_at: msOrNull(input.expiresAt),
      max_downloads: input.maxDownloads,
      downloads: 0,
      revoked_at: null,
      created_at: this.clock.now().getTime(),
    };
    try {
      cachedStatement(
        this.db,
        `INSERT INTO shares (id, owner_id, node_id, token_hash, grantee_id, role, password_hash, expires_at,
           max_downloads, downloads, revoked_at, created_at) VALUES (@id, @owner_id, @node_id, @token_hash, @grantee_id,
           @role, @password_hash, @expires_at, @max_downloads, @downloads, @revoked_at, @created_at)`,
      ).run(row);
    } catch (err) {
      translateSqliteError(err);
    }
    return toShare(row);
  }

  getShare(ownerId: string, id: string): Share | null {
    const row = cachedStatement(this.db, 'SELECT * FROM shares WHERE id = ? AND owner_id = ?').get(
      id,
      ownerId,
    ) as ShareRow | undefined;
    return row ? toShare(row) : null;
  }

  getShareByTokenHash(tokenHash: string): Share | null {
    const row = cachedStatement(this.db, 'SELECT * FROM shares WHERE token_hash = ?').get(tokenHash) as
      ShareRow | undefined;
    return row ? toShare(row) : null;
  }

  listShares(ownerId: string): Share[] {
    const rows = cachedStatement(
      this.db,
      'SELECT * FROM shares WHERE owner_id = ? ORDER BY created_at DESC, id ASC',
    ).all(ownerId) as ShareRow[];
    return rows.map(toShare);
  }

  listSharesWithUser(granteeId: string): Share[] {
    const rows = cachedStatement(
      this.db,
      'SELECT * FROM shares WHERE grantee_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id ASC',
    ).all(granteeId) as ShareRow[];
    return rows.map(toShare);
  }

  revokeShare(ownerId: string, id: string, now: Date): boolean {
    const result = cachedStatement(
      this.db,
      'UPDATE shares SET revoked_at = ? WHERE id = ? AND owner_id = ? AND revoked_at IS NULL',
    ).run(now.getTime(), id, ownerId);
    return result.changes > 0;
  }

  /** One conditional UPDATE: refused when revoked, expired or at `max_downloads`. */
  recordShareDownload(id: string): Share | null {
    const row = cachedStatement(
      this.db,
      `UPDATE shares SET downloads = downloads + 1
         WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
           AND (max_downloads IS NULL OR downloads < max_downloads) RETURNING *`,
    ).get(id, this.clock.now().getTime()) as ShareRow | undefined;
    return row ? toShare(row) : null;
  }
  markShareOpened(id: string, now: Date): boolean {
    return (
      cachedStatement(this.db, 'UPDATE shares SET opened_at = ? WHERE id = ? AND opened_at IS NULL').run(
        now.getTime(),
        id,
      ).changes > 0
    );
  }

  private insertOutbox(job: NewOutboxEntry, now: number): OutboxEntry {
    const row = {
      id: randomUUID(),
      queue: job.queue,
      payload: JSON.stringify(job.payload),
      idempotency_key: job.idempotencyKey,
      priority: job.priority,
      created_at: now,
    };
    const { pk } = cachedStatement(
      this.db,
      `INSERT INTO metadata_outbox (id, queue, payload, idempotency_key, priority, created_at)
         VALUES (@id, @queue, @payload, @idempotency_key, @priority, @created_at) RETURNING pk`,
    ).get(row) as { pk: number };
    return toOutbox({ ...row, pk });
  }
}
