import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
  return {
    store,
    cleanup: async () => {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
});

describe('LocalBlobStore on disk', () => {
  it('creates staging, blobs and tmp under the root', async () => {
    const root = await tempRoot();
    await LocalBlobStore.open(path.join(root, 'nested', 'store'));
    const entries = await fs.readdir(path.join(root, 'nested', 'store'));
    expect(entries.sort()).toEqual(['blobs', 'packs', 'staging', 'tmp']);
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
    const [big] = await store.putMany([randomBytes(300 * 1024)]);
    expect(await fs.readFile(store.localPath(big?.sha256 ?? '') ?? '')).toHaveLength(300 * 1024);
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
    const sha = (from: number, to: number): string =>
      createHash('sha256').update(bytes.subarray(from, to)).digest('hex');
    expect(await store.appendStaging('direct-a', 0, chunks(0, total), total)).toEqual({
      size: total,
      sha256: sha(0, total),
    });
    expect(await store.appendStaging('direct-b', 0, chunks(0, 1_000), total)).toEqual({
      size: 1_000,
      sha256: sha(0, 1_000),
    });
    expect(await store.appendStaging('direct-b', 1_000, chunks(1_000, total), total - 1_000)).toEqual({
      size: total,
      sha256: sha(1_000, total),
    });
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
    expect(await store.appendStaging('direct-c', 0, broken(), total)).toEqual({
      size: 9 * 1024 * 1024 + 5,
      sha256: sha(0, 9 * 1024 * 1024 + 5),
    });
    expect((await store.hashStaging('direct-c')).sha256).toBe(
      createHash('sha256')
        .update(bytes.subarray(0, 9 * 1024 * 1024 + 5))
        .digest('hex'),
    );
    // Two at once, after the writes above gave their aligned blocks back to the store:
    // each gets blocks of its own.
    const other = randomBytes(total);
    async function* otherChunks(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < total; at += 65_536) yield other.subarray(at, Math.min(total, at + 65_536));
    }
    const both = await Promise.all([
      store.appendStaging('direct-d', 0, chunks(0, total), total),
      store.appendStaging('direct-e', 0, otherChunks(), total),
    ]);
    expect(both.map((a) => a.sha256)).toEqual([
      sha(0, total),
      createHash('sha256').update(other).digest('hex'),
    ]);
    expect((await store.hashStaging('direct-d')).sha256).toBe(
      createHash('sha256').update(bytes).digest('hex'),
    );
    expect((await store.hashStaging('direct-e')).sha256).toBe(
      createHash('sha256').update(other).digest('hex'),
    );
    await fs.rm(root, { recursive: true, force: true });
  });

  it('hashes big bodies beyond its hashing threads inline, and writes those beyond its direct writers through the page cache, with the same answers', async () => {
    for (const options of [
      { hashThreads: 0 },
      { hashThreads: 1 },
      { directWriters: 1 },
      { directWriters: 0 },
    ]) {
      const root = await tempRoot();
      const store = await LocalBlobStore.open(root, options);
      const bodies = [randomBytes(17 * 1024 * 1024 + 3), randomBytes(16 * 1024 * 1024)];
      async function* chunksOf(bytes: Buffer): AsyncGenerator<Uint8Array> {
        for (let at = 0; at < bytes.length; at += 65_536) yield bytes.subarray(at, at + 65_536);
      }
      const appended = await Promise.all(
        bodies.map((bytes, i) => store.appendStaging(`inline-${i}`, 0, chunksOf(bytes), bytes.length)),
      );
      expect(appended).toEqual(
        bodies.map((bytes) => ({
          size: bytes.length,
          sha256: createHash('sha256').update(bytes).digest('hex'),
        })),
      );
      for (const [i, bytes] of bodies.entries()) {
        expect((await store.hashStaging(`inline-${i}`)).sha256).toBe(appended[i]?.sha256);
        expect((await store.hashStaging(`inline-${i}`)).size).toBe(bytes.length);
      }
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    }
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

describe('LocalBlobStore packs (small blobs of a batch in one file)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  /** A new store root, removed after the test. */
  async function newRoot(): Promise<string> {
    const root = await tempRoot();
    cleanups.push(() => fs.rm(root, { recursive: true, force: true }));
    return root;
  }
  /** A store on `root`, closed after the test (closing twice is harmless). */
  async function openStore(root: string): Promise<LocalBlobStore> {
    const store = await LocalBlobStore.open(root);
    cleanups.push(() => store.close());
    return store;
  }
  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  async function readAll(store: LocalBlobStore, sha256: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await store.read(sha256)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  const packFiles = async (root: string): Promise<string[]> =>
    (await fs.readdir(path.join(root, 'packs'))).filter((n) => n.endsWith('.pack'));

  it('writes a batch of small contents as one pack, not as files of their own, and a new store reads them', async () => {
    const root = await newRoot();
    const store = await openStore(root);
    const contents = Array.from({ length: 100 }, () => randomBytes(4096));
    await store.putMany(contents);
    expect(await packFiles(root)).toHaveLength(1);
    expect(await fs.readdir(path.join(root, 'blobs'))).toEqual(['.layout-2']);
    expect(await filesUnder(path.join(root, 'tmp'))).toEqual([]);
    for (const c of contents) expect(store.localPath(sha(c))).toBeNull();
    await store.close();
    const reopened = await openStore(root);
    for (const c of contents) expect((await readAll(reopened, sha(c))).equals(c)).toBe(true);
  });

  it('shares its packs with another process on the same volume: writes, deletes and compactions are seen at once', async () => {
    const root = await newRoot();
    const api = await openStore(root);
    const worker = await openStore(root);
    const contents = Array.from({ length: 10 }, (_, i) => Buffer.from(`content ${i}`));
    await api.putMany(contents);
    for (const c of contents) expect(await worker.stat(sha(c))).toEqual({ size: c.length });
    // The worker deletes most of them: the pack is rewritten, the API reads the rest from the new one.
    for (const c of contents.slice(0, 8)) await worker.delete(sha(c));
    for (const c of contents.slice(0, 8)) expect(await api.stat(sha(c))).toBeNull();
    for (const c of contents.slice(8)) expect((await readAll(api, sha(c))).equals(c)).toBe(true);
    expect(await packFiles(root)).toHaveLength(1);
  });

  it('rewrites a pack once half of it is dead, and removes it when nothing is left; an open read is not cut short', async () => {
    const root = await newRoot();
    const store = await openStore(root);
    const contents = Array.from({ length: 10 }, () => randomBytes(10_000));
    await store.putMany(contents);
    const [first] = await packFiles(root);
    const reading = await store.read(sha(contents[9] as Buffer));
    for (const c of contents.slice(0, 4)) await store.delete(sha(c));
    expect(await packFiles(root)).toEqual([first]);
    await store.delete(sha(contents[4] as Buffer)); // half dead: rewritten
    const [second] = await packFiles(root);
    expect(second).not.toBe(first);
    expect((await fs.stat(path.join(root, 'packs', second as string))).size).toBe(5 * (36 + 10_000));
    const chunks: Buffer[] = [];
    for await (const chunk of reading) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(contents[9] as Buffer)).toBe(true);
    for (const c of contents.slice(5)) expect((await readAll(store, sha(c))).equals(c)).toBe(true);
    for (const c of contents.slice(5)) await store.delete(sha(c));
    expect(await packFiles(root)).toEqual([]);
  });

  it('rebuilds a lost index from the packs themselves, ignoring a torn record at the end', async () => {
    const root = await newRoot();
    const store = await openStore(root);
    const contents = Array.from({ length: 20 }, () => randomBytes(777));
    await store.putMany(contents);
    await store.close();
    const [pack] = await packFiles(root);
    // A torn record: a header and half of its bytes.
    const torn = randomBytes(500);
    const header = Buffer.alloc(36);
    header.write(sha(torn), 0, 32, 'hex');
    header.writeUInt32BE(1000, 32);
    await fs.appendFile(path.join(root, 'packs', pack as string), Buffer.concat([header, torn]));
    for (const name of await fs.readdir(path.join(root, 'packs')))
      if (name.startsWith('index.db')) await fs.rm(path.join(root, 'packs', name));
    const reopened = await openStore(root);
    for (const c of contents) expect((await readAll(reopened, sha(c))).equals(c)).toBe(true);
    expect(await reopened.stat(sha(torn))).toBeNull();
  });

  it('removes a pack no index row names once it is a day old (a crash before its commit), and keeps a young one', async () => {
    const root = await newRoot();
    await (await openStore(root)).close();
    const old = path.join(root, 'packs', 'crashed-before-commit.pack');
    const young = path.join(root, 'packs', 'being-committed-now.pack');
    await fs.writeFile(old, 'x');
    await fs.writeFile(young, 'y');
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    await fs.utimes(old, dayAgo, dayAgo);
    await openStore(root);
    expect((await packFiles(root)).sort()).toEqual(['being-committed-now.pack']);
  });

  it('keeps a content larger than the pack limit, and a lone small one, as files of their own', async () => {
    const root = await newRoot();
    const store = await openStore(root);
    const big = randomBytes(256 * 1024 + 1);
    const small = randomBytes(10);
    await store.putMany([big, small]);
    expect(store.localPath(sha(big))).not.toBeNull();
    expect(store.localPath(sha(small))).not.toBeNull(); // one small content alone: not worth a pack
    const [lone] = await store.putMany([randomBytes(20)]);
    expect(store.localPath(lone?.sha256 as string)).not.toBeNull();
    expect(await packFiles(root)).toEqual([]);
  });
});
