import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupCommit, openSqlite, withoutFsync, type SqliteDatabase } from './sqlite.js';

const dirs: string[] = [];
const open: SqliteDatabase[] = [];

function database(): { file: string; db: SqliteDatabase } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-sqlite-'));
  dirs.push(dir);
  const file = path.join(dir, 'test.db');
  const db = openSqlite(file);
  open.push(db);
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
  return { file, db };
}

/** Commits made by other connections, as a second connection counts them (`data_version`). */
function commitCounter(file: string): () => number {
  const watcher = openSqlite(file);
  open.push(watcher);
  const read = (): number => watcher.pragma('data_version', { simple: true }) as number;
  const start = read();
  return () => read() - start;
}

afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('GroupCommit', () => {
  it('commits the writes handed in within one turn together, and resolves each after the commit', async () => {
    const { file, db } = database();
    const commits = commitCounter(file);
    const group = new GroupCommit(db);
    const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    const results = Array.from({ length: 20 }, (_, i) =>
      group.run(() => {
        expect(db.inTransaction).toBe(true);
        return insert.run(`k${i}`, i).changes;
      }),
    );
    // Nothing runs before the turn ends.
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 });
    expect(await Promise.all(results)).toEqual(Array.from({ length: 20 }, () => 1));
    expect(commits()).toBe(1);
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 20 });

    // A later turn is a commit of its own; a write alone is one too.
    await group.run(() => insert.run('alone', 1));
    expect(commits()).toBe(2);
  });

  it('rolls back and rejects only the write that throws; the others commit', async () => {
    const { file, db } = database();
    const commits = commitCounter(file);
    const group = new GroupCommit(db);
    const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    const first = group.run(() => insert.run('a', 1));
    const failing = group.run(() => {
      insert.run('b', 2);
      insert.run('a', 3); // primary key: throws after 'b' was written
    });
    const last = group.run(() => insert.run('c', 4));
    await expect(first).resolves.toMatchObject({ changes: 1 });
    await expect(failing).rejects.toThrow(/UNIQUE/);
    await expect(last).resolves.toMatchObject({ changes: 1 });
    expect(commits()).toBe(1);
    expect(db.prepare('SELECT k, v FROM t ORDER BY k').all()).toEqual([
      { k: 'a', v: 1 },
      { k: 'c', v: 4 },
    ]);
  });

  it('rejects every write of the group when the commit itself fails, and keeps none', async () => {
    const { file, db } = database();
    const group = new GroupCommit(db);
    const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    // Another connection holds the write lock past the busy timeout.
    const other = openSqlite(file);
    open.push(other);
    other.pragma('busy_timeout = 0');
    db.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    const a = group.run(() => insert.run('a', 1));
    const b = group.run(() => insert.run('b', 2));
    await expect(a).rejects.toThrow(/locked|busy/i);
    await expect(b).rejects.toThrow(/locked|busy/i);
    other.exec('ROLLBACK');
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 });
    // The next group goes through.
    await group.run(() => insert.run('c', 3));
    expect(db.prepare('SELECT k FROM t').all()).toEqual([{ k: 'c' }]);
  });

  it('flush() runs what is pending at once', () => {
    const { db } = database();
    const group = new GroupCommit(db);
    void group.run(() => db.prepare("INSERT INTO t (k, v) VALUES ('now', 1)").run());
    group.flush();
    expect(db.prepare('SELECT k FROM t').all()).toEqual([{ k: 'now' }]);
  });
});

describe('withoutFsync', () => {
  it('runs the body with synchronous = NORMAL and puts FULL back, also when the body throws', () => {
    const { db } = database();
    const level = (): number => db.pragma('synchronous', { simple: true }) as number;
    expect(level()).toBe(2);
    expect(withoutFsync(db, () => level())).toBe(1);
    expect(level()).toBe(2);
    expect(() =>
      withoutFsync(db, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(level()).toBe(2);
    // Inside a transaction the level cannot change: the transaction's commit decides.
    db.transaction(() => expect(withoutFsync(db, () => level())).toBe(2))();
  });
});
