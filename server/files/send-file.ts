/**
 * Sends a byte range of a local file as a response body through a few reused buffers.
 *
 * Why not `fs.createReadStream(...).pipe(res)`: a read stream allocates a fresh buffer
 * for every chunk, and each of those is an external allocation the garbage collector
 * has to track and free; a CPU profile of one 1 GiB download spent about 0.5 s of the
 * server's 1.1 s in GC. Here each response reads into at most `POOL_BUFFERS` buffers,
 * and a buffer is only reused once the socket's write callback said its bytes have
 * left it, so nothing is copied and nothing is allocated per chunk.
 *
 * The pool is the backpressure: a new read starts only when a buffer is free, i.e. when
 * an earlier write has completed, so a client that stops reading holds at most
 * `POOL_BUFFERS` chunks in this process (the same bound `'drain'` would give, without
 * serialising the disk read behind every socket write).
 *
 * A big body (`DIRECT_MIN_BYTES` or more) is read past the page cache (`O_DIRECT`) into
 * page-aligned buffers. Big blobs are written that way (the upload staging), so they are
 * not in the page cache, and a buffered read of a cold GiB cost ~1 s of system time on the
 * 2-core test VM (the kernel filling fresh page-cache memory, then copying it out) against
 * 0.05 s direct; it also leaves the page cache to small files. Reads start at the aligned
 * block holding the first byte and the bytes outside the range are not sent.
 */
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import { DIRECT_ALIGN, chunkPool } from '../../contract/chunk-file.js';
import { AppError, NotFoundError } from '../../contract/errors.js';
import type { ByteRange } from '../../core/ports/blob-store.js';

/** Bytes read per `read(2)` and handed to the socket per write. */
export const SEND_CHUNK_BYTES = 1024 * 1024;
/**
 * Buffers per response: one being filled by the disk while up to three are with the
 * socket. Four measured as fast as more on loopback and keeps a response at 4 MiB.
 */
export const POOL_BUFFERS = 4;
/**
 * Full-size buffers kept between responses (16 MiB at most). Reusing them matters for
 * clients that fetch a file as many ranged requests: a fresh 1 MiB allocation costs page
 * faults and zeroing in the kernel, and with four per response that measured 3–4 ms of
 * server CPU per 8 MiB request (as much as sending its bytes).
 */
const SPARE_BUFFERS = 16;
/** Full-size buffers, page-aligned where WebAssembly memory is available (direct reads need that). */
const spare: Buffer[] = [];
/** Whether the full-size buffers are page-aligned (false under `--jitless`). */
let alignedMemory = true;
/** A body at least this big is read with `O_DIRECT` (the size big uploads are staged that way). */
export const DIRECT_MIN_BYTES = 16 * 1024 * 1024;

/** A full-size buffer from the spares, or from a new pool of `POOL_BUFFERS` (the others become spares). */
function takeSpare(): Buffer {
  const reused = spare.pop();
  if (reused) return reused;
  const pool = chunkPool(POOL_BUFFERS, SEND_CHUNK_BYTES, false);
  alignedMemory = pool.aligned;
  for (let i = 1; i < POOL_BUFFERS; i++) spare.push(pool.buffer(i));
  return pool.buffer(0);
}

/** Keeps `buffers` (whose writes have all completed) for later responses. */
function returnSpares(buffers: Buffer[]): void {
  for (const buffer of buffers) {
    if (buffer.length === SEND_CHUNK_BYTES && spare.length < SPARE_BUFFERS) spare.push(buffer);
  }
  buffers.length = 0;
}

/** An open local file, ready to be sent. */
export interface OpenedFile {
  fd: number;
  size: number;
  /** Opened with `O_DIRECT`: read only into aligned buffers, at aligned offsets. */
  direct: boolean;
}

/**
 * Opens `file` for sending. Throws `NotFoundError` when it is absent and
 * `RANGE_NOT_SATISFIABLE` when the range starts at or past its end (like `BlobStore.read`);
 * both before any header went out, so the caller still answers with a JSON error.
 */
export async function openForSending(
  file: string,
  range?: ByteRange,
  options: { directMinBytes?: number } = {},
): Promise<OpenedFile> {
  const fd = await openFd(file, fs.constants.O_RDONLY);
  try {
    const { size } = await new Promise<fs.Stats>((resolve, reject) =>
      fs.fstat(fd, (err, stats) => (err ? reject(err) : resolve(stats))),
    );
    if (range !== undefined && range.start >= size) {
      throw new AppError(
        'RANGE_NOT_SATISFIABLE',
        `Range starts at ${range.start}; the blob has ${size} bytes.`,
      );
    }
    const bytes = range === undefined ? size : Math.min(range.end + 1, size) - range.start;
    if (bytes >= (options.directMinBytes ?? DIRECT_MIN_BYTES)) {
      const direct = await openDirect(file, range?.start ?? 0);
      if (direct !== null) {
        fs.close(fd, () => undefined);
        return { fd: direct, size, direct: true };
      }
    }
    return { fd, size, direct: false };
  } catch (err) {
    fs.close(fd, () => undefined);
    throw err;
  }
}

function openFd(file: string, flags: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    fs.open(file, flags, (err, opened) => {
      if (err) reject(err.code === 'ENOENT' ? new NotFoundError('No such blob.', err) : err);
      else resolve(opened);
    });
  });
}

/**
 * `file` opened with `O_DIRECT`, after one aligned read at `start`'s block proved that
 * direct reads work there (tmpfs and some FUSE file systems refuse the open or the read);
 * `null` to read through the page cache.
 */
async function openDirect(file: string, start: number): Promise<number | null> {
  const { O_DIRECT, O_RDONLY } = fs.constants;
  if (typeof O_DIRECT !== 'number') return null;
  const buffer = takeSpare();
  if (!alignedMemory) {
    returnSpares([buffer]);
    return null;
  }
  let fd: number | null = null;
  try {
    fd = await openFd(file, O_RDONLY | O_DIRECT);
    const opened = fd;
    await new Promise<void>((resolve, reject) =>
      fs.read(opened, buffer, 0, DIRECT_ALIGN, alignDown(start), (err) => (err ? reject(err) : resolve())),
    );
    return fd;
  } catch {
    if (fd !== null) fs.close(fd, () => undefined);
    return null;
  } finally {
    returnSpares([buffer]);
  }
}

function alignDown(n: number): number {
  return n - (n % DIRECT_ALIGN);
}

function alignUp(n: number): number {
  return alignDown(n + DIRECT_ALIGN - 1);
}

/**
 * Writes bytes `start`..`start + length - 1` of `file` to `res` and ends it. Takes
 * ownership of `file.fd`: it is closed exactly once, when the last read is done, when
 * the client goes away, or on an error. Resolves when the response has finished;
 * rejects when the client went away first or the disk read failed (after destroying
 * `res`, since a body shorter than its Content-Length must not look complete).
 */
export function sendFileRange(
  res: ServerResponse,
  file: OpenedFile,
  start: number,
  length: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const end = start + length;
    const chunkBytes = Math.min(SEND_CHUNK_BYTES, Math.max(length, 1));
    // Direct reads cover whole aligned blocks: from the block holding `start` on.
    let position = file.direct ? alignDown(start) : start;
    /** Buffers whose bytes the socket has taken (their write callback ran). */
    const free: Buffer[] = [];
    let allocated = 0;
    let reading = false;
    let fdOpen = true;
    let settled = false;

    const closeFd = (): void => {
      if (!fdOpen) return;
      fdOpen = false;
      fs.close(file.fd, () => undefined);
    };
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClose);
      // While a read is in flight the fd stays open; its callback closes it.
      if (!reading) closeFd();
      // Only buffers the socket is done with are kept; any still queued are left to GC.
      returnSpares(free);
      if (err === null) return resolve();
      if (!res.destroyed) res.destroy(err);
      reject(err);
    };
    const onClose = (): void => {
      // 'close' before 'finish': the client went away (or the socket broke).
      if (!res.writableFinished) settle(new Error('The client closed the connection.'));
    };
    res.on('close', onClose);

    const takeBuffer = (): Buffer | null => {
      const reused = free.pop();
      if (reused) return reused;
      if (allocated >= POOL_BUFFERS) return null;
      allocated++;
      // A small body gets a buffer of its size; a direct read needs a full, aligned one.
      return file.direct || chunkBytes >= SEND_CHUNK_BYTES ? takeSpare() : Buffer.allocUnsafe(chunkBytes);
    };

    // Starts the next read when none is running, bytes remain and a buffer is free.
    const pump = (): void => {
      if (settled || reading || position >= end) return;
      const buffer = takeBuffer();
      if (buffer === null) return; // every buffer is with the socket: a write callback calls again
      reading = true;
      // A direct read asks for whole blocks (a file's last block is returned short).
      const want = file.direct
        ? Math.min(buffer.length, alignUp(end) - position)
        : Math.min(buffer.length, end - position);
      const at = position;
      fs.read(file.fd, buffer, 0, want, at, (err, bytesRead) => {
        reading = false;
        if (settled) return closeFd();
        if (err) return settle(err);
        // The bytes of the range in what was read: the first read may start before it.
        const skip = Math.max(0, start - at);
        const last = Math.min(bytesRead, end - at);
        if (last <= skip)
          return settle(new Error(`The blob ended at ${at + bytesRead} bytes, before ${end}.`));
        position = at + last;
        // Everything is read: the file need not stay open while the socket drains.
        if (position >= end) closeFd();
        res.write(buffer.subarray(skip, last), (writeErr) => {
          // Only a completed write gives the buffer back: after an error the socket may
          // still reference it, so it is dropped (the response is over anyway).
          if (writeErr) return settle(writeErr);
          free.push(buffer);
          pump();
        });
        if (position < end) pump();
        else res.end(() => settle(null));
      });
    };
    if (length === 0) {
      closeFd();
      res.end(() => settle(null));
      return;
    }
    pump();
  });
}
