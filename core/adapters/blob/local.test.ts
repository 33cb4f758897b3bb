import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobStoreSuite } from '../../testing/blob-store.suite.js';
import { LocalBlobStore } from './local.js';

async function tempRoot(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'aio-blobs-'));
}

/** Files (not folders) under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
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

  it('stores a blob at blobs/ab/<sha256> and leaves no temp file after put and putMany', async () => {
    const root = await tempRoot();
    const store = await LocalBlobStore.open(root);
    const { sha256 } = await store.put(
      (async function* () {
        yield Buffer.from('content-addressed');
      })(),
    );
    const expected = path.join(root, 'blobs', sha256.slice(0, 2), sha256);
    expect(store.localPath(sha256)).toBe(expected);
    expect(await fs.readFile(expected, 'utf8')).toBe('content-addressed');
    const many = await store.putMany([Buffer.from('one'), Buffer.from('two'), Buffer.from('one')]);
    for (const { sha256: sha } of many)
      expect(await fs.readFile(store.localPath(sha), 'utf8')).toMatch(/one|two/);
    expect(await filesUnder(path.join(root, 'tmp'))).toEqual([]);
    await fs.rm(root, { recursive: true, force: true });
  });

  it('creates a shard folder the first time a blob needs it', async () => {
    const root = await tempRoot();
    const store = await LocalBlobStore.open(root);
    expect(await fs.readdir(path.join(root, 'blobs'))).toEqual(['.layout-2']);
    const [first] = await store.putMany([Buffer.from('first')]);
    const sha256 = first?.sha256 ?? '';
    expect(await fs.readdir(path.join(root, 'blobs'))).toEqual(['.layout-2', sha256.slice(0, 2)].sort());
    const { sha256: other } = await store.put(
      (async function* () {
        yield Buffer.from('second');
      })(),
    );
    expect(await store.stat(other)).toEqual({ size: 6 });
    await fs.rm(root, { recursive: true, force: true });
  });

  it('moves a store of the first layout (blobs/ab/cd/<sha256>) to blobs/ab/<sha256> when it opens', async () => {
    const root = await tempRoot();
    const contents = ['alpha', 'beta', 'gamma', 'delta'].map((t) => Buffer.from(t));
    const shas = contents.map((c) => createHash('sha256').update(c).digest('hex'));
    // The first layout, as an older server left it; one blob was already moved by a
    // migration that crashed before it removed the old copy.
    for (const [i, sha] of shas.entries()) {
      const dir = path.join(root, 'blobs', sha.slice(0, 2), sha.slice(2, 4));
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, sha), contents[i] as Buffer);
    }
    const moved = shas[0] as string;
    await fs.writeFile(path.join(root, 'blobs', moved.slice(0, 2), moved), contents[0] as Buffer);

    const store = await LocalBlobStore.open(root);
    for (const [i, sha] of shas.entries()) {
      expect(store.localPath(sha)).toBe(path.join(root, 'blobs', sha.slice(0, 2), sha));
      expect(await store.stat(sha)).toEqual({ size: (contents[i] as Buffer).length });
      const chunks: Buffer[] = [];
      for await (const chunk of await store.read(sha)) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(contents[i] as Buffer)).toBe(true);
    }
    // No old folder is left, and the store says it is done.
    for (const sha of shas) {
      const shard = await fs.readdir(path.join(root, 'blobs', sha.slice(0, 2)), { withFileTypes: true });
      expect(shard.filter((e) => e.isDirectory())).toEqual([]);
    }
    expect(await fs.readdir(path.join(root, 'blobs'))).toContain('.layout-2');
    // Opening again changes nothing.
    await LocalBlobStore.open(root);
    for (const sha of shas) expect(await store.stat(sha)).not.toBeNull();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('removes temp files a crash left a day ago and keeps young ones', async () => {
    const root = await tempRoot();
    await LocalBlobStore.open(root);
    const old = path.join(root, 'tmp', 'ab', 'left-by-a-crash');
    const legacyOld = path.join(root, 'tmp', 'from-the-first-layout');
    const young = path.join(root, 'tmp', 'cd', 'being-written');
    for (const file of [old, legacyOld, young]) {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, 'x');
    }
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    await fs.utimes(old, twoDaysAgo, twoDaysAgo);
    await fs.utimes(legacyOld, twoDaysAgo, twoDaysAgo);
    await LocalBlobStore.open(root);
    expect(await filesUnder(path.join(root, 'tmp'))).toEqual(['cd/being-written']);
    await fs.rm(root, { recursive: true, force: true });
  });

  it('writes a big body past the page cache in aligned blocks with the same bytes, from any offset and chunking', async () => {
    const root = await tempRoot();
    const store = await LocalBlobStore.open(root);
    const total = 20 * 1024 * 1024 + 12_345;
    const bytes = randomBytes(total);
    // Odd chunk sizes, one chunk bigger than a block, so blocks are split across chunks.
    async function* chunks(from: number, to: number): AsyncGenerator<Uint8Array> {
      const sizes = [65_536, 1, 4_999, 5 * 1024 * 1024 + 7, 65_536 * 3];
      for (let at = from, i = 0; at < to; i++) {
        const end = Math.min(to, at + (sizes[i % sizes.length] as number));
        yield bytes.subarray(at, end);
        at = end;
      }
    }
    // From offset 0, then a resume at an unaligned offset (written through the page cache).
    expect(await store.appendStaging('direct-a', 0, chunks(0, total), total)).toBe(total);
    expect(await store.appendStaging('direct-b', 0, chunks(0, 1_000), total)).toBe(1_000);
    expect(await store.appendStaging('direct-b', 1_000, chunks(1_000, total), total - 1_000)).toBe(total);
    for (const id of ['direct-a', 'direct-b']) {
      expect(await store.hashStaging(id)).toEqual({
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: total,
      });
    }
    // A source that fails part-way: what arrived is kept, the returned size says how much.
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield* chunks(0, 9 * 1024 * 1024 + 5);
      throw new Error('client went away');
    }
    expect(await store.appendStaging('direct-c', 0, broken(), total)).toBe(9 * 1024 * 1024 + 5);
    expect((await store.hashStaging('direct-c')).sha256).toBe(
      createHash('sha256')
        .update(bytes.subarray(0, 9 * 1024 * 1024 + 5))
        .digest('hex'),
    );
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
