/**
 * The daemon's durable memory (SQLite in the config dir, WAL, synchronous=FULL):
 *
 * - `folders`: one row per watched folder with its change-feed cursor;
 * - `entries`: per folder, the last state of each path that both sides agreed on
 *   (local size/mtime/inode, sha256, remote id and revision). It changes only after the
 *   server confirmed an operation or a download landed, so it is the base of every
 *   three-way decision (local vs journal vs remote);
 * - `ops`: the operation queue. An operation is removed only once it succeeded, so a
 *   killed daemon redoes it after a restart; every operation re-checks the current state
 *   when it runs, which makes redoing it harmless.
 */
import type { Statement } from 'better-sqlite3';
import {
  migrate as migrateJournal,
  openSqlite as openJournalDb,
  type SqliteDatabase as JournalDatabase,
} from '../core/sqlite.js';

export type EntryKind = 'file' | 'dir';

/** A local item's kind and a server entry's name the same kind (`dir` is a `folder`). */
export const sameKind = (local: EntryKind, remote: 'file' | 'folder'): boolean =>
  (local === 'dir') === (remote === 'folder');

export interface JournalEntry {
  /** `/`-separated, relative to the watched folder, no leading slash. */
  relPath: string;
  kind: EntryKind;
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string | null;
  remoteId: string | null;
  /** The server revision this state corresponds to (0 for folders and unknown). */
  remoteRevision: number;
}

/** Local → server: upload, mkdir, delete, move. Server → local: download, local-mkdir, local-delete, local-move. */
export type OpKind =
  'upload' | 'mkdir' | 'delete' | 'move' | 'download' | 'local-mkdir' | 'local-delete' | 'local-move';

export interface Operation {
  id: number;
  folderId: number;
  op: OpKind;
  path: string;
  toPath: string | null;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
}

export interface FolderRow {
  id: number;
  local: string;
  remote: string;
  account: string;
  cursor: number | null;
  lastSyncAt: number | null;
}

const MIGRATIONS = [
  `CREATE TABLE folders (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     local TEXT NOT NULL UNIQUE,
     remote TEXT NOT NULL,
     account TEXT NOT NULL,
     cursor INTEGER,
     last_sync_at INTEGER
   );
   CREATE TABLE entries (
     folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
     rel_path TEXT NOT NULL,
     kind TEXT NOT NULL,
     size INTEGER NOT NULL,
     mtime_ms REAL NOT NULL,
     ino INTEGER NOT NULL,
     sha256 TEXT,
     remote_id TEXT,
     remote_revision INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (folder_id, rel_path)
   );
   CREATE INDEX entries_remote_id ON entries(folder_id, remote_id);
   CREATE TABLE ops (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
     op TEXT NOT NULL,
     path TEXT NOT NULL,
     to_path TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX ops_folder ON ops(folder_id, id);`,
  // enqueue's "already waiting?" check and cancelOp looked at every queued op of the folder:
  // O(n²) for a scan that queues 100,000 uploads.
  `CREATE INDEX ops_folder_path ON ops(folder_id, path, op);`,
];

interface EntryRow {
  rel_path: string;
  kind: EntryKind;
  size: number;
  mtime_ms: number;
  ino: number;
  sha256: string | null;
  remote_id: string | null;
  remote_revision: number;
}

interface OpRow {
  id: number;
  folder_id: number;
  op: OpKind;
  path: string;
  to_path: string | null;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
}

const toEntry = (r: EntryRow): JournalEntry => ({
  relPath: r.rel_path,
  kind: r.kind,
  size: r.size,
  mtimeMs: r.mtime_ms,
  ino: r.ino,
  sha256: r.sha256,
  remoteId: r.remote_id,
  remoteRevision: r.remote_revision,
});

const toOp = (r: OpRow): Operation => ({
  id: r.id,
  folderId: r.folder_id,
  op: r.op,
  path: r.path,
  toPath: r.to_path,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  createdAt: r.created_at,
});

/**
 * `relPath` and its descendants (`''`: every entry of the folder), as a condition on
 * `entries` and its parameters after the folder id. A key range, so that SQLite walks the
 * primary key from `relPath` on: `rel_path = ? OR …` (or an `? = ''` term) made it read
 * every entry of the folder instead — 100 changed files cost 100 full passes. The range
 * [p, p + '0') also holds names like `p-x` and `p.txt` (`-` and `.` sort before `/`), which
 * the second term leaves out.
 */
function under(relPath: string): { where: string; params: string[] } {
  if (relPath === '') return { where: '1', params: [] };
  return {
    where: `rel_path >= ? AND rel_path < ? AND (rel_path = ? OR rel_path >= ?)`,
    params: [relPath, `${relPath}0`, relPath, `${relPath}/`],
  };
}

export class Journal {
  /** Prepared once per SQL text: preparing costs more than running a small statement. */
  private readonly statements = new Map<string, Statement>();

  private constructor(private readonly db: JournalDatabase) {}

  private sql(text: string): Statement {
    let st = this.statements.get(text);
    if (!st) this.statements.set(text, (st = this.db.prepare(text)));
    return st;
  }

  static open(file: string): Journal {
    const db = openJournalDb(file);
    migrateJournal(db, 'daemon-journal', MIGRATIONS);
    return new Journal(db);
  }

  close(): void {
    this.db.close();
  }

  /**
   * The folder's row, created when new. When the remote path or the account changed, the
   * old synced state means nothing any more: entries, queue and cursor start over.
   */
  folder(local: string, remote: string, account: string): FolderRow {
    return this.db
      .transaction((): FolderRow => {
        const row = this.sql('SELECT * FROM folders WHERE local = ?').get(local) as
          | {
              id: number;
              remote: string;
              account: string;
              cursor: number | null;
              last_sync_at: number | null;
            }
          | undefined;
        if (row && row.remote === remote && row.account === account) {
          return { id: row.id, local, remote, account, cursor: row.cursor, lastSyncAt: row.last_sync_at };
        }
        if (row) this.sql('DELETE FROM folders WHERE id = ?').run(row.id);
        const info = this.sql('INSERT INTO folders (local, remote, account) VALUES (?, ?, ?)').run(
          local,
          remote,
          account,
        );
        return { id: Number(info.lastInsertRowid), local, remote, account, cursor: null, lastSyncAt: null };
      })
      .immediate();
  }

  /** Forgets a folder that is no longer watched. */
  dropFolder(local: string): void {
    this.sql('DELETE FROM folders WHERE local = ?').run(local);
  }

  cursor(folderId: number): number | null {
    const row = this.sql('SELECT cursor FROM folders WHERE id = ?').get(folderId) as
      { cursor: number | null } | undefined;
    return row?.cursor ?? null;
  }

  setCursor(folderId: number, cursor: number | null): void {
    this.sql('UPDATE folders SET cursor = ? WHERE id = ?').run(cursor, folderId);
  }

  setLastSync(folderId: number, at: number): void {
    this.sql('UPDATE folders SET last_sync_at = ? WHERE id = ?').run(at, folderId);
  }

  lastSync(folderId: number): number | null {
    const row = this.sql('SELECT last_sync_at FROM folders WHERE id = ?').get(folderId) as
      { last_sync_at: number | null } | undefined;
    return row?.last_sync_at ?? null;
  }

  // ---------- entries ----------

  entry(folderId: number, relPath: string): JournalEntry | null {
    const row = this.sql('SELECT * FROM entries WHERE folder_id = ? AND rel_path = ?').get(
      folderId,
      relPath,
    ) as EntryRow | undefined;
    return row ? toEntry(row) : null;
  }

  /** `relPath` and its descendants, sorted by path (`''` = all). */
  entriesUnder(folderId: number, relPath: string): JournalEntry[] {
    const { where, params } = under(relPath);
    return (
      this.sql(`SELECT * FROM entries WHERE folder_id = ? AND ${where} ORDER BY rel_path`).all(
        folderId,
        ...params,
      ) as EntryRow[]
    ).map(toEntry);
  }

  /**
   * Calls `fn` for `relPath` and each of its descendants, sorted by path, without holding
   * them all in memory (a full scan of 100,000 entries). `fn` must not use the journal.
   */
  eachEntryUnder(folderId: number, relPath: string, fn: (e: JournalEntry) => void): void {
    const { where, params } = under(relPath);
    const rows = this.sql(`SELECT * FROM entries WHERE folder_id = ? AND ${where} ORDER BY rel_path`).iterate(
      folderId,
      ...params,
    ) as IterableIterator<EntryRow>;
    for (const row of rows) fn(toEntry(row));
  }

  entryByRemoteId(folderId: number, remoteId: string): JournalEntry | null {
    const row = this.sql('SELECT * FROM entries WHERE folder_id = ? AND remote_id = ?').get(
      folderId,
      remoteId,
    ) as EntryRow | undefined;
    return row ? toEntry(row) : null;
  }

  countFiles(folderId: number): number {
    return (
      this.sql("SELECT COUNT(*) AS n FROM entries WHERE folder_id = ? AND kind = 'file'").get(folderId) as {
        n: number;
      }
    ).n;
  }

  putEntry(folderId: number, e: JournalEntry): void {
    this.sql(
      `INSERT INTO entries (folder_id, rel_path, kind, size, mtime_ms, ino, sha256, remote_id, remote_revision)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (folder_id, rel_path) DO UPDATE SET kind = excluded.kind, size = excluded.size,
           mtime_ms = excluded.mtime_ms, ino = excluded.ino, sha256 = excluded.sha256,
           remote_id = excluded.remote_id, remote_revision = excluded.remote_revision`,
    ).run(folderId, e.relPath, e.kind, e.size, e.mtimeMs, e.ino, e.sha256, e.remoteId, e.remoteRevision);
  }

  /** Removes `relPath` and everything below it. */
  deleteEntries(folderId: number, relPath: string): void {
    const { where, params } = under(relPath);
    this.sql(`DELETE FROM entries WHERE folder_id = ? AND ${where}`).run(folderId, ...params);
  }

  /** Moves `from` and its descendants to `to` (one transaction); whatever was at `to` is replaced. */
  renameEntries(folderId: number, from: string, to: string): void {
    this.db
      .transaction(() => {
        const moved = this.entriesUnder(folderId, from);
        this.deleteEntries(folderId, to);
        this.deleteEntries(folderId, from);
        for (const e of moved) this.putEntry(folderId, { ...e, relPath: to + e.relPath.slice(from.length) });
      })
      .immediate();
  }

  // ---------- operations ----------

  /**
   * Queues an operation unless the same one is already waiting (operations re-read the
   * current state when they run, so one pending copy is enough). Returns true when added.
   */
  enqueue(folderId: number, op: OpKind, path: string, toPath: string | null = null, notBefore = 0): boolean {
    const existing = this.sql(
      'SELECT id FROM ops WHERE folder_id = ? AND op = ? AND path = ? AND to_path IS ?',
    ).get(folderId, op, path, toPath);
    if (existing) return false;
    this.sql(
      'INSERT INTO ops (folder_id, op, path, to_path, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(folderId, op, path, toPath, notBefore, Date.now());
    return true;
  }

  /** Runs `fn` in one immediate transaction (a scan's operations land together or not at all). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Every queued operation of the folder, oldest first. */
  pendingOps(folderId: number): Operation[] {
    return (this.sql('SELECT * FROM ops WHERE folder_id = ? ORDER BY id').all(folderId) as OpRow[]).map(toOp);
  }

  /**
   * Up to `limit` queued operations of the folder after `afterId`, oldest first: the syncer
   * reads the head of the queue page by page instead of all of it at every turn.
   */
  opsAfter(folderId: number, afterId: number, limit: number): Operation[] {
    return (
      this.sql('SELECT * FROM ops WHERE folder_id = ? AND id > ? ORDER BY id LIMIT ?').all(
        folderId,
        afterId,
        limit,
      ) as OpRow[]
    ).map(toOp);
  }

  /** Queued operations of one kind (e.g. the deletions a rename may cancel), oldest first. */
  pendingOpsOf(folderId: number, op: OpKind): Operation[] {
    return (
      this.sql('SELECT * FROM ops WHERE folder_id = ? AND op = ? ORDER BY id').all(folderId, op) as OpRow[]
    ).map(toOp);
  }

  countOps(folderId: number): number {
    return (this.sql('SELECT COUNT(*) AS n FROM ops WHERE folder_id = ?').get(folderId) as { n: number }).n;
  }

  /** Called only after the server (or the local file system) confirmed the operation. */
  completeOp(id: number): void {
    this.sql('DELETE FROM ops WHERE id = ?').run(id);
  }

  failOp(id: number, error: string | null, nextAttemptAt: number, countAttempt = true): void {
    this.sql('UPDATE ops SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? WHERE id = ?').run(
      countAttempt ? 1 : 0,
      error,
      nextAttemptAt,
      id,
    );
  }

  /** Withdraws a queued operation that a later scan made pointless (a delete that turned out to be a rename). */
  cancelOp(folderId: number, op: OpKind, path: string): void {
    this.sql('DELETE FROM ops WHERE folder_id = ? AND op = ? AND path = ?').run(folderId, op, path);
  }

  /** Makes every waiting operation of the folder due now (resume, rescan). */
  retryNow(folderId: number): void {
    this.sql('UPDATE ops SET next_attempt_at = 0 WHERE folder_id = ?').run(folderId);
  }

  /** Operations that failed at least once, for `aio status`. */
  failedOps(folderId: number, limit = 20): Operation[] {
    return (
      this.sql('SELECT * FROM ops WHERE folder_id = ? AND last_error IS NOT NULL ORDER BY id LIMIT ?').all(
        folderId,
        limit,
      ) as OpRow[]
    ).map(toOp);
  }
}
