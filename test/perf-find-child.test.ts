/**
 * `findChild` on SQLite probes the unique live-name index instead of scanning the
 * folder's children (see `SqliteTree.liveChild`). Same answers as before: the root and
 * folders alike, case-insensitive, trashed children not found, a bogus '' parent id not
 * taken for the root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from '../core/adapters/metadata/sqlite.js';
import { openSqlite, type SqliteDatabase } from '../core/sqlite.js';

const dbs: SqliteDatabase[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

async function setup(): Promise<{ store: SqliteMetadataStore; userId: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-find-child-'));
  dirs.push(dir);
  const db = openSqlite(path.join(dir, 'aio.db'));
  dbs.push(db);
  const store = new SqliteMetadataStore(db);
  const user = await store.createUser({
    email: 'f@example.test',
    name: null,
    passwordHash: 'h',
    storageQuota: 1e9,
  });
  return { store, userId: user.id };
}

describe('findChild on SQLite', () => {
  it('finds children of the root and of a folder of many entries, case-insensitively', async () => {
    const { store, userId } = await setup();
    const big = await store.createFolder(userId, null, 'Big');
    for (let i = 0; i < 300; i++) await store.createFolder(userId, big.id, `entry-${i}`);
    expect((await store.findChild(userId, null, 'big'))?.id).toBe(big.id);
    expect((await store.findChild(userId, big.id, 'ENTRY-150'))?.name).toBe('entry-150');
    expect(await store.findChild(userId, big.id, 'entry-300')).toBeNull();
    expect(await store.findChild(userId, null, 'entry-1')).toBeNull();
  });

  it('does not find a trashed child, finds its live namesake, and takes no bogus parent for the root', async () => {
    const { store, userId } = await setup();
    const old = await store.createFolder(userId, null, 'a');
    await store.trashNode(userId, old.id, new Date());
    expect(await store.findChild(userId, null, 'a')).toBeNull();
    const fresh = await store.createFolder(userId, null, 'A');
    expect((await store.findChild(userId, null, 'a'))?.id).toBe(fresh.id);
    expect(await store.findChild(userId, '', 'a')).toBeNull();
  });
});
