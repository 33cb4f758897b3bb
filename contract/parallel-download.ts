/**
 * Fetches one large file over several connections at once: the file is cut into
 * fixed-size chunks that are handed out in file order to `streams` ranged GETs
 * (`Range` + `If-Range` with the expected ETag). Each chunk lands in a pooled buffer,
 * is written at its offset into the partial file as it arrives, and is hashed strictly
 * in file order as the contiguous prefix grows, so the sha256 is known right after the
 * last byte arrived.
 *
 * Why: with one stream the main thread did everything in turn (HTTP parsing, hashing,
 * queueing writes) and `aio download` of 1 GiB took 1.9–3.4 s on the 2-core test VM,
 * against ~0.9 s for `rclone copy` (4 ranged streams, no hashing). Here several streams
 * keep bytes coming, the bodies land straight in the chunk buffers
 * (`RawRangeConnection`), the hash runs on its own thread (`ThreadHasher`; it is now
 * the critical path, ~0.6 s per GiB) and the writes bypass the page cache (`ChunkFile`):
 * ~0.9 s, including the final fsync.
 *
 * Memory is bounded by the buffer pool (`windowChunks` × `chunkBytes`): a chunk is only
 * started when a buffer is free, and a buffer is only freed once its chunk is both
 * written and hashed. Chunks are started in file order, so the chunk the hash waits for
 * always holds a buffer and the window cannot deadlock.
 *
 * On a network or disk failure the requests are stopped, writes in flight are awaited,
 * and the file is cut back to the longest prefix that was written completely, so the
 * caller's resume logic (hash what is there, continue with a Range request) stays
 * correct. An answer other than the expected 206 (an error status, a server that
 * ignores ranges, a file that changed so `If-Range` failed) is not interpreted here:
 * the file is cut back the same way and the caller goes on with its single stream,
 * which handles every answer as it always did.
 */
import { ChunkFile, FLUSH_EVERY_BYTES, chunkPool } from './chunk-file.js';
import { InlineHasher, ThreadHasher, type ChunkHasher } from './hash-thread.js';
import { rangeConnection, UnexpectedResponse, type RangeConnection } from './range-transport.js';

export interface ParallelOptions {
  /** Connections used at once. */
  streams: number;
  /** Bytes per ranged request; a multiple of 64 KiB gets aligned buffers (direct I/O). */
  chunkBytes: number;
  /** Chunk buffers in the pool: being received, written or waiting to be hashed. */
  windowChunks: number;
  /** Hash on a worker thread (see `ThreadHasher`) rather than on the main thread. */
  hashThread: boolean;
  /** Write with `O_DIRECT` where possible (see `ChunkFile`); false: page cache only. */
  direct: boolean;
  /** `node`: always Node's HTTP client (tests; https uses it anyway). */
  transport?: 'auto' | 'node';
}

export interface ParallelRequest {
  url: string;
  /** The blob's sha256; sent as `If-Range: "<sha256>"`. */
  sha256: string;
  size: number;
  /** The partial file; it is created (or truncated) here. */
  file: string;
  /** Fresh request headers (authorization); asked again after `refreshAuth`. */
  headers: () => Promise<Record<string, string>>;
  /** Called at most once, after a 401 on a later chunk; true when a new token is available. */
  refreshAuth: () => Promise<boolean>;
  /** Bytes that arrived, as they arrive (for progress). */
  onBytes: (n: number) => void;
}

export type ParallelResult =
  /** All bytes are in the file; `sha256` is the hex digest of them, in order. */
  | { kind: 'complete'; sha256: string }
  /**
   * A chunk was not answered with the expected 206: the file holds a clean prefix
   * (maybe empty) and the caller should go on with a single stream.
   */
  | { kind: 'single-stream' };

/**
 * Bytes per buffered write (when direct I/O is not available), queued as the bytes
 * arrive. On the 2-core test VM buffered writes of 1 MiB and more cost 5–8× the kernel
 * time of 256 KiB ones (~2 s of system time per GiB) whenever the page cache had to take
 * fresh memory (large writes get large folios, which that VM is slow to provide);
 * smaller ones cost more in syscalls. Direct writes take a whole chunk at once: fewer,
 * larger requests measured best there.
 */
const BUFFERED_PIECE_BYTES = 256 * 1024;

/**
 * Downloads `req.size` bytes into `req.file`. Throws the underlying error for a network
 * or disk failure, after cutting the file back to its complete prefix.
 */
export async function downloadParallel(
  req: ParallelRequest,
  options: ParallelOptions,
): Promise<ParallelResult> {
  const { size } = req;
  const { chunkBytes } = options;
  const chunkCount = Math.ceil(size / chunkBytes);
  const streams = Math.max(1, Math.min(options.streams, chunkCount));
  const poolSize = Math.max(options.windowChunks, streams);
  const url = new URL(req.url);
  let headers = { ...(await req.headers()), 'if-range': `"${req.sha256}"` };

  const pool = chunkPool(poolSize, chunkBytes, options.hashThread);
  const hasher: ChunkHasher = options.hashThread && pool.shared ? new ThreadHasher() : new InlineHasher();
  let file: ChunkFile;
  try {
    file = await ChunkFile.open(req.file, {
      direct: options.direct && pool.aligned,
      syncEvery: FLUSH_EVERY_BYTES,
    });
  } catch (err) {
    await hasher.close();
    throw err;
  }
  const pieceBytes = file.direct ? chunkBytes : BUFFERED_PIECE_BYTES;
  const connections: RangeConnection[] = [];

  const free: Buffer[] = [];
  let allocated = 0;
  /** Next chunk to hand out; chunks are handed out in file order. */
  let nextChunk = 0;
  /** Chunks below this one were handed to the hash. */
  let hashedUpTo = 0;
  /** Received chunks waiting for their turn to be hashed. */
  const received = new Map<number, Buffer>();
  const written = new Array<boolean>(chunkCount).fill(false);
  const hashed = new Array<boolean>(chunkCount).fill(false);
  const writes = new Set<Promise<boolean>>();
  let failure: unknown = null;
  /** Workers waiting for a free buffer. */
  let waiters: Array<() => void> = [];
  let refreshing: Promise<boolean> | null = null;

  const wake = (): void => {
    const woken = waiters;
    waiters = [];
    for (const w of woken) w();
  };
  const fail = (err: unknown): void => {
    if (failure !== null) return;
    failure = err;
    for (const c of connections) c.close();
    wake();
  };
  const lengthOf = (index: number): number => Math.min(chunkBytes, size - index * chunkBytes);
  /** A buffer goes back to the pool once its chunk is both on disk and hashed. */
  const release = (index: number, buffer: Buffer): void => {
    if (!written[index] || !hashed[index]) return;
    free.push(buffer);
    wake();
  };
  /** Waits for a free (or new) buffer; null once the download has failed. */
  const takeBuffer = async (): Promise<Buffer | null> => {
    for (;;) {
      if (failure !== null) return null;
      const buffer = free.pop();
      if (buffer) return buffer;
      if (allocated < poolSize) {
        return pool.buffer(allocated++);
      }
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  /** Tracks a write; resolves false (after failing the download) when it failed. */
  const track = (write: Promise<void>): Promise<boolean> => {
    const tracked = write.then(
      () => true,
      (err: unknown) => {
        fail(err);
        return false;
      },
    );
    writes.add(tracked);
    void tracked.then(() => writes.delete(tracked));
    return tracked;
  };
  /** Chunk `index` is all in `buffer` and its writes are queued: hash what became contiguous. */
  const onChunk = (index: number, buffer: Buffer, pieces: Promise<boolean>[]): void => {
    void Promise.all(pieces).then((results) => {
      if (!results.every(Boolean)) return;
      written[index] = true;
      release(index, buffer);
    });
    received.set(index, buffer);
    for (let next = received.get(hashedUpTo); next !== undefined; next = received.get(hashedUpTo)) {
      const at = hashedUpTo++;
      const chunk = next;
      received.delete(at);
      const done = (): void => {
        hashed[at] = true;
        release(at, chunk);
      };
      const bytes = chunk.subarray(0, lengthOf(at));
      hasher.update(bytes, (err) => (err ? fail(err) : done()));
    }
  };
  const refreshOnce = (): Promise<boolean> => {
    refreshing ??= req.refreshAuth().then(async (ok) => {
      if (ok) headers = { ...(await req.headers()), 'if-range': headers['if-range'] };
      return ok;
    });
    return refreshing;
  };
  /**
   * Fetches chunk `index` into `buffer`, queueing its writes to the file as the bytes
   * arrive; returns the writes. Asks once more with a fresh token after a 401.
   */
  const fetchChunk = async (
    connection: RangeConnection,
    index: number,
    buffer: Buffer,
  ): Promise<Promise<boolean>[]> => {
    const start = index * chunkBytes;
    const length = lengthOf(index);
    const pieces: Promise<boolean>[] = [];
    let filled = 0;
    let flushed = 0;
    const onFilled = (now: number): void => {
      req.onBytes(now - filled);
      filled = now;
      while (filled - flushed >= pieceBytes || (filled === length && filled > flushed)) {
        const n = Math.min(pieceBytes, filled - flushed);
        pieces.push(track(file.write(buffer, flushed, n, start + flushed)));
        flushed += n;
      }
    };
    for (let attempt = 0; ; attempt++) {
      const sent = headers;
      try {
        await connection.get(sent, start, length, size, buffer, onFilled);
        return pieces;
      } catch (err) {
        // A 401 on a later chunk: the token expired during the download. A 401 carries
        // no file bytes, so nothing of this chunk was written. (The first chunk's 401
        // goes to the single stream, which refreshes and reports as it always did.)
        const expired = err instanceof UnexpectedResponse && err.status === 401 && index > 0 && attempt === 0;
        if (expired && failure === null && (headers !== sent || (await refreshOnce()))) continue;
        throw err;
      }
    }
  };
  const worker = async (connection: RangeConnection): Promise<void> => {
    while (failure === null && nextChunk < chunkCount) {
      const buffer = await takeBuffer();
      if (buffer === null) return;
      if (nextChunk >= chunkCount) {
        free.push(buffer);
        return;
      }
      const index = nextChunk++;
      const pieces = await fetchChunk(connection, index, buffer);
      if (failure !== null) return;
      onChunk(index, buffer, pieces);
    }
  };
  const run = (connection: RangeConnection): Promise<void> => worker(connection).catch(fail);

  try {
    for (let i = 0; i < streams; i++) connections.push(rangeConnection(url, options.transport));
    const [first, ...others] = connections as [RangeConnection, ...RangeConnection[]];
    // The first chunk alone: its answer tells whether ranges work and the token is good
    // before more connections are opened.
    const buffer = await takeBuffer();
    if (buffer !== null) {
      nextChunk = 1;
      await fetchChunk(first, 0, buffer).then((pieces) => onChunk(0, buffer, pieces), fail);
    }
    await Promise.all([first, ...others].map(run));
  } finally {
    for (const c of connections) c.close();
    await Promise.allSettled([...writes]);
    await file.flush().catch(fail);
  }

  try {
    if (failure === null && hashedUpTo === chunkCount && written.every(Boolean)) {
      const sha256 = await hasher.digest();
      return { kind: 'complete', sha256 };
    }
    // Cut the file back to what was written without a gap.
    let prefix = 0;
    while (prefix < chunkCount && written[prefix]) prefix++;
    await file.truncate(Math.min(prefix * chunkBytes, size));
    if (failure instanceof UnexpectedResponse) return { kind: 'single-stream' };
    throw failure ?? new Error('The parallel download stopped early.');
  } finally {
    await file.close();
    await hasher.close();
  }
}
