import { randomUUID } from 'node:crypto';
import mongoose from 'mongoose';
import { describe, it, expect } from 'vitest';
import { metadataStoreSuite } from '../../testing/metadata-store.suite.js';
import { MongoMetadataStore } from './mongo.js';

const uri = process.env.MONGODB_URI;

if (!uri) {
  console.log(
    'MongoMetadataStore suite skipped: set MONGODB_URI (a replica set, for transactions) to run it.',
  );
}

async function dropDatabase(dbName: string): Promise<void> {
  const conn = await mongoose.createConnection(uri as string, { dbName }).asPromise();
  try {
    await conn.dropDatabase();
  } finally {
    await conn.close();
  }
}

describe.skipIf(!uri)('MongoMetadataStore', () => {
  metadataStoreSuite('MongoMetadataStore', async () => {
    const dbName = `aio_test_${randomUUID().replaceAll('-', '')}`;
    const store = await MongoMetadataStore.connect(uri as string, { dbName });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropDatabase(dbName);
      },
    };
  });

  it('matches an operator object sent as an id literally instead of running it', async () => {
    const dbName = `aio_test_${randomUUID().replaceAll('-', '')}`;
    const store = await MongoMetadataStore.connect(uri as string, { dbName });
    try {
      const user = await store.createUser({
        email: 'op@example.test',
        name: null,
        passwordHash: 'h',
        storageQuota: 1,
      });
      await store.createFolder(user.id, null, 'x');
      const injected = { $ne: '' } as unknown as string;
      expect(await store.getUserById(injected)).toBeNull();
      expect(await store.getNode(user.id, injected)).toBeNull();
    } finally {
      await store.close();
      await dropDatabase(dbName);
    }
  });
});
