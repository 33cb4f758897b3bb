import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, afterEach } from 'vitest';
import { metadataStoreSuite } from '../../testing/metadata-store.suite.js';
import { migrate, openSqlite } from '../../sqlite.js';
import { MIGRATIONS } from './sqlite-schema.js';
import { SqliteMetadataStore } from './sqlite.js';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'aio-metadata-'));
}

metadataStoreSuite('SqliteMetadataStore (file database)', async () => {
  const dir = tempDir();
  const db = openSqlite(path.join(dir, 'aio.db'));
  const store = new SqliteMetadataStore(db);
  return {
    store,
    cleanup: async () => {
      await store.close();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteMetadataStore', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps users, files and the change feed when the database file is reopened', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = path.join(dir, 'aio.db');
    const first = openSqlite(file);
    const store = new SqliteMetadataStore(first);
    const user = await store.createUser({
      email: 'keep@example.test',
      name: null,
      passwordHash: 'h',
      storageQuota: 10,
    });
    const folder = await store.createFolder(user.id, null, 'kept');
    await store.close();
    first.close();

    const second = openSqlite(file);
    try {
      const reopened = new SqliteMetadataStore(second);
      expect((await reopened.getUserByEmail('keep@example.test'))?.id).toBe(user.id);
      expect((await reopened.findChild(user.id, null, 'KEPT'))?.id).toBe(folder.id);
      expect(await reopened.latestChangeSeq(user.id)).toBe(1);
      const again = await reopened.createFolder(user.id, null, 'second');
      expect((await reopened.listChanges(user.id, 1, 10)).map((c) => c.nodeId)).toEqual([again.id]);
    } finally {
      second.close();
    }
  });

  it('keeps uploads made before uploader ids existed visible to their owner', async () => {
    const db = openSqlite(':memory:');
    try {
      // The schema as shipped before the uploader column, with one upload in it.
      migrate(db, 'metadata', MIGRATIONS.slice(0, 2));
      db.prepare(
        `INSERT INTO users (id, email, password_hash, storage_quota, created_at, updated_at)
         VALUES ('u1', 'old@example.test', 'h', 10, 0, 0)`,
      ).run();
      db.prepare(
        `INSERT INTO uploads (id, owner_id, name, length, metadata, status, created_at, updated_at, expires_at)
         VALUES ('up1', 'u1', 'a.txt', 3, '{}', 'receiving', 0, 0, 0)`,
      ).run();
      const store = new SqliteMetadataStore(db);
      expect(await store.getUpload('u1', 'up1')).toMatchObject({ ownerId: 'u1', uploaderId: 'u1' });
      expect(await store.getUpload('u2', 'up1')).toBeNull();
      await store.close();
    } finally {
      db.close();
    }
  });

  it('leaves the shared database open on close and refuses calls afterwards', async () => {
    const db = openSqlite(':memory:');
    try {
      const store = new SqliteMetadataStore(db);
      await store.ping();
      await store.close();
      expect(db.open).toBe(true);
      await expect(store.ping()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    } finally {
      db.close();
    }
  });
});
