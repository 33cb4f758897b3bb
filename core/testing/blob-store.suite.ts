/**
 * Conformance suite for the `BlobStore` port, run by every adapter's test file:
 * `blobStoreSuite('LocalBlobStore', async (hooks) => ({ store: await LocalBlobStore.open(dir, { hooks }), cleanup }))`.
 *
 * `hooks.beforeCommitRename` simulates a crash between the fsync of a staged upload and
 * its move into place; an adapter without such a step may ignore it and pass
 * `{ commitHooks: false }`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../ports/blob-store.js';
import { PassThrough, Readable } from 'node:stream';

export interface BlobStoreHooks {
  beforeCommitRename?: () => Promise<void>;
}

export interface BlobStoreFixture {
  store: BlobStore;
  cleanup(): Promise<void>;
}

export interface BlobStoreSuiteOptions {
  /** Whether the factory honours `hooks.beforeCommitRename`. Default true. */
  commitHooks?: boolean;
}

const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function* chunksOf(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part) : part;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A staging id as a server would make one. */
const newId = (): string => randomBytes(12).toString('base64url');

export function blobStoreSuite(
  name: string,
  factory: (hooks?: BlobStoreHooks) => Promise<BlobStoreFixture>,
  options: BlobStoreSuiteOptions = {},
): void {
  describe(`BlobStore conformance: ${name}`, () => {
    const fixtures: BlobStoreFixture[] = [];
    async function open(hooks?: BlobStoreHooks): Promise<BlobStore> {
      const fixture = await factory(hooks);
      fixtures.push(fixture);
      return fixture.store;
    }
    afterEach(async () => {
      await Promise.all(fixtures.splice(0).map((f) => f.cleanup()));
    });

    /** Stages `content` and commits it; returns its sha256. */
    async function commit(store: BlobStore, content: Buffer): Promise<string> {
      const id = newId();
      await store.appendStaging(id, 0, chunksOf(content), content.length);
      const sha256 = sha256Of(content);
      await store.commitStaging(id, sha256);
      return sha256;
    }

    it('reports no staging file for an unknown id', async () => {
      const store = await open();
      expect(await store.stagingSize(newId())).toBeNull();
    });

    it('appends in several requests at the right offsets and returns each new size', async () => {
      const store = await open();
      const id = newId();
      expect(await store.appendStaging(id, 0, chunksOf('hello', ' '), 1_000)).toEqual({
        size: 6,
        sha256: sha256Of(Buffer.from('hello ')),
      });
      expect(await store.stagingSize(id)).toBe(6);
      // Each append's sha256 covers what that append wrote, not the whole file.
      expect(await store.appendStaging(id, 6, chunksOf('wor', 'ld', '!'), 1_000)).toEqual({
        size: 12,
        sha256: sha256Of(Buffer.from('world!')),
      });
      expect(await store.appendStaging(id, 12, chunksOf(), 1_000)).toEqual({
        size: 12,
        sha256: sha256Of(Buffer.alloc(0)),
      });
      expect((await collect(store.readStaging(id))).toString()).toBe('hello world!');
      expect(await store.hashStaging(id)).toEqual({
        sha256: sha256Of(Buffer.from('hello world!')),
        size: 12,
      });
    });

    it('rejects an append whose offset is not the current size with OFFSET_MISMATCH and writes nothing', async () => {
      const store = await open();
      const id = newId();
      await store.appendStaging(id, 0, chunksOf('abc'), 100);
      await expect(store.appendStaging(id, 2, chunksOf('X'), 100)).rejects.toMatchObject({
        code: 'OFFSET_MISMATCH',
      });
      await expect(store.appendStaging(id, 4, chunksOf('X'), 100)).rejects.toMatchObject({
        code: 'OFFSET_MISMATCH',
      });
      await expect(store.appendStaging(newId(), 5, chunksOf('X'), 100)).rejects.toMatchObject({
        code: 'OFFSET_MISMATCH',
      });
      expect((await collect(store.readStaging(id))).toString()).toBe('abc');
    });

    it('writes at most maxBytes and drops the rest', async () => {
      const store = await open();
      const id = newId();
      expect(await store.appendStaging(id, 0, chunksOf('12345', '67890', 'abc'), 7)).toEqual({
        size: 7,
        sha256: sha256Of(Buffer.from('1234567')),
      });
      expect((await store.appendStaging(id, 7, chunksOf('xyz'), 0)).size).toBe(7);
      expect((await collect(store.readStaging(id))).toString()).toBe('1234567');
    });

    it('keeps what arrived when the source fails and returns that size', async () => {
      const store = await open();
      const id = newId();
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield Buffer.from('partial ');
        yield Buffer.from('data');
        throw new Error('client went away');
      }
      expect(await store.appendStaging(id, 0, failing(), 1_000)).toEqual({
        size: 12,
        sha256: sha256Of(Buffer.from('partial data')),
      });
      expect(await store.stagingSize(id)).toBe(12);
      expect((await store.appendStaging(id, 12, chunksOf('!'), 1_000)).size).toBe(13);
      expect((await collect(store.readStaging(id))).toString()).toBe('partial data!');
    });

    it('reads a Node stream to maxBytes, tells each chunk, and leaves the rest unread', async () => {
      const store = await open();
      const id = newId();
      const body = new PassThrough();
      for (const part of ['12345', '67890', 'abc']) body.write(part);
      body.end();
      const told: number[] = [];
      expect(await store.appendStaging(id, 0, body, 7, { onChunk: (n) => told.push(n) })).toEqual({
        size: 7,
        sha256: sha256Of(Buffer.from('1234567')),
      });
      // The chunk that crossed maxBytes was told whole (a longer body shows); the next
      // one was not read: the caller still gets it, and the stream's end.
      expect(told).toEqual([5, 5]);
      expect(body.destroyed).toBe(false);
      expect((await collect(body)).toString()).toBe('abc');
    });

    it('writes a long Node stream (waiting for the disk as it goes) and hashes all of it', async () => {
      const store = await open();
      const id = newId();
      const content = randomBytes(13 * 1024 * 1024 + 4321);
      const pieces = function* (): Generator<Buffer> {
        for (let at = 0; at < content.length; at += 64 * 1024) yield content.subarray(at, at + 64 * 1024);
      };
      let told = 0;
      const appended = await store.appendStaging(id, 0, Readable.from(pieces()), content.length, {
        onChunk: (n) => (told += n),
      });
      expect(appended).toEqual({ size: content.length, sha256: sha256Of(content) });
      expect(told).toBe(content.length);
      expect(sha256Of(await collect(store.readStaging(id)))).toBe(sha256Of(content));
    });

    it('keeps what arrived when a Node stream fails', async () => {
      const store = await open();
      const id = newId();
      const body = new PassThrough();
      body.write('partial ');
      body.write('data');
      setTimeout(() => body.destroy(new Error('client went away')), 20);
      expect(await store.appendStaging(id, 0, body, 1_000)).toEqual({
        size: 12,
        sha256: sha256Of(Buffer.from('partial data')),
      });
      expect(await store.stagingSize(id)).toBe(12);
    });

    it('reads ranges of a staging file', async () => {
      const store = await open();
      const id = newId();
      await store.appendStaging(id, 0, chunksOf('0123456789'), 100);
      expect((await collect(store.readStaging(id, { start: 3, end: 5 }))).toString()).toBe('345');
    });

    it('commits a staged file so that read returns exactly its bytes and stat its size', async () => {
      const store = await open();
      const content = randomBytes(300_000);
      const id = newId();
      await store.appendStaging(id, 0, chunksOf(content.subarray(0, 1000), content.subarray(1000)), 1e9);
      const sha256 = sha256Of(content);
      expect(await store.commitStaging(id, sha256)).toEqual({ size: content.length });
      expect(await store.stagingSize(id)).toBeNull();
      expect((await collect(await store.read(sha256))).equals(content)).toBe(true);
      expect(await store.stat(sha256)).toEqual({ size: content.length });
    });

    it('returns exact bytes for ranges: first byte, last byte, a middle slice and the whole', async () => {
      const store = await open();
      const content = randomBytes(1_000_003);
      const sha256 = await commit(store, content);
      const last = content.length - 1;
      const cases: [number, number][] = [
        [0, 0],
        [last, last],
        [12_345, 678_901],
        [0, last],
      ];
      for (const [start, end] of cases) {
        const got = await collect(await store.read(sha256, { start, end }));
        expect(got.equals(content.subarray(start, end + 1)), `range ${start}-${end}`).toBe(true);
      }
    });

    it('throws NotFoundError when reading a blob that does not exist', async () => {
      const store = await open();
      const missing = sha256Of(randomBytes(8));
      await expect(store.read(missing)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await store.stat(missing)).toBeNull();
    });

    it.runIf(options.commitHooks ?? true)(
      'leaves nothing at the final path and the staging file intact when a commit is interrupted before the rename',
      async () => {
        let crash = true;
        const store = await open({
          beforeCommitRename: async () => {
            if (crash) throw new Error('simulated crash before rename');
          },
        });
        const content = randomBytes(50_000);
        const id = newId();
        await store.appendStaging(id, 0, chunksOf(content), 1e9);
        const sha256 = sha256Of(content);

        await expect(store.commitStaging(id, sha256)).rejects.toThrow('simulated crash');
        expect(await store.stat(sha256)).toBeNull();
        await expect(store.read(sha256)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const local = store.localPath(sha256);
        if (local !== null) await expect(access(local)).rejects.toMatchObject({ code: 'ENOENT' });
        expect(await store.hashStaging(id)).toEqual({ sha256, size: content.length });

        crash = false;
        await store.commitStaging(id, sha256);
        expect((await collect(await store.read(sha256))).equals(content)).toBe(true);
      },
    );

    it('stores identical content once: a second commit just removes its staging file', async () => {
      const store = await open();
      const content = Buffer.from('same bytes');
      const sha256 = await commit(store, content);
      const again = newId();
      await store.appendStaging(again, 0, chunksOf(content), 100);
      expect(await store.commitStaging(again, sha256)).toEqual({ size: content.length });
      expect(await store.stagingSize(again)).toBeNull();
      expect((await collect(await store.read(sha256))).equals(content)).toBe(true);
    });

    it('puts a whole stream, reporting its sha256 and size; stat and delete follow it', async () => {
      const store = await open();
      const content = randomBytes(2_500_000);
      const put = await store.put(
        chunksOf(content.subarray(0, 10), content.subarray(10, 1_500_000), content.subarray(1_500_000)),
      );
      expect(put).toEqual({ sha256: sha256Of(content), size: content.length });
      expect(await store.stat(put.sha256)).toEqual({ size: content.length });
      expect((await collect(await store.read(put.sha256))).equals(content)).toBe(true);
      expect(await store.put(chunksOf(content))).toEqual(put);
      await store.delete(put.sha256);
      expect(await store.stat(put.sha256)).toBeNull();
      await expect(store.delete(put.sha256)).resolves.toBeUndefined();
    });

    it('puts many contents at once: new, repeated, already stored and empty ones', async () => {
      const store = await open();
      const existing = randomBytes(300);
      const stored = await store.put(chunksOf(existing));
      const contents: Buffer[] = [
        ...Array.from({ length: 40 }, () => randomBytes(1 + Math.floor(Math.random() * 5000))),
        existing,
        Buffer.alloc(0),
      ];
      contents.push(contents[3] ?? Buffer.alloc(1));
      const put = await store.putMany(contents);
      expect(put).toEqual(contents.map((c) => ({ sha256: sha256Of(c), size: c.length })));
      expect(put[40]?.sha256).toBe(stored.sha256);
      for (const [i, c] of contents.entries()) {
        expect((await collect(await store.read(put[i]?.sha256 as string))).equals(c)).toBe(true);
      }
      expect(await store.putMany([])).toEqual([]);
    });

    it('serves, deletes and stores again many small contents of one batch, one by one', async () => {
      const store = await open();
      const contents = Array.from({ length: 300 }, (_, i) => randomBytes(100 + i * 13));
      const shas = (await store.putMany(contents)).map((p) => p.sha256);
      const sample = contents[7] as Buffer;
      const sha7 = shas[7] as string;
      expect(await collect(await store.read(sha7, { start: 5, end: 9 }))).toEqual(sample.subarray(5, 10));
      expect(await collect(await store.read(sha7, { start: 90, end: 10_000 }))).toEqual(sample.subarray(90));
      await expect(store.read(sha7, { start: sample.length, end: sample.length + 5 })).rejects.toMatchObject({
        code: 'RANGE_NOT_SATISFIABLE',
      });
      // Delete two thirds, checking after each step that the rest is intact.
      for (const [i, sha] of shas.entries()) {
        if (i % 3 === 0) continue;
        await store.delete(sha);
        expect(await store.stat(sha)).toBeNull();
        await expect(store.read(sha)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        if (i % 50 === 1) {
          for (const [j, other] of shas.entries()) {
            if (j % 3 !== 0 && j <= i) continue;
            expect((await collect(await store.read(other))).equals(contents[j] as Buffer)).toBe(true);
          }
        }
      }
      for (const [i, sha] of shas.entries()) {
        if (i % 3 === 0)
          expect((await collect(await store.read(sha))).equals(contents[i] as Buffer)).toBe(true);
      }
      // What was deleted can be stored again.
      const again = contents.filter((_, i) => i % 3 === 1);
      await store.putMany(again);
      for (const c of again) expect((await collect(await store.read(sha256Of(c)))).equals(c)).toBe(true);
      for (const sha of shas) await store.delete(sha);
      for (const sha of shas) expect(await store.stat(sha)).toBeNull();
    });

    it('keeps nothing from a put whose source fails', async () => {
      const store = await open();
      const content = Buffer.from('never complete');
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield content;
        throw new Error('source broke');
      }
      await expect(store.put(failing())).rejects.toThrow('source broke');
      expect(await store.stat(sha256Of(content))).toBeNull();
    });

    it('deletes a staging file, and deleting a missing one is not an error', async () => {
      const store = await open();
      const id = newId();
      await store.appendStaging(id, 0, chunksOf('x'), 10);
      await store.deleteStaging(id);
      expect(await store.stagingSize(id)).toBeNull();
      await expect(store.deleteStaging(id)).resolves.toBeUndefined();
    });

    it('rejects invalid staging ids and hashes with BAD_REQUEST before touching storage', async () => {
      const store = await open();
      const badIds = [
        '../../etc/passwd',
        'short',
        'has space in it',
        'a/b/c/d/e/f',
        '',
        'x'.repeat(129),
        'dot.dot.dot',
      ];
      for (const id of badIds) {
        await expect(store.stagingSize(id), id).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(store.appendStaging(id, 0, chunksOf('x'), 10), id).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
        await expect(store.hashStaging(id), id).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(store.deleteStaging(id), id).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(() => store.readStaging(id), id).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
      }
      const good = sha256Of(Buffer.from('x'));
      const badHashes = [good.toUpperCase(), good.slice(1), `${good}0`, `../${good.slice(3)}`, ''];
      const id = newId();
      await store.appendStaging(id, 0, chunksOf('x'), 10);
      for (const sha of badHashes) {
        await expect(store.read(sha), sha).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(store.stat(sha), sha).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(store.delete(sha), sha).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(store.commitStaging(id, sha), sha).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      }
      expect(await store.stagingSize(id)).toBe(1);
    });

    it('answers ping', async () => {
      const store = await open();
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('streams a 64 MiB upload in and out without holding it in memory', async () => {
      const store = await open();
      const total = 64 * 1024 * 1024;
      const chunk = 64 * 1024;
      // One random block, yielded as shifting views: varied content without allocating 64 MiB of chunks.
      const block = randomBytes(1024 * 1024);
      const expected = createHash('sha256');
      let peakRss = 0;
      const sample = (): void => {
        peakRss = Math.max(peakRss, process.memoryUsage.rss());
      };
      async function* source(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < total / chunk; i++) {
          const offset = (i * 7_919) % (block.length - chunk);
          const view = block.subarray(offset, offset + chunk);
          expected.update(view);
          if (i % 64 === 0) sample();
          yield view;
        }
      }
      const before = process.memoryUsage.rss();
      const id = newId();
      const appended = await store.appendStaging(id, 0, source(), total);
      const sha256 = expected.digest('hex');
      expect(appended).toEqual({ size: total, sha256 });
      // Writing holds a few blocks at most (LocalBlobStore: three of 4 MiB and a hashing
      // thread for a body this big); holding the upload would cost 64 MiB.
      expect(peakRss - before).toBeLessThan(32 * 1024 * 1024);
      expect(await store.hashStaging(id)).toEqual({ sha256, size: total });
      await store.commitStaging(id, sha256);

      const readBack = createHash('sha256');
      let size = 0;
      let chunks = 0;
      for await (const piece of await store.read(sha256)) {
        readBack.update(piece as Buffer);
        size += (piece as Buffer).length;
        if (++chunks % 16 === 0) sample();
      }
      sample();
      expect(size).toBe(total);
      expect(readBack.digest('hex')).toBe(sha256);
      // Loose on purpose: streamed chunks are garbage the GC collects in its own time (about
      // 35 MiB here), while holding the file would add at least 64 MiB.
      expect(peakRss - before).toBeLessThan(56 * 1024 * 1024);
    });
  });
}
