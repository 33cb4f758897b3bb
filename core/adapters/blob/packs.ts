/**
 * Packs: the small blobs of a batch stored together in one file, as git's packfiles and
 * restic's packs do. A batch of 256 small files costs one create, one write, one fsync
 * and one rename instead of 256 of each, plus one fsync of the packs folder and one
 * commit of the index. The per-file fsync was the floor of a small-file sync on this
 * project's test VMs (~120 µs of CPU each, more in kernel time; see docs/performance.md).
 *
 *   <root>/packs/<id>.pack   records, each: sha256 (32 raw bytes), size (u32 BE), bytes
 *   <root>/packs/index.db    SQLite (WAL): which pack holds which blob, at which offset
 *
 * A pack is written whole to a temp file, fsynced and renamed in (so a pack at its final
 * path is complete); its blobs exist once the index commit that lists them returns. A
 * crash between the two leaves a pack no row names, removed when a store opens a day
 * later (another process may be about to commit a young one). The records are
 * self-describing: a store that finds packs but no index rebuilds the index from them.
 *
 * Deleting a packed blob removes its index row and counts its bytes as dead in its pack;
 * a pack at least half dead is rewritten with its live blobs (new pack, one commit moving
 * the rows, then the old file goes). Readers that looked a blob up just before such a move
 * find the old file gone and look again. The index is a shared SQLite file, so every
 * process on the volume (an API and separate workers) sees each commit at once.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { timeOrderedToken } from '../../domain/ids.js';
import { cachedStatement, migrate, openSqlite, type SqliteDatabase } from '../../sqlite.js';
import { isNotFound, openTemp, removeIfPresent, syncDir, writeFully } from './fs-util.js';

/** Blobs up to this size go into packs when a batch stores several (`putMany`). */
export const PACK_MAX_BLOB_BYTES = 256 * 1024;
/** A record's header: the blob's sha256 (raw) and its size (u32, big-endian). */
const RECORD_HEADER_BYTES = 36;
const PACK_NAME = /^([0-9A-Za-z_-]{8,64})\.pack$/;
const PACK_ID = /^[0-9A-Za-z_-]{8,64}$/;
/** A pack file no index row names, older than this, is a crash's left-over. */
const STALE_PACK_MS = 24 * 60 * 60 * 1000;

const MIGRATIONS = [
  `CREATE TABLE packs (
     id TEXT PRIMARY KEY,
     bytes INTEGER NOT NULL,
     dead INTEGER NOT NULL DEFAULT 0
   ) STRICT;
   CREATE TABLE packed (
     sha256 TEXT PRIMARY KEY,
     pack TEXT NOT NULL,
     offset INTEGER NOT NULL,
     size INTEGER NOT NULL
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX packed_by_pack ON packed (pack);`,
];

/** A row of the index: a blob of a pack (its `offset` is after its record header). */
interface PackedRow {
  sha256: string;
  offset: number;
  size: number;
}

/** Where a packed blob's bytes are. */
export interface PackedBlob {
  pack: string;
  /** Of the first byte of the blob itself (after its record header). */
  offset: number;
  size: number;
}

export class PackStore {
  private constructor(
    private readonly dir: string,
    private readonly tmpFile: () => string,
    private readonly db: SqliteDatabase,
  ) {}

  /**
   * Opens (creating when absent) `dir` and its index; rebuilds the index from the packs
   * when it is missing, and removes stale packs no row names. `tmpFile` gives a fresh
   * temp path on the same file system.
   */
  static async open(dir: string, tmpFile: () => string): Promise<PackStore> {
    await fs.mkdir(dir, { recursive: true });
    const dbFile = path.join(dir, 'index.db');
    const rebuild = !existsSync(dbFile);
    const db = openSqlite(dbFile);
    try {
      migrate(db, 'packs', MIGRATIONS);
      const store = new PackStore(dir, tmpFile, db);
      if (rebuild) await store.rebuildIndex();
      await store.sweep();
      return store;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Where `sha256` is packed, or `undefined`. Synchronous: one index lookup (microseconds). */
  locate(sha256: string): PackedBlob | undefined {
    return cachedStatement(this.db, 'SELECT pack, offset, size FROM packed WHERE sha256 = ?').get(sha256) as
      PackedBlob | undefined;
  }

  /**
   * Stores `blobs` (distinct sha256s, not stored yet) as one new pack: temp file → fsync →
   * rename → fsync of the folder → one index commit. A blob that another process packed
   * meanwhile keeps its first copy (this one counts as dead bytes).
   */
  async write(blobs: ReadonlyArray<{ sha256: string; bytes: Uint8Array }>): Promise<void> {
    if (blobs.length === 0) return;
    const id = await this.writePackFile(blobs);
    this.indexPack(id, packBytes(blobs), layout(blobs));
  }

  /**
   * Records pack `id` (`bytes` long) and its `rows` in one commit. A row whose sha256 is
   * indexed already keeps its first copy; every byte not named by a new row (those, and a
   * torn tail found by `rebuildIndex`) counts as dead.
   */
  private indexPack(id: string, bytes: number, rows: ReadonlyArray<PackedRow>): void {
    this.db
      .transaction(() => {
        const insert = cachedStatement(
          this.db,
          'INSERT INTO packed (sha256, pack, offset, size) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING',
        );
        let live = 0;
        for (const row of rows) {
          if (insert.run(row.sha256, id, row.offset, row.size).changes > 0)
            live += RECORD_HEADER_BYTES + row.size;
        }
        cachedStatement(this.db, 'INSERT OR IGNORE INTO packs (id, bytes, dead) VALUES (?, ?, ?)').run(
          id,
          bytes,
          bytes - live,
        );
      })
      .immediate();
  }

  /**
   * The bytes `[start, end]` (inclusive, within the blob) of a packed blob, or `undefined`
   * when it is not packed (any more). Opens the pack before answering, so a pack
   * rewritten meanwhile is looked up again.
   */
  async readStream(sha256: string, start: number, end: number): Promise<Readable | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const where = this.locate(sha256);
      if (where === undefined) return undefined;
      if (where.size === 0) return Readable.from([]);
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(this.packPath(where.pack), 'r');
      } catch (err) {
        if (isNotFound(err)) continue; // rewritten by a compaction since the lookup
        throw err;
      }
      const last = Math.min(end, where.size - 1);
      return handle.createReadStream({ start: where.offset + start, end: where.offset + last });
    }
    return undefined;
  }

  /**
   * Forgets a packed blob (its bytes become dead space in its pack); rewrites the pack
   * when at least half of it is dead. Nothing to do when `sha256` is not packed.
   */
  async delete(sha256: string): Promise<void> {
    const pack = this.db
      .transaction((): { id: string; bytes: number; dead: number } | undefined => {
        const where = this.locate(sha256);
        if (where === undefined) return undefined;
        cachedStatement(this.db, 'DELETE FROM packed WHERE sha256 = ?').run(sha256);
        cachedStatement(this.db, 'UPDATE packs SET dead = dead + ? WHERE id = ?').run(
          RECORD_HEADER_BYTES + where.size,
          where.pack,
        );
        return cachedStatement(this.db, 'SELECT id, bytes, dead FROM packs WHERE id = ?').get(where.pack) as
          { id: string; bytes: number; dead: number } | undefined;
      })
      .immediate();
    if (pack !== undefined && pack.dead * 2 >= pack.bytes) await this.compact(pack.id);
  }

  /**
   * Rewrites pack `id` with only its live blobs (or removes it when none is left). The
   * rows move to the new pack in one commit that also removes the old pack's row; when
   * another process compacted it first, this copy is dropped. The old file is removed
   * after the commit: a crash before that leaves a file no row names (swept later).
   */
  async compact(id: string): Promise<void> {
    const live = cachedStatement(
      this.db,
      'SELECT sha256, offset, size FROM packed WHERE pack = ? ORDER BY offset',
    ).all(id) as PackedRow[];
    const file = this.packPath(id);
    let newId: string | null = null;
    let blobs: Array<{ sha256: string; bytes: Uint8Array }> = [];
    if (live.length > 0) {
      let content: Buffer;
      try {
        content = await fs.readFile(file);
      } catch (err) {
        if (isNotFound(err)) return; // compacted by another process
        throw err;
      }
      blobs = live.map((row) => ({
        sha256: row.sha256,
        bytes: content.subarray(row.offset, row.offset + row.size),
      }));
      newId = await this.writePackFile(blobs);
    }
    const moved = this.db
      .transaction((): boolean => {
        if (cachedStatement(this.db, 'DELETE FROM packs WHERE id = ?').run(id).changes === 0) return false;
        if (newId === null) return true;
        let dead = 0;
        const move = cachedStatement(
          this.db,
          'UPDATE packed SET pack = ?, offset = ? WHERE sha256 = ? AND pack = ?',
        );
        for (const row of layout(blobs)) {
          // A blob deleted since the read above stays out (its bytes are dead in the new pack).
          if (move.run(newId, row.offset, row.sha256, id).changes === 0)
            dead += RECORD_HEADER_BYTES + row.size;
        }
        cachedStatement(this.db, 'INSERT INTO packs (id, bytes, dead) VALUES (?, ?, ?)').run(
          newId,
          packBytes(blobs),
          dead,
        );
        return true;
      })
      .immediate();
    if (!moved && newId !== null) await removeIfPresent(this.packPath(newId));
    if (moved) await removeIfPresent(file);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private packPath(id: string): string {
    if (!PACK_ID.test(id)) throw new Error(`Invalid pack id ${JSON.stringify(id)}.`);
    return path.join(this.dir, `${id}.pack`);
  }

  /** Writes a new pack file holding `blobs` (complete and durable at its final path); returns its id. */
  private async writePackFile(blobs: ReadonlyArray<{ sha256: string; bytes: Uint8Array }>): Promise<string> {
    const id = timeOrderedToken();
    const tmp = this.tmpFile();
    const chunks: Uint8Array[] = [];
    for (const { sha256, bytes } of blobs) {
      const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
      header.write(sha256, 0, 32, 'hex');
      header.writeUInt32BE(bytes.byteLength, 32);
      chunks.push(header, bytes);
    }
    const handle = await openTemp(tmp);
    try {
      try {
        await writeFully(handle, chunks, packBytes(blobs), 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, this.packPath(id));
    } catch (err) {
      await removeIfPresent(tmp);
      throw err;
    }
    await syncDir(this.dir);
    return id;
  }

  /** Packs on disk (by id). */
  private packFiles(): string[] {
    return readdirSync(this.dir).flatMap((name) => {
      const m = PACK_NAME.exec(name);
      return m ? [m[1] as string] : [];
    });
  }

  /**
   * Removes pack files that no row names and that are older than a day (a crash between
   * a pack's rename and its index commit, or after a compaction's commit).
   */
  private async sweep(): Promise<void> {
    const known = cachedStatement(this.db, 'SELECT 1 FROM packs WHERE id = ?');
    const cutoff = Date.now() - STALE_PACK_MS;
    for (const id of this.packFiles()) {
      if (known.get(id) !== undefined) continue;
      const st = statSync(this.packPath(id), { throwIfNoEntry: false });
      if (st !== undefined && st.mtimeMs < cutoff) await removeIfPresent(this.packPath(id));
    }
  }

  /**
   * A new index from the packs' own records (the index file was lost). Every complete
   * record whose bytes hash to its sha256 counts; a torn or corrupt tail is ignored.
   */
  private async rebuildIndex(): Promise<void> {
    for (const id of this.packFiles()) {
      const content = await fs.readFile(this.packPath(id));
      const rows: PackedRow[] = [];
      let at = 0;
      while (at + RECORD_HEADER_BYTES <= content.byteLength) {
        const sha256 = content.toString('hex', at, at + 32);
        const size = content.readUInt32BE(at + 32);
        const offset = at + RECORD_HEADER_BYTES;
        if (offset + size > content.byteLength) break;
        if (
          createHash('sha256')
            .update(content.subarray(offset, offset + size))
            .digest('hex') !== sha256
        )
          break;
        rows.push({ sha256, offset, size });
        at = offset + size;
      }
      this.indexPack(id, content.byteLength, rows);
    }
  }
}

/** Each blob's offset in a pack written from `blobs` in this order. */
function layout(blobs: ReadonlyArray<{ sha256: string; bytes: Uint8Array }>): PackedRow[] {
  let at = 0;
  return blobs.map(({ sha256, bytes }) => {
    const offset = at + RECORD_HEADER_BYTES;
    at = offset + bytes.byteLength;
    return { sha256, offset, size: bytes.byteLength };
  });
}

function packBytes(blobs: ReadonlyArray<{ bytes: Uint8Array }>): number {
  return blobs.reduce((sum, { bytes }) => sum + RECORD_HEADER_BYTES + bytes.byteLength, 0);
}
