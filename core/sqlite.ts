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
