/**
 * Blob holds and deletion claims in SQLite (`blob_holds`): see `holdBlobs` in the port.
 * Each call is one IMMEDIATE transaction, so a hold and a claim on the same blob are
 * serialized by SQLite's write lock, whichever process makes them.
 *
 * They commit with `synchronous = NORMAL` (no fsync of their own; the next durable commit
 * carries them): a hold or claim lost to a power cut belonged to a process that died
 * with it, and a lost release only leaves a hold to expire. Two or three fsyncs fewer
 * per upload.
 */
import { cachedStatement, withoutFsync, type SqliteDatabase } from '../../sqlite.js';
import type { BlobKeep } from '../../ports/metadata-store.js';
import type { SqliteTree } from './sqlite-tree.js';

export class SqliteBlobHolds {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly tree: SqliteTree,
  ) {}

  hold(holder: string, sha256s: readonly string[], now: Date, until: Date): boolean {
    return withoutFsync(this.db, () => this.holdTx(holder, sha256s, now, until));
  }

  claimDeletion(holder: string, sha256: string, now: Date, until: Date): boolean {
    return withoutFsync(this.db, () => this.claimTx(holder, sha256, now, until));
  }

  release(holder: string, now: Date): void {
    withoutFsync(this.db, () => this.releaseTx(holder, now));
  }

  private holdTx(holder: string, sha256s: readonly string[], now: Date, until: Date): boolean {
    const claimed = cachedStatement(
      this.db,
      `SELECT 1 FROM blob_holds WHERE sha256 = ? AND kind = 'delete' AND holder <> ? AND expires_at > ? LIMIT 1`,
    );
    const upsert = cachedStatement(
      this.db,
      `INSERT INTO blob_holds (sha256, holder, kind, expires_at) VALUES (?, ?, 'hold', ?)
         ON CONFLICT (sha256, holder) DO UPDATE SET kind = 'hold', expires_at = MAX(expires_at, excluded.expires_at)`,
    );
    return this.db
      .transaction(() => {
        for (const sha256 of sha256s)
          if (claimed.get(sha256, holder, now.getTime()) !== undefined) return false;
        for (const sha256 of sha256s) upsert.run(sha256, holder, until.getTime());
        return true;
      })
      .immediate();
  }

  private claimTx(holder: string, sha256: string, now: Date, until: Date): boolean {
    return this.db
      .transaction(() => {
        if (this.tree.isBlobReferenced(sha256, now)) return false;
        const held = cachedStatement(
          this.db,
          'SELECT 1 FROM blob_holds WHERE sha256 = ? AND holder <> ? AND expires_at > ? LIMIT 1',
        );
        if (held.get(sha256, holder, now.getTime()) !== undefined) return false;
        cachedStatement(
          this.db,
          `INSERT INTO blob_holds (sha256, holder, kind, expires_at) VALUES (?, ?, 'delete', ?)
             ON CONFLICT (sha256, holder) DO UPDATE SET kind = 'delete', expires_at = excluded.expires_at`,
        ).run(sha256, holder, until.getTime());
        return true;
      })
      .immediate();
  }

  private releaseTx(holder: string, now: Date): void {
    this.db
      .transaction(() => {
        cachedStatement(this.db, 'DELETE FROM blob_holds WHERE holder = ?').run(holder);
        cachedStatement(this.db, 'DELETE FROM blob_holds WHERE expires_at <= ?').run(now.getTime());
      })
      .immediate();
  }
}

/** Keeps (`blob_keeps`): blobs referenced until a time. See `keepBlob` in the port. */
export function keepBlob(db: SqliteDatabase, holder: string, sha256: string, until: Date): void {
  cachedStatement(
    db,
    `INSERT INTO blob_keeps (sha256, holder, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (sha256, holder) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
  ).run(sha256, holder, until.getTime());
}

export function listExpiredBlobKeeps(db: SqliteDatabase, now: Date, limit: number): BlobKeep[] {
  const rows = cachedStatement(
    db,
    'SELECT sha256, holder, expires_at FROM blob_keeps WHERE expires_at <= ? ORDER BY expires_at LIMIT ?',
  ).all(now.getTime(), limit) as Array<{ sha256: string; holder: string; expires_at: number }>;
  return rows.map((r) => ({ holder: r.holder, sha256: r.sha256, until: new Date(r.expires_at) }));
}

export function dropBlobKeep(db: SqliteDatabase, holder: string, sha256: string): void {
  cachedStatement(db, 'DELETE FROM blob_keeps WHERE sha256 = ? AND holder = ?').run(sha256, holder);
}
