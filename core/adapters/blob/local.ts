/**
 * LocalBlobStore: the `BlobStore` on a local directory (a Docker volume in compose,
 * shared by the API and the workers).
 *
 *   <root>/staging/<id>          uploads in progress (id chosen by the server)
 *   <root>/blobs/ab/<sha256>     committed, content-addressed, never rewritten
 *   <root>/tmp/ab/<random>       whole-blob writes (`put`, `putMany`) before they are renamed in
 *   <root>/packs/                small blobs of a batch, many per file (`packs.ts`)
 *
 * One level of 256 shard folders, as git's loose objects: concurrent writes spread over
 * 256 folders instead of contending for one folder's lock, and a shard folder is
 * created (durably) only the first time it is needed. The first layout,
 * `blobs/ab/cd/<sha256>`, created one of 65,536 folders per new blob in a young store —
 * a second inode and a second fsync per file. A store in that layout is moved to this
 * one when it opens (`migrateLegacyLayout`, crash-safe and idempotent).
 *
 * Ids and hashes are checked against strict patterns before any filesystem call, so
 * no caller-supplied string can name a path outside these folders. Every commit is
 * write → fsync → rename → fsync directory: a crash leaves either the old state or
 * the complete new file, never a partial file at a final path.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants, createReadStream, statSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { AppError, NotFoundError, UnavailableError } from '../../../contract/errors.js';
import type { AppendOptions, AppendedBytes, BlobStat, BlobStore, ByteRange } from '../../ports/blob-store.js';
import { mapPool } from '../../domain/pool.js';
import { PACK_MAX_BLOB_BYTES, PackStore } from './packs.js';
import { PositionalWriter } from './positional-writer.js';
import { BackgroundSyncs, DIRECT_ALIGN, FLUSH_EVERY_BYTES, chunkPool } from '../../../contract/chunk-file.js';
import { InlineHasher, ThreadHasher, type ChunkHasher } from '../../../contract/hash-thread.js';
import {
  MAX_IOVECS,
  exists,
  isNotFound,
  openTemp,
  readdirIfPresent,
  removeIfPresent,
  syncDir,
  writeFully,
} from './fs-util.js';

const STAGING_ID = /^[A-Za-z0-9_-]{8,128}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** Hashing reads through one buffer of this size. */
const HASH_BUFFER_BYTES = 1024 * 1024;
const READ_CHUNK_BYTES = 1024 * 1024;
/** Request bodies go to disk in `writev`s of about this many bytes (no copying). */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * A request body of at least this many bytes is written past the page cache (`O_DIRECT`)
 * in aligned `WRITE_BATCH_BYTES` blocks. Why: on the test VM a buffered write into fresh
 * page-cache memory cost ~2.5 s of system time per GiB (memory the guest frees goes back
 * to the host within seconds), 9.7 ms per 4 MiB `pwritev`; a direct write of the same
 * block costs a copy into an aligned buffer and the disk's own time, overlapped with the
 * transfer, and leaves the page cache to the files people read.
 */
const DIRECT_MIN_BYTES = 16 * 1024 * 1024;
/**
 * Blocks of a direct write: one filling while the others are written (a slow write of
 * the disk does not stop the socket's reading at once).
 */
const DIRECT_BLOCKS = 3;
/** Big bodies written with `O_DIRECT` at once, by default (48 MiB of blocks). */
const DIRECT_WRITERS = 4;
/** File operations in flight at once in `putMany`. */
const PUT_MANY_CONCURRENCY = 32;
/** `putMany` packs its small contents when it has at least this many (one alone is cheaper as a file). */
const PACK_MIN_BLOBS = 2;
/** A shard folder of `blobs/` and `tmp/`: `00` … `ff`. */
const SHARD = /^[0-9a-f]{2}$/;
/** Written (fsynced) in `blobs/` once the store is in the one-level layout. */
const LAYOUT_MARK = '.layout-2';
/** Temp files older than this are left-overs of a crash (no write takes this long). */
const STALE_TMP_MS = 24 * 60 * 60 * 1000;

export interface LocalBlobStoreOptions {
  /**
   * Hashing threads for big bodies at once (default: one per core); a big body written
   * while that many are busy is hashed on the calling thread instead.
   */
  hashThreads?: number;
  /**
   * Big bodies written with `O_DIRECT` at once (default `DIRECT_WRITERS`), each holding
   * `DIRECT_BLOCKS` blocks of 4 MiB; more at once go through the page cache.
   */
  directWriters?: number;
  /** Test seams for crash-consistency tests. */
  hooks?: {
    /** Runs in `commitStaging` after the file is fsynced, just before the rename; a throw aborts the commit. */
    beforeCommitRename?: () => Promise<void>;
  };
}

export class LocalBlobStore implements BlobStore {
  private readonly stagingDir: string;
  private readonly blobsDir: string;
  private readonly tmpDir: string;
  /** Aligned blocks for direct writes, reused from one upload to the next. */
  private readonly blocks: AlignedBlocks;
  /** Hashers of direct writes (threads, kept between uploads). */
  private readonly hashers: Hashers;

  private constructor(
    readonly root: string,
    private readonly options: LocalBlobStoreOptions,
    private readonly packs: PackStore,
  ) {
    this.stagingDir = path.join(root, 'staging');
    this.blobsDir = path.join(root, 'blobs');
    this.tmpDir = tmpDirOf(root);
    this.hashers = new Hashers(options.hashThreads ?? availableParallelism(), 2);
    this.blocks = new AlignedBlocks(DIRECT_BLOCKS, DIRECT_BLOCKS * (options.directWriters ?? DIRECT_WRITERS));
  }

  /**
   * Opens the store at `root`, creating `staging/`, `blobs/` and `tmp/` when absent,
   * moving a store of the first layout to the current one, and removing temp files a
   * crash left behind (older than a day: another process sharing the volume may be
   * writing a young one).
   */
  static async open(root: string, options: LocalBlobStoreOptions = {}): Promise<LocalBlobStore> {
    const absolute = path.resolve(root);
    const packs = await PackStore.open(path.join(absolute, 'packs'), () => tmpPathIn(tmpDirOf(absolute)));
    const store = new LocalBlobStore(absolute, options, packs);
    try {
      for (const dir of [store.stagingDir, store.blobsDir, store.tmpDir])
        await fs.mkdir(dir, { recursive: true });
      await store.migrateLegacyLayout();
      await store.sweepTmp();
    } catch (err) {
      packs.close();
      throw err;
    }
    return store;
  }

  /**
   * Moves every `blobs/ab/cd/<sha256>` of the first layout to `blobs/ab/<sha256>`, then
   * records that the store is done (`LAYOUT_MARK`), so later opens skip the scan. Each
   * move is one rename (atomic) and each shard folder is fsynced before its old
   * subfolders go, so a crash at any point leaves every blob under one of the two names
   * and the next open finishes the job. Two processes opening the same store at once
   * both move; the loser of a rename finds the file gone and goes on.
   */
  private async migrateLegacyLayout(): Promise<void> {
    const mark = path.join(this.blobsDir, LAYOUT_MARK);
    if (await exists(mark)) return;
    const shards = (await fs.readdir(this.blobsDir)).filter((name) => SHARD.test(name));
    await mapPool(shards, 8, async (shard) => {
      const shardDir = path.join(this.blobsDir, shard);
      const olds = (await fs.readdir(shardDir, { withFileTypes: true })).filter(
        (e) => e.isDirectory() && SHARD.test(e.name),
      );
      if (olds.length === 0) return;
      for (const old of olds) {
        const oldDir = path.join(shardDir, old.name);
        for (const name of await readdirIfPresent(oldDir)) {
          if (!SHA256.test(name)) continue;
          try {
            await fs.rename(path.join(oldDir, name), path.join(shardDir, name));
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
        }
      }
      await syncDir(shardDir);
      for (const old of olds) {
        const oldDir = path.join(shardDir, old.name);
        // Anything that is not a blob (a stray temp file) goes with the old folder.
        await fs.rm(oldDir, { recursive: true, force: true });
      }
    });
    const handle = await fs.open(mark, 'w', 0o600);
    try {
      await handle.writeFile('blobs/ab/<sha256>\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await syncDir(this.blobsDir);
  }

  /** Removes temp files older than `STALE_TMP_MS` (left by a crash mid-write). */
  private async sweepTmp(): Promise<void> {
    const cutoff = Date.now() - STALE_TMP_MS;
    const shards = (await fs.readdir(this.tmpDir)).filter((name) => SHARD.test(name));
    const dirs = [this.tmpDir, ...shards.map((shard) => path.join(this.tmpDir, shard))];
    await mapPool(dirs, 8, async (dir) => {
      for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (!entry.isFile()) continue;
        const file = path.join(dir, entry.name);
        const stat = await fs.stat(file).catch(() => null);
        if (stat !== null && stat.mtimeMs < cutoff) await removeIfPresent(file);
      }
    });
  }

  async stagingSize(id: string): Promise<number | null> {
    try {
      return (await fs.stat(this.stagingPath(id))).size;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * Throws `AppError('OFFSET_MISMATCH')` when `offset` is not the current size (a missing
   * file has size 0) and `BAD_REQUEST` for an invalid id. Errors of the source are not
   * rethrown: what arrived is kept and the size returned. Filesystem errors are thrown.
   */
  async appendStaging(
    id: string,
    offset: number,
    source: AsyncIterable<Uint8Array>,
    maxBytes: number,
    options: AppendOptions = {},
  ): Promise<AppendedBytes> {
    const file = this.stagingPath(id);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new AppError('BAD_REQUEST', 'Invalid offset.');
    if (Number.isNaN(maxBytes) || maxBytes < 0) throw new AppError('BAD_REQUEST', 'Invalid maxBytes.');
    // Only offset 0 may create the file; a later offset needs the earlier bytes.
    let handle: FileHandle;
    try {
      handle = await fs.open(
        file,
        offset === 0 ? constants.O_RDWR | constants.O_CREAT : constants.O_RDWR,
        0o600,
      );
    } catch (err) {
      if (isNotFound(err)) throw new AppError('OFFSET_MISMATCH', `Upload ${id} has 0 bytes, not ${offset}.`);
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size !== offset)
        throw new AppError('OFFSET_MISMATCH', `Upload ${id} has ${size} bytes, not ${offset}.`);
      // Buffered bodies get one fsync at the end (flushing while writing the page cache
      // measured slower: it stalls the writes); direct ones are also flushed as they go.
      const direct =
        offset % DIRECT_ALIGN === 0 && maxBytes >= DIRECT_MIN_BYTES
          ? await openDirect(file, this.blocks, this.hashers)
          : null;
      const input: ChunkSource = { source, maxBytes, onChunk: options.onChunk };
      let appended: AppendedBytes;
      try {
        appended = direct
          ? await writeThroughBlocks(handle, input, offset, direct)
          : await writeGathered(handle, input, offset);
      } finally {
        if (direct) {
          await this.hashers.give(direct.hasher);
          await direct.handle.close();
          for (const block of direct.blocks) this.blocks.give(block);
        }
      }
      await handle.sync();
      return appended;
    } finally {
      await handle.close();
    }
  }

  /** Streams staging `id` (inclusive range). A missing file surfaces as an ENOENT stream error. */
  readStaging(id: string, range?: ByteRange): Readable {
    const file = this.stagingPath(id);
    checkRange(range);
    return createReadStream(file, { start: range?.start, end: range?.end, highWaterMark: READ_CHUNK_BYTES });
  }

  /** Throws `NotFoundError` when the staging file is absent. */
  async hashStaging(id: string): Promise<{ sha256: string; size: number }> {
    const file = this.stagingPath(id);
    let handle: FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`No staging file ${id}.`, err);
      throw err;
    }
    try {
      // One reused buffer: hashing a large upload allocates nothing per chunk.
      const buffer = Buffer.allocUnsafe(HASH_BUFFER_BYTES);
      const hash = createHash('sha256');
      let size = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        size += bytesRead;
      }
      return { sha256: hash.digest('hex'), size };
    } finally {
      await handle.close();
    }
  }

  /**
   * The caller has verified that the content hashes to `sha256`. Idempotent: when the
   * blob exists already (same content, or a retried commit whose staging file is gone)
   * the staging file is removed and the blob's stat returned. `NotFoundError` when
   * neither exists.
   */
  async commitStaging(id: string, sha256: string): Promise<BlobStat> {
    const staging = this.stagingPath(id);
    const final = this.blobPath(sha256);
    const existing = await this.stat(sha256);
    if (existing !== null) {
      await removeIfPresent(staging);
      return existing;
    }
    let handle: FileHandle;
    try {
      handle = await fs.open(staging, 'r');
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`No staging file ${id}.`, err);
      throw err;
    }
    let size: number;
    try {
      await handle.sync();
      size = (await handle.stat()).size;
    } finally {
      await handle.close();
    }
    await this.moveIntoPlace(staging, final, this.options.hooks?.beforeCommitRename);
    await syncDir(this.stagingDir);
    return { size };
  }

  async deleteStaging(id: string): Promise<void> {
    await removeIfPresent(this.stagingPath(id));
  }

  /** Writes to `tmp/`, hashing on the way, then renames into place. A source error is rethrown and nothing kept. */
  async put(source: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
    const tmp = tmpPathIn(this.tmpDir);
    const hash = createHash('sha256');
    const handle = await openTemp(tmp);
    let size: number;
    try {
      const writer = new PositionalWriter(handle, 0, hash);
      await writer.consume(source, Number.POSITIVE_INFINITY, { keepOnSourceError: false });
      await writer.flush();
      await handle.sync();
      size = writer.position;
    } catch (err) {
      await handle.close();
      await removeIfPresent(tmp);
      throw err;
    }
    await handle.close();
    const sha256 = hash.digest('hex');
    try {
      if ((await this.stat(sha256)) !== null) await removeIfPresent(tmp);
      else await this.moveIntoPlace(tmp, this.blobPath(sha256));
    } catch (err) {
      await removeIfPresent(tmp);
      throw err;
    }
    return { sha256, size };
  }

  async putMany(contents: readonly Uint8Array[]): Promise<Array<{ sha256: string; size: number }>> {
    const out = contents.map((bytes) => ({
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.byteLength,
    }));
    // Each new content once (duplicates in the batch, and content already stored, are not written).
    const unique = new Map<string, Uint8Array>();
    for (const [i, { sha256 }] of out.entries()) {
      if (!unique.has(sha256) && !this.has(sha256)) unique.set(sha256, contents[i] as Uint8Array);
    }
    const work = [...unique].map(([sha256, bytes]) => ({ sha256, bytes }));
    // Several small contents go into one pack (one file, one fsync); the rest are files of their own.
    const isSmall = (c: { bytes: Uint8Array }): boolean =>
      c.bytes.byteLength > 0 && c.bytes.byteLength <= PACK_MAX_BLOB_BYTES;
    const small = work.filter(isSmall);
    const pack = small.length >= PACK_MIN_BLOBS ? small : [];
    await Promise.all([
      this.packs.write(pack),
      this.putLoose(pack.length > 0 ? work.filter((c) => !isSmall(c)) : work),
    ]);
    return out;
  }

  /** Writes each content as a file of its own: temp → fsync → rename; each shard folder fsynced once. */
  private async putLoose(contents: ReadonlyArray<{ sha256: string; bytes: Uint8Array }>): Promise<void> {
    if (contents.length === 0) return;
    const work = contents.map((c) => ({ ...c, tmp: tmpPathIn(this.tmpDir, c.sha256) }));
    /** Temp files written and not (yet) renamed into place. */
    const written = new Set<string>();
    try {
      await mapPool(work, PUT_MANY_CONCURRENCY, async ({ tmp, bytes }) => {
        const handle = await openTemp(tmp);
        written.add(tmp);
        try {
          await handle.writeFile(bytes);
          await handle.sync();
        } finally {
          await handle.close();
        }
      });
      await mapPool(work, PUT_MANY_CONCURRENCY, async ({ sha256, tmp }) => {
        await this.rename(tmp, this.blobPath(sha256));
        written.delete(tmp);
      });
      // Each shard folder that got a new name is fsynced once for the whole batch.
      const shards = [...new Set(work.map(({ sha256 }) => path.dirname(this.blobPath(sha256))))];
      await mapPool(shards, PUT_MANY_CONCURRENCY, syncDir);
    } finally {
      // Whatever was not renamed (after an error) goes.
      await Promise.all([...written].map((tmp) => removeIfPresent(tmp)));
    }
  }

  /** True when the blob is stored (packed or as a file of its own). */
  private has(sha256: string): boolean {
    return this.packs.locate(sha256) !== undefined || this.blobStat(sha256) !== undefined;
  }

  /** `NotFoundError` when absent; `RANGE_NOT_SATISFIABLE` when the range starts past the end. */
  async read(sha256: string, range?: ByteRange): Promise<Readable> {
    const file = this.blobPath(sha256);
    checkRange(range);
    const packed = this.packs.locate(sha256);
    if (packed !== undefined) {
      if (range !== undefined && range.start >= packed.size) {
        throw new AppError(
          'RANGE_NOT_SATISFIABLE',
          `Range starts at ${range.start}; the blob has ${packed.size} bytes.`,
        );
      }
      const stream = await this.packs.readStream(sha256, range?.start ?? 0, range?.end ?? packed.size - 1);
      if (stream !== undefined) return stream;
      // Deleted since the lookup (or moved to a file of its own): the file decides below.
    }
    let handle: FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`No blob ${sha256}.`, err);
      throw err;
    }
    if (range !== undefined) {
      const { size } = await handle.stat();
      if (range.start >= size) {
        await handle.close();
        throw new AppError(
          'RANGE_NOT_SATISFIABLE',
          `Range starts at ${range.start}; the blob has ${size} bytes.`,
        );
      }
    }
    // The stream owns the handle from here and closes it when it ends or is destroyed.
    return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: READ_CHUNK_BYTES });
  }

  async stat(sha256: string): Promise<BlobStat | null> {
    const packed = this.packs.locate(checkSha256(sha256));
    if (packed !== undefined) return { size: packed.size };
    const st = this.blobStat(sha256);
    return st === undefined ? null : { size: st.size };
  }

  /**
   * The blob's file stat, `undefined` when absent: synchronous (a few microseconds on a
   * local disk) and without an error object for the usual "absent". Through the thread
   * pool it queued behind the fsyncs of blobs being stored: the worker's check of a
   * 500-file batch (one stat per file) took 300–700 ms instead of a few.
   */
  private blobStat(sha256: string): Stats | undefined {
    return statSync(this.blobPath(sha256), { throwIfNoEntry: false });
  }

  /** Removing an absent blob is not an error. */
  async delete(sha256: string): Promise<void> {
    const file = this.blobPath(sha256);
    await this.packs.delete(sha256);
    await removeIfPresent(file);
  }

  /** The blob's own file; `null` for a packed blob (it shares a file with others). */
  localPath(sha256: string): string | null {
    const file = this.blobPath(sha256);
    return this.packs.locate(sha256) === undefined ? file : null;
  }

  /** Closes the packs' index. */
  async close(): Promise<void> {
    this.packs.close();
    await this.hashers.close();
  }

  /** `UnavailableError` when the folders are missing or not writable (volume unmounted, read-only). */
  async ping(): Promise<void> {
    try {
      for (const dir of [this.stagingDir, this.blobsDir, this.tmpDir, path.join(this.root, 'packs')])
        await fs.access(dir, constants.W_OK);
    } catch (err) {
      throw new UnavailableError(`Blob storage at ${this.root} is not writable.`, err);
    }
  }

  private stagingPath(id: string): string {
    if (typeof id !== 'string' || !STAGING_ID.test(id))
      throw new AppError('BAD_REQUEST', 'Invalid upload id.');
    return path.join(this.stagingDir, id);
  }

  private blobPath(sha256: string): string {
    return path.join(this.blobsDir, sha256.slice(0, 2), checkSha256(sha256));
  }

  /**
   * `fs.rename`, creating the target's shard folder first when it is missing (its first
   * use): the new folder is made durable in its parent before anything is renamed in.
   */
  private async rename(from: string, to: string): Promise<void> {
    try {
      await fs.rename(from, to);
    } catch (err) {
      if (!isNotFound(err) || !(await exists(from))) throw err;
      await fs.mkdir(path.dirname(to), { recursive: true });
      await syncDir(path.dirname(path.dirname(to)));
      await fs.rename(from, to);
    }
  }

  /** Renames a fsynced file to its final path and makes the new directory entry durable. */
  private async moveIntoPlace(from: string, to: string, beforeRename?: () => Promise<void>): Promise<void> {
    await beforeRename?.();
    await this.rename(from, to);
    await syncDir(path.dirname(to));
  }
}

/**
 * Writes `source` (at most `maxBytes` of it) at `start` without copying it: chunks are
 * gathered into batches of `WRITE_BATCH_BYTES` and each batch goes to disk in one
 * `writev` while the next one is read (one write in flight: that is the backpressure,
 * and memory stays at about two batches), each chunk hashed as it is taken. An error of
 * the source ends the writing with what arrived kept; a disk error is thrown. Returns
 * the position after the last byte and the sha256 of the bytes written.
 */
async function writeGathered(handle: FileHandle, input: ChunkSource, start: number): Promise<AppendedBytes> {
  const hash = createHash('sha256');
  let position = start;
  let batch: Uint8Array[] = [];
  let batched = 0;
  const writes = new OneWriteInFlight();
  const dispatch = async (): Promise<void> => {
    await writes.settled();
    if (batched === 0) return;
    const chunks = batch;
    const bytes = batched;
    const at = position;
    batch = [];
    batched = 0;
    position += bytes;
    writes.start(writeFully(handle, chunks, bytes, at));
  };
  await eachChunk(input, (chunk) => {
    hash.update(chunk);
    batch.push(chunk);
    batched += chunk.byteLength;
    return batched >= WRITE_BATCH_BYTES || batch.length >= MAX_IOVECS ? dispatch() : undefined;
  });
  await dispatch();
  await writes.settled();
  return { size: position, sha256: hash.digest('hex') };
}

/**
 * Writes `source` (at most `maxBytes` of it) at `start`, an aligned position, with
 * `O_DIRECT`: each chunk is copied into an aligned block as it arrives; a full block is
 * written, and hashed (on a thread of `Hashers`), while the next one fills (the blocks are a
 * ring of `DIRECT_BLOCKS`: a block is filled again once its write and hash are done); the
 * last partial block goes through the page cache (`handle`).
 *
 * Copying at once (rather than holding a batch of the request's chunks until a block's
 * worth has come) lets every chunk die young: V8 counts the request's buffers as
 * external memory, and a batch of them held across young collections made it start full
 * collections back to back during a big upload. Hashing whole blocks on another thread
 * takes the sha256 (a third of the work) off the thread that reads the socket; the
 * blocks are shared memory, filled with `fill`, which copies with `memcpy` where `set`
 * and `copy` into shared memory go word by word (46 against 370–650 ms per GiB here).
 * docs/performance.md, ninth pass. Errors as `writeGathered`.
 */
async function writeThroughBlocks(
  handle: FileHandle,
  input: ChunkSource,
  start: number,
  direct: DirectWriter,
): Promise<AppendedBytes> {
  // Each block with its write-and-hash in flight; a block is filled again once it is done.
  const slots = direct.blocks.map((buffer) => ({ buffer, work: new OneWriteInFlight() }));
  const slotAt = (i: number): (typeof slots)[number] => slots[i % slots.length] as (typeof slots)[number];
  let current = 0;
  let block = slotAt(current).buffer;
  let filled = 0;
  let position = start;
  const syncs = new BackgroundSyncs(handle, FLUSH_EVERY_BYTES);
  /** Starts the block's write and hash; a promise only when the next block is still busy. */
  const flush = (): Promise<void> | undefined => {
    const bytes = filled;
    const at = position;
    position += bytes;
    const view = block.subarray(0, bytes);
    const hashed = new Promise<void>((resolve, reject) =>
      direct.hasher.update(view, (err) => (err ? reject(err) : resolve())),
    );
    const written =
      bytes === WRITE_BATCH_BYTES
        ? writeDirect(direct, handle, block, at).then(() => syncs.wrote(bytes))
        : writeFully(handle, [view], bytes, at);
    slotAt(current).work.start(Promise.all([hashed, written]).then(() => undefined));
    current += 1;
    const next = slotAt(current);
    const reuse = (): void => {
      block = next.buffer;
      filled = 0;
    };
    if (!next.work.idle()) return next.work.settled().then(reuse);
    reuse();
    return undefined;
  };
  /** Copies `chunk` from `from` on into the blocks; a promise only when it has to wait for one. */
  const take = (chunk: Uint8Array, from = 0): Promise<void> | undefined => {
    while (from < chunk.byteLength) {
      const n = Math.min(chunk.byteLength - from, WRITE_BATCH_BYTES - filled);
      // `fill` with a source exactly as long as the range is a plain copy (see above).
      block.fill(n === chunk.byteLength ? chunk : chunk.subarray(from, from + n), filled, filled + n);
      filled += n;
      from += n;
      if (filled === WRITE_BATCH_BYTES) {
        const wait = flush();
        const rest = from;
        if (wait) return wait.then(() => take(chunk, rest));
      }
    }
    return undefined;
  };
  try {
    await eachChunk(input, take);
    if (filled > 0) await flush();
    for (const slot of slots) await slot.work.settled();
    await syncs.settled();
  } finally {
    // The blocks go back to the store's pool: no write or hash may still be reading one.
    for (const slot of slots) await slot.work.drained();
    await syncs.drained();
  }
  return { size: position, sha256: await direct.hasher.digest() };
}

/** What `appendStaging` writes: its source, how much of it, and who is told of each chunk. */
interface ChunkSource {
  source: AsyncIterable<Uint8Array>;
  maxBytes: number;
  onChunk: ((bytes: number) => void) | undefined;
}

/**
 * Takes one chunk; returns a promise only when the next chunk must wait (a write is
 * due), so most chunks cost no promise at all.
 */
type TakeChunk = (chunk: Uint8Array) => Promise<void> | undefined;

/**
 * Hands the source's chunks to `take` until `maxBytes` have been taken (the last chunk
 * cut to fit). A source that fails (the client went away) ends the loop like its end:
 * what arrived is kept.
 *
 * A Node stream (a request body) is read through its 'data' events, paused only while
 * a `take` waits: a 1 GiB upload arrives in ~16,000 socket reads of 64 KiB, and async
 * iteration cost a few promises each (~0.1–0.15 s of CPU per GiB on the 2-core test VM,
 * a tenth of the main thread's work in an upload; docs/performance.md, sixteenth pass).
 * Any other source is iterated, and told when it is stopped early (`return`), as
 * `for await` would.
 */
function eachChunk(chunks: ChunkSource, take: TakeChunk): Promise<void> {
  return chunks.source instanceof Readable
    ? eachStreamChunk(chunks.source, chunks, take)
    : eachIteratedChunk(chunks, take);
}

async function eachIteratedChunk({ source, maxBytes, onChunk }: ChunkSource, take: TakeChunk): Promise<void> {
  const iterator = source[Symbol.asyncIterator]();
  let taken = 0;
  let sourceDone = false;
  try {
    while (taken < maxBytes) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await iterator.next();
      } catch {
        sourceDone = true;
        return;
      }
      if (next.done) {
        sourceDone = true;
        return;
      }
      onChunk?.(next.value.byteLength);
      const chunk =
        next.value.byteLength > maxBytes - taken ? next.value.subarray(0, maxBytes - taken) : next.value;
      if (chunk.byteLength === 0) continue;
      taken += chunk.byteLength;
      await take(chunk);
    }
  } finally {
    if (!sourceDone) await iterator.return?.();
  }
}

/**
 * `eachChunk` for a Node stream. Once `maxBytes` were taken (or on a failure) the stream
 * is left paused with its listeners removed: what follows stays unread for the caller.
 */
function eachStreamChunk(
  stream: Readable,
  { maxBytes, onChunk }: ChunkSource,
  take: TakeChunk,
): Promise<void> {
  if (maxBytes <= 0 || stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let taken = 0;
    /** A `take` is waiting (the stream is paused meanwhile). */
    let waiting = false;
    let ended = false;
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      stream.off('close', onEnd);
      if (!ended) stream.pause();
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error(String(error)));
    };
    const onEnd = (): void => {
      ended = true;
      if (!waiting) finish();
    };
    const onData = (data: Buffer | string): void => {
      if (done) return;
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      onChunk?.(bytes.byteLength);
      const chunk = bytes.byteLength > maxBytes - taken ? bytes.subarray(0, maxBytes - taken) : bytes;
      if (chunk.byteLength === 0) return;
      taken += chunk.byteLength;
      let wait: Promise<void> | undefined;
      try {
        wait = take(chunk);
      } catch (err) {
        finish(err);
        return;
      }
      if (wait === undefined) {
        if (taken >= maxBytes) finish();
        return;
      }
      waiting = true;
      stream.pause();
      wait.then(() => {
        waiting = false;
        if (taken >= maxBytes || ended) finish();
        else stream.resume();
      }, finish);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onEnd);
    stream.once('close', onEnd);
    // A stream paused before (not merely never read) does not start on a 'data' listener.
    stream.resume();
  });
}

/** At most one write (or write and hash) in flight; its failure is thrown at the next `settled()`. */
class OneWriteInFlight {
  private inFlight: Promise<void> | null = null;
  private failure: { error: unknown } | null = null;
  private busy = false;

  start(write: Promise<void>): void {
    this.busy = true;
    this.inFlight = write.then(
      () => {
        this.busy = false;
      },
      (error: unknown) => {
        this.failure = { error };
        this.busy = false;
      },
    );
  }

  /** True when nothing is in flight (no need to await `settled`); throws a failure now. */
  idle(): boolean {
    if (this.failure) throw this.failure.error;
    return !this.busy;
  }

  async settled(): Promise<void> {
    await this.drained();
    if (this.failure) throw this.failure.error;
  }

  /** Waits for the write in flight, whatever its outcome. */
  async drained(): Promise<void> {
    await this.inFlight;
    this.inFlight = null;
  }
}

/**
 * A second descriptor of a staging file with `O_DIRECT`, `DIRECT_BLOCKS` aligned blocks
 * of shared memory, and the thread that hashes them.
 */
interface DirectWriter {
  handle: FileHandle;
  blocks: Buffer[];
  hasher: ChunkHasher;
  /** Set when the file system refused a direct write: buffered from then on. */
  failed: boolean;
}

/**
 * Page-aligned buffers of `WRITE_BATCH_BYTES` on shared memory (so a hashing thread reads
 * them where they are) for direct writes, kept (up to `keep`) for the next upload
 * instead of a new `WebAssembly.Memory` per request, and at most `max` in use at once: a
 * body that finds none goes through the page cache, so many big uploads at once do not
 * hold 12 MiB each.
 */
class AlignedBlocks {
  private readonly free: Buffer[] = [];
  private inUse = 0;

  constructor(
    private readonly keep: number,
    private readonly max: number,
  ) {}

  /** A block, or null when `max` are in use or no aligned shared memory can be had (no WebAssembly). */
  take(): Buffer | null {
    if (this.inUse >= this.max) return null;
    const block = this.free.pop() ?? this.allocate();
    if (block) this.inUse++;
    return block;
  }

  give(block: Buffer): void {
    this.inUse--;
    if (this.free.length < this.keep) this.free.push(block);
  }

  private allocate(): Buffer | null {
    const pool = chunkPool(1, WRITE_BATCH_BYTES, true);
    return pool.aligned && pool.shared ? pool.buffer(0) : null;
  }
}

/**
 * The hashers of direct writes: a `ThreadHasher` while fewer than `max` are in use (idle
 * ones, up to `keep`, are kept so an upload does not wait for a thread to start), an
 * `InlineHasher` beyond that, so many big uploads at once do not mean as many threads.
 */
class Hashers {
  private readonly idle: ThreadHasher[] = [];
  private inUse = 0;
  private closed = false;

  constructor(
    private readonly max: number,
    private readonly keep: number,
  ) {}

  take(): ChunkHasher {
    if (this.inUse >= this.max) return new InlineHasher();
    this.inUse++;
    return this.idle.pop() ?? new ThreadHasher();
  }

  /** Keeps a thread for the next upload, or stops it (too many idle, failed, store closed). */
  async give(hasher: ChunkHasher): Promise<void> {
    if (!(hasher instanceof ThreadHasher)) return;
    this.inUse--;
    if (!this.closed && this.idle.length < this.keep && hasher.restart()) this.idle.push(hasher);
    else await hasher.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.idle.splice(0).map((hasher) => hasher.close()));
  }
}

/** Opens `file` for direct writes; null where the platform or file system has no `O_DIRECT`. */
async function openDirect(
  file: string,
  blocks: AlignedBlocks,
  hashers: Hashers,
): Promise<DirectWriter | null> {
  const { O_DIRECT, O_WRONLY } = constants;
  if (typeof O_DIRECT !== 'number') return null;
  let handle: FileHandle;
  try {
    handle = await fs.open(file, O_WRONLY | O_DIRECT);
  } catch {
    return null; // tmpfs and some FUSE file systems refuse O_DIRECT
  }
  const taken: Buffer[] = [];
  for (let i = 0; i < DIRECT_BLOCKS; i++) {
    const block = blocks.take();
    if (!block) {
      for (const b of taken) blocks.give(b);
      await handle.close();
      return null;
    }
    taken.push(block);
  }
  // A thread started now (none was idle) gets going while the first blocks fill.
  return { handle, blocks: taken, hasher: hashers.take(), failed: false };
}

/**
 * Writes one whole aligned block (`WRITE_BATCH_BYTES`, at an aligned position) with
 * `O_DIRECT`; a file system that refuses (EINVAL) gets this block and every later one
 * through the page cache.
 */
async function writeDirect(
  direct: DirectWriter,
  handle: FileHandle,
  block: Buffer,
  at: number,
): Promise<void> {
  if (direct.failed || at % DIRECT_ALIGN !== 0) return writeFully(handle, [block], block.length, at);
  let done = 0;
  try {
    while (done < block.length) {
      const { bytesWritten } = await direct.handle.write(block, done, block.length - done, at + done);
      if (bytesWritten === 0) throw new Error('write wrote nothing');
      done += bytesWritten;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    direct.failed = true;
    await writeFully(handle, [block.subarray(done)], block.length - done, at + done);
  }
}

function tmpDirOf(root: string): string {
  return path.join(root, 'tmp');
}

/**
 * A new temp file's path in `tmpDir`: in the tmp shard of the blob it becomes (`sha256`),
 * or of its own random name, so concurrent creates spread over 256 folders.
 */
function tmpPathIn(tmpDir: string, sha256?: string): string {
  const name = randomUUID();
  return path.join(tmpDir, (sha256 ?? name).slice(0, 2), name);
}

/** `sha256` when it is a sha256 in lower-case hex, else a `BAD_REQUEST`. */
function checkSha256(sha256: string): string {
  if (typeof sha256 !== 'string' || !SHA256.test(sha256))
    throw new AppError('BAD_REQUEST', 'Invalid sha256.');
  return sha256;
}

function checkRange(range: ByteRange | undefined): void {
  if (range === undefined) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new AppError('RANGE_NOT_SATISFIABLE', `Invalid byte range ${start}-${end}.`);
  }
}
