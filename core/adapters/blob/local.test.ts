import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobStoreSuite } from '../../testing/blob-store.suite.js';
import { LocalBlobStore } from './local.js';

async function tempRoot(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'aio-blobs-'));
}

blobStoreSuite('LocalBlobStore', async (hooks) => {
  const root = await tempRoot();
  const store = await LocalBlobStore.open(root, { hooks });
  return { store, cleanup: () => fs.rm(root, { recursive: true, force: true }) };
});

describe('LocalBlobStore on disk', () => {
  it('creates staging, blobs and tmp under the root', async () => {
    const root = await tempRoot();
    await LocalBlobStore.open(path.join(root, 'nested', 'store'));
    const entries = await fs.readdir(path.join(root, 'nested', 'store'));
    expect(entries.sort()).toEqual(['blobs', 'staging', 'tmp']);
    await fs.rm(root, { recursive: true, force: true });
  });

  it('stores a blob at blobs/ab/cd/<sha256> and leaves tmp empty after put', async () => {
    const root = await tempRoot();
    const store = await LocalBlobStore.open(root);
    const { sha256 } = await store.put(
      (async function* () {
        yield Buffer.from('content-addressed');
      })(),
    );
    const expected = path.join(root, 'blobs', sha256.slice(0, 2), sha256.slice(2, 4), sha256);
    expect(store.localPath(sha256)).toBe(expected);
    expect(await fs.readFile(expected, 'utf8')).toBe('content-addressed');
    expect(await fs.readdir(path.join(root, 'tmp'))).toEqual([]);
    await fs.rm(root, { recursive: true, force: true });
  });

  it('fails ping with SERVICE_UNAVAILABLE when the blobs folder is gone', async () => {
    const root = await tempRoot();
    const store = await LocalBlobStore.open(root);
    await fs.rm(path.join(root, 'blobs'), { recursive: true });
    await expect(store.ping()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    await fs.rm(root, { recursive: true, force: true });
  });

  it('treats a retried commit whose staging file is already gone as done when the blob exists', async () => {
    const root = await tempRoot();
    const store = await LocalBlobStore.open(root);
    const id = 'upload-0001';
    await store.appendStaging(
      id,
      0,
      (async function* () {
        yield Buffer.from('once');
      })(),
      10,
    );
    const { sha256 } = await store.hashStaging(id);
    await store.commitStaging(id, sha256);
    expect(await store.commitStaging(id, sha256)).toEqual({ size: 4 });
    await expect(
      store.commitStaging(
        'upload-0002',
        sha256.replace(/^./, (c) => (c === '0' ? '1' : '0')),
      ),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await fs.rm(root, { recursive: true, force: true });
  });
});
