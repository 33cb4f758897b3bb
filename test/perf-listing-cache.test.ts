/**
 * The SQLite tree serves an unchanged listing again from memory (see `SqliteTree.listChildren`
 * and `changeStamp` in core/sqlite.ts), and the store remembers users and path lookups the
 * same way (`StampedMemo`). These tests pin down that neither is ever stale: after writes
 * on the same connection, on another connection, in another process, and after a
 * transaction that rolled back.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from '../core/adapters/metadata/sqlite.js';
import { SqliteTree } from '../core/adapters/metadata/sqlite-tree.js';
import { systemClock } from '../core/domain/clock.js';
import type { TreeNode } from '../core/ports/metadata-store.js';
import { StampedMemo, openSqlite, type SqliteDatabase } from '../core/sqlite.js';

const dirs: string[] = [];
const dbs: SqliteDatabase[] = [];

afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function open(file: string): SqliteDatabase {
  const db = openSqlite(file);
  dbs.push(db);
  return db;
}

async function setup(): Promise<{
  file: string;
  db: SqliteDatabase;
  store: SqliteMetadataStore;
  userId: string;
}> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-listing-cache-'));
  dirs.push(dir);
  const file = path.join(dir, 'aio.db');
  const db = open(file);
  const store = new SqliteMetadataStore(db);
  const user = await store.createUser({
    email: 'l@example.test',
    name: null,
    passwordHash: 'h',
    storageQuota: 1e9,
  });
  return { file, db, store, userId: user.id };
}

const names = (nodes: readonly TreeNode[]): string[] => nodes.map((n) => n.name);

/** Runs `sql` on `file` from another process (a separate aio-worker, say). */
function runInOtherProcess(file: string, sql: string): void {
  const script = `
    const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
    const db = new Database(process.argv[1]);
    db.pragma('busy_timeout = 5000');
    db.prepare(process.argv[2]).run();
    db.close();`;
  execFileSync(process.execPath, ['-e', script, file, sql]);
}

describe('SQLite listings served again while the database is unchanged', () => {
  it('returns the same frozen page for the same unchanged listing', async () => {
    const { store, userId } = await setup();
    await store.createFolder(userId, null, 'a');
    const first = await store.listChildren(userId, null);
    const second = await store.listChildren(userId, null);
    expect(second).toBe(first);
    expect(Object.isFrozen(first.items)).toBe(true);
    expect(Object.isFrozen(first.items[0])).toBe(true);
    // Other options are other pages.
    expect(await store.listChildren(userId, null, { order: 'desc' })).not.toBe(first);
  });

  it('shows every write made through the same connection at once', async () => {
    const { store, userId } = await setup();
    const folder = await store.createFolder(userId, null, 'f');
    expect(names((await store.listChildren(userId, folder.id)).items)).toEqual([]);
    const file = await store.commitFile({
      ownerId: userId,
      parentId: folder.id,
      name: 'x.txt',
      sha256: 'a'.repeat(64),
      size: 1,
      mtime: null,
      mediaType: null,
      sourceId: 's1',
    });
    expect(names((await store.listChildren(userId, folder.id)).items)).toEqual(['x.txt']);
    await store.moveNode(userId, file.node.id, folder.id, 'y.txt');
    expect(names((await store.listChildren(userId, folder.id)).items)).toEqual(['y.txt']);
    await store.trashNode(userId, file.node.id, new Date());
    expect(names((await store.listChildren(userId, folder.id)).items)).toEqual([]);
    await store.restoreNode(userId, file.node.id);
    expect(names((await store.listChildren(userId, folder.id)).items)).toEqual(['y.txt']);
    await store.trashNode(userId, file.node.id, new Date());
    await store.purgeNode(userId, file.node.id);
    expect((await store.listChildren(userId, folder.id, { includeTrashed: true })).items).toEqual([]);
  });

  it('shows a commit of another connection at once', async () => {
    const { file, store, userId } = await setup();
    expect(names((await store.listChildren(userId, null)).items)).toEqual([]);
    const other = new SqliteMetadataStore(open(file));
    await other.createFolder(userId, null, 'from-other');
    expect(names((await store.listChildren(userId, null)).items)).toEqual(['from-other']);
    // A plain UPDATE on the other connection, not through any store.
    open(file).prepare("UPDATE nodes SET name = 'renamed', name_key = 'renamed'").run();
    expect(names((await store.listChildren(userId, null)).items)).toEqual(['renamed']);
  });

  it('shows a commit of another process at once', async () => {
    const { file, store, userId } = await setup();
    await store.createFolder(userId, null, 'before');
    expect(names((await store.listChildren(userId, null)).items)).toEqual(['before']);
    runInOtherProcess(file, "UPDATE nodes SET name = 'after', name_key = 'after'");
    expect(names((await store.listChildren(userId, null)).items)).toEqual(['after']);
  });

  it('remembers nothing read inside a transaction that rolls back', async () => {
    const { db, store, userId } = await setup();
    await store.createFolder(userId, null, 'kept');
    const tree = new SqliteTree(db, systemClock);
    expect(names(tree.listChildren(userId, null).items)).toEqual(['kept']);
    const rollback = db.transaction(() => {
      db.prepare("UPDATE nodes SET name = 'gone', name_key = 'gone'").run();
      expect(names(tree.listChildren(userId, null).items)).toEqual(['gone']);
      throw new Error('roll back');
    });
    expect(() => rollback()).toThrow('roll back');
    expect(names(tree.listChildren(userId, null).items)).toEqual(['kept']);
  });
});

describe('SQLite users and path lookups remembered while the database is unchanged', () => {
  it('gives the same frozen user and node again, and every change at once', async () => {
    const { store, userId } = await setup();
    const folder = await store.createFolder(userId, null, 'docs');
    const user = await store.getUserById(userId);
    expect(await store.getUserById(userId)).toBe(user);
    expect(Object.isFrozen(user)).toBe(true);
    const found = await store.findChild(userId, null, 'docs');
    expect(found?.id).toBe(folder.id);
    expect(await store.findChild(userId, null, 'docs')).toBe(found);
    expect(Object.isFrozen(found)).toBe(true);
    // A miss is remembered too, and forgotten by the write that makes it a hit.
    expect(await store.findChild(userId, null, 'later')).toBeNull();
    await store.createFolder(userId, null, 'later');
    expect((await store.findChild(userId, null, 'later'))?.name).toBe('later');
    // A password change bumps the token version: the next lookup has it.
    await store.updateUser(userId, { passwordHash: 'h2' });
    expect((await store.getUserById(userId))?.tokenVersion).toBe((user?.tokenVersion ?? 0) + 1);
    await store.moveNode(userId, folder.id, null, 'papers');
    expect(await store.findChild(userId, null, 'docs')).toBeNull();
    expect((await store.findChild(userId, null, 'papers'))?.id).toBe(folder.id);
  });

  it('shows commits of another connection and of another process at once', async () => {
    const { file, store, userId } = await setup();
    await store.createFolder(userId, null, 'a');
    expect(await store.findChild(userId, null, 'a')).not.toBeNull();
    expect((await store.getUserById(userId))?.tokenVersion).toBe(0);
    expect(await store.findPath(userId, null, ['a'])).toHaveLength(1);
    open(file).prepare("UPDATE nodes SET name = 'b', name_key = 'b'").run();
    expect(await store.findChild(userId, null, 'a')).toBeNull();
    expect(await store.findChild(userId, null, 'b')).not.toBeNull();
    expect(await store.findPath(userId, null, ['a'])).toEqual([]);
    expect(await store.findPath(userId, null, ['b'])).toHaveLength(1);
    // Revocation stays immediate when another process changes the user.
    runInOtherProcess(file, 'UPDATE users SET token_version = token_version + 1');
    expect((await store.getUserById(userId))?.tokenVersion).toBe(1);
    runInOtherProcess(file, 'DELETE FROM nodes');
    expect(await store.findChild(userId, null, 'b')).toBeNull();
    expect(await store.findPath(userId, null, ['b'])).toEqual([]);
  });

  it('remembers nothing read inside a transaction, and at most its size', async () => {
    const { db } = await setup();
    const memo = new StampedMemo<number>(db, 2);
    let reads = 0;
    const read = (): number => ++reads;
    db.transaction(() => {
      expect(memo.get('k', read)).toBe(1);
      expect(memo.get('k', read)).toBe(2);
    })();
    expect(memo.get('k', read)).toBe(3);
    expect(memo.get('k', read)).toBe(3);
    expect(memo.get('j', read)).toBe(4);
    expect(memo.get('i', read)).toBe(5); // 'k', the oldest, makes room
    expect(memo.get('j', read)).toBe(4);
    expect(memo.get('k', read)).toBe(6);
  });
});
