/**
 * The pieces of a parallel download on their own: the chunk pool, positional writes
 * (direct where the filesystem allows, an unaligned tail through the page cache) and the
 * sha256 on a worker thread.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChunkFile, chunkPool, DIRECT_ALIGN } from '../contract/chunk-file.js';
import { ThreadHasher } from '../contract/hash-thread.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-chunk-file-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('chunkPool', () => {
  it('hands out distinct shared buffers of the chunk size', () => {
    const pool = chunkPool(3, 128 * 1024, true);
    expect(pool.shared).toBe(true);
    const buffers = [0, 1, 2].map((i) => pool.buffer(i));
    for (const b of buffers) {
      expect(b.length).toBe(128 * 1024);
      expect(b.buffer).toBeInstanceOf(SharedArrayBuffer);
    }
    buffers[0]?.fill(1);
    buffers[1]?.fill(2);
    expect(buffers[0]?.every((x) => x === 1)).toBe(true);
    expect(buffers[2]?.includes(2)).toBe(false);
  });

  it('hands out aligned buffers that are not shared when sharing is not asked for', () => {
    const pool = chunkPool(2, 128 * 1024, false);
    expect(pool).toMatchObject({ aligned: true, shared: false });
    const b = pool.buffer(1);
    expect(b.length).toBe(128 * 1024);
    expect(b.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    // A WebAssembly memory starts on a page: each buffer of a page multiple is aligned.
    expect(b.byteOffset % DIRECT_ALIGN).toBe(0);
  });

  it('falls back to plain buffers for sizes WebAssembly pages do not divide', () => {
    const pool = chunkPool(2, 100_000, false);
    expect(pool.aligned).toBe(false);
    expect(pool.buffer(0).length).toBe(100_000);
  });
});

describe('ChunkFile', () => {
  it.each([true, false])('writes pieces out of order into the right places (direct: %s)', async (direct) => {
    const file = path.join(dir, 'out.partial');
    const chunk = 64 * 1024;
    const size = 5 * chunk + 1234; // the last piece has an unaligned tail
    const content = randomBytes(size);
    const pool = chunkPool(6, chunk, true);
    const out = await ChunkFile.open(file, { direct, syncEvery: 100_000 });
    if (!direct) expect(out.direct).toBe(false);
    const order = [3, 0, 5, 1, 4, 2];
    await Promise.all(
      order.map((i) => {
        const buffer = pool.buffer(i);
        const length = Math.min(chunk, size - i * chunk);
        content.copy(buffer, 0, i * chunk, i * chunk + length);
        return out.write(buffer, 0, length, i * chunk);
      }),
    );
    await out.flush();
    // 325 KiB written with a flush due every 100,000 bytes: direct writes are flushed too.
    expect(out.backgroundFlushes).toBeGreaterThanOrEqual(1);
    await out.close();
    expect((await fs.readFile(file)).equals(content)).toBe(true);
  });

  it('truncates to a prefix and replaces an existing file', async () => {
    const file = path.join(dir, 'out.partial');
    await fs.writeFile(file, 'x'.repeat(10 * DIRECT_ALIGN));
    const out = await ChunkFile.open(file, { direct: true, syncEvery: 0 });
    const pool = chunkPool(1, 64 * 1024, false);
    const buffer = pool.buffer(0).fill(7);
    await out.write(buffer, 0, buffer.length, 0);
    await out.write(buffer, 0, buffer.length, buffer.length);
    await out.truncate(buffer.length);
    await out.close();
    const bytes = await fs.readFile(file);
    expect(bytes.length).toBe(buffer.length);
    expect(bytes.every((x) => x === 7)).toBe(true);
  });
});

describe('ThreadHasher', () => {
  it('hashes shared memory handed over in order, without keeping the process alive', async () => {
    const hasher = new ThreadHasher();
    const memory = Buffer.from(new SharedArrayBuffer(3 * 1024 * 1024));
    memory.set(randomBytes(memory.length));
    const parts = [memory.subarray(0, 1000), memory.subarray(1000, 2_000_000), memory.subarray(2_000_000)];
    const done: number[] = [];
    parts.forEach((part, i) => hasher.update(part, (err) => (expect(err).toBeNull(), done.push(i))));
    const digest = await hasher.digest();
    expect(done).toEqual([0, 1, 2]);
    expect(digest).toBe(createHash('sha256').update(memory).digest('hex'));
    await hasher.close();
    await hasher.close();
    // After close, updates fail rather than hang.
    const late = await new Promise<Error | null>((resolve) => hasher.update(parts[0] as Buffer, resolve));
    expect(late).toBeInstanceOf(Error);
  });

  it('refuses memory it would have to copy', () => {
    const hasher = new ThreadHasher();
    expect(() => hasher.update(Buffer.alloc(10), () => undefined)).toThrow(TypeError);
    return hasher.close();
  });
});
