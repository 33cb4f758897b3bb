/**
 * Opens the daemon's SQLite journal and applies its migrations. A copy of the helper in
 * `core/adapters/sqlite/database.ts`: the import boundary keeps daemon/ out of core/adapters.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type JournalDatabase = Database.Database;

/**
 * WAL so `aio status` readers never block the daemon; `synchronous = FULL` so every
 * committed operation survives a power cut or SIGKILL; `busy_timeout` so a second
 * connection waits instead of failing.
 */
export function openJournalDb(file: string): JournalDatabase {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Applies `migrations[i]` for every version above the current one, each in its own transaction (append-only). */
export function migrateJournal(db: JournalDatabase, component: string, migrations: readonly string[]): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (component, version))',
  );
  const row = db
    .prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE component = ?')
    .get(component) as {
    v: number | null;
  };
  for (let version = (row.v ?? 0) + 1; version <= migrations.length; version++) {
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
