/**
 * Opens an SQLite database file and applies versioned migrations per component. Used by
 * the embedded adapters (`SqliteMetadataStore` and `EmbeddedJobQueue` share one
 * connection per process, so a job and its metadata can commit in one transaction) and
 * by the sync daemon's journal. It lives outside core/adapters because it is a helper,
 * not a port's adapter, and the daemon may use it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/**
 * A statement from `cachedStatement`: shared by every caller of the same SQL, so only
 * the executing methods are exposed (a mode switch such as `pluck()` or `raw()` would
 * leak into every other caller).
 */
export type CachedStatement = Pick<Database.Statement<unknown[]>, 'run' | 'get' | 'all'>;

/** More distinct SQL texts than any adapter has; beyond it the cache starts over. */
const MAX_CACHED_STATEMENTS = 500;
const statementCaches = new WeakMap<SqliteDatabase, Map<string, CachedStatement>>();

/**
 * The prepared statement for `sql` on `db`, prepared once and kept for the life of the
 * connection (`db.prepare` compiles the SQL on every call, which costs more than running
 * a point lookup). Pass SQL whose text is finite — constants, or built from a few fixed
 * variants — never values: those are bound as parameters.
 */
export function cachedStatement(db: SqliteDatabase, sql: string): CachedStatement {
  let cache = statementCaches.get(db);
  if (cache === undefined) {
    cache = new Map();
    statementCaches.set(db, cache);
  }
  let statement = cache.get(sql);
  if (statement === undefined) {
    statement = db.prepare(sql);
    if (cache.size >= MAX_CACHED_STATEMENTS) cache.clear();
    cache.set(sql, statement);
  }
  return statement;
}

/**
 * Opens (creating when needed) the database file. WAL lets readers run beside the
 * writer, also across processes; `synchronous = FULL` makes every commit durable
 * before it returns; `busy_timeout` makes a second process wait instead of failing.
 * `temp_store = MEMORY` keeps statement journals (one per savepoint, e.g. per file of a
 * batch commit) in memory instead of anonymous files under /var/tmp: they only matter
 * for rolling back a statement or savepoint inside a live transaction, never for crash
 * recovery (the WAL is the durable record).
 */
export function openSqlite(file: string): SqliteDatabase {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.pragma('temp_store = MEMORY');
  return db;
}

/**
 * A value that differs whenever the database's rows may have changed since it was last
 * read: `PRAGMA data_version` moves on every commit of another connection (this process
 * or another, e.g. a separate aio-worker), and `total_changes()` counts every row this
 * connection inserted, updated or deleted. `null` while this connection is inside a
 * transaction: rows written there may still roll back, so nothing read in it may be
 * remembered. Read it *before* the data it vouches for: data newer than its stamp only
 * costs a miss later, never a stale answer. A few microseconds.
 */
export function changeStamp(db: SqliteDatabase): string | null {
  if (db.inTransaction) return null;
  const row = cachedStatement(
    db,
    'SELECT data_version AS v, total_changes() AS c FROM pragma_data_version',
  ).get() as { v: number; c: number };
  return `${row.v}:${row.c}`;
}

/**
 * Values read from the database, remembered while `changeStamp` stays the same: a commit
 * by any connection, or a row written by this one, forgets them all. For reads on every
 * request's path (the user behind a token, a path, a listing page): a stamp read instead
 * of the queries and their rows' conversion. Every caller gets the same value, so values
 * must be frozen. At most `max` in weight (each value weighs 1 unless `weigh` says
 * otherwise); the oldest go first.
 */
export class StampedMemo<V> {
  private readonly values = new Map<string, { value: V; weight: number }>();
  private stamp: string | null = null;
  private total = 0;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly max: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  /** The value remembered for `key`, else `read()` (remembered when outside a transaction). */
  get(key: string, read: () => V): V {
    const stamp = changeStamp(this.db);
    if (stamp === null) return read();
    if (stamp !== this.stamp) {
      this.values.clear();
      this.total = 0;
      this.stamp = stamp;
    }
    const known = this.values.get(key);
    if (known !== undefined) return known.value;
    const value = read();
    const weight = this.weigh(value);
    for (const [oldKey, old] of this.values) {
      if (this.total + weight <= this.max) break;
      this.values.delete(oldKey);
      this.total -= old.weight;
    }
    this.values.set(key, { value, weight });
    this.total += weight;
    return value;
  }
}

/**
 * Applies `migrations[i]` (SQL) for every version above the component's current one,
 * each in its own transaction. Migrations are append-only: never edit a shipped one.
 */
export function migrate(db: SqliteDatabase, component: string, migrations: readonly string[]): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (component, version))',
  );
  const current =
    (
      db.prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE component = ?').get(component) as {
        v: number | null;
      }
    ).v ?? 0;
  for (let version = current + 1; version <= migrations.length; version++) {
    const sql = migrations[version - 1] as string;
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)').run(
        component,
        version,
        Date.now(),
      );
    }).immediate();
  }
}

interface PendingWrite {
  body: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type WriteOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Group commit: the writes handed to `run` within one turn of the event loop run in one
 * transaction, each in its own savepoint (a write that throws is rolled back alone and
 * rejects alone), and each resolves only once that transaction has committed. With
 * `synchronous = FULL` every commit waits for an fsync of the WAL, on the thread that
 * runs it: 50 clients uploading small files made ~10 commits per upload, one fsync each,
 * all on the event loop. Now the writes of every request and job that arrived together
 * share one. A write alone in its turn costs a savepoint more than before, and one
 * `setImmediate`.
 */
export class GroupCommit {
  private pending: PendingWrite[] = [];
  private scheduled = false;

  constructor(private readonly db: SqliteDatabase) {}

  /** Runs `body` (synchronous) in the next group; resolves with its value once committed. */
  run<T>(body: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ body, resolve: resolve as (value: unknown) => void, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  /** Runs what is pending now (a store calls it before it closes). */
  flush(): void {
    this.scheduled = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    const outcomes: WriteOutcome[] = [];
    try {
      this.db
        .transaction(() => {
          for (const write of group) {
            try {
              // Nested: a savepoint inside the group's transaction.
              outcomes.push({ ok: true, value: this.db.transaction(write.body)() });
            } catch (error) {
              // Some errors (I/O, a full disk) make SQLite roll the whole transaction
              // back: what ran before is gone, and what follows would autocommit.
              if (!this.db.inTransaction) throw error;
              outcomes.push({ ok: false, error });
            }
          }
        })
        .immediate();
    } catch (error) {
      for (const write of group) write.reject(error);
      return;
    }
    for (const [i, write] of group.entries()) {
      const outcome = outcomes[i] as WriteOutcome;
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(outcome.error);
    }
  }
}

const groupCommits = new WeakMap<SqliteDatabase, GroupCommit>();

/**
 * The connection's `GroupCommit`, shared by every adapter on it (the metadata store and
 * the embedded job queue), so their writes of one turn share one commit. Kept with the
 * connection, like its prepared statements.
 */
export function groupCommitOf(db: SqliteDatabase): GroupCommit {
  let group = groupCommits.get(db);
  if (group === undefined) {
    group = new GroupCommit(db);
    groupCommits.set(db, group);
  }
  return group;
}

/**
 * Runs `body` with this connection's commits not fsynced (`synchronous = NORMAL`): WAL
 * keeps the database consistent, and the next durable commit of any write carries them
 * to disk. Only for writes whose loss in a power cut is harmless: a blob hold or claim
 * of a process that died with it, a job's lease (the job is delivered again), a job's
 * outcome (delivered again, and handlers are idempotent). Inside a transaction the
 * transaction's commit decides.
 */
export function withoutFsync<T>(db: SqliteDatabase, body: () => T): T {
  if (db.inTransaction) return body();
  const { synchronous: before } = cachedStatement(db, 'PRAGMA synchronous').get() as { synchronous: number };
  if (before <= 1) return body(); // already OFF or NORMAL
  cachedStatement(db, 'PRAGMA synchronous = NORMAL').run();
  try {
    return body();
  } finally {
    cachedStatement(db, `PRAGMA synchronous = ${before}`).run();
  }
}
