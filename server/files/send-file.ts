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
 */
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
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
const spare: Buffer[] = [];

/** A full-size buffer from the shared spares, or a new one of `bytes`. */
function takeSpare(bytes: number): Buffer {
  return spare.pop() ?? Buffer.allocUnsafe(bytes);
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
}

/**
 * Opens `file` for sending. Throws `NotFoundError` when it is absent and
 * `RANGE_NOT_SATISFIABLE` when the range starts at or past its end (like `BlobStore.read`);
 * both before any header went out, so the caller still answers with a JSON error.
 */
export async function openForSending(file: string, range?: ByteRange): Promise<OpenedFile> {
  const fd = await new Promise<number>((resolve, reject) => {
    fs.open(file, 'r', (err, opened) => {
      if (err) reject(err.code === 'ENOENT' ? new NotFoundError('No such blob.', err) : err);
      else resolve(opened);
    });
  });
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
    return { fd, size };
  } catch (err) {
    fs.close(fd, () => undefined);
    throw err;
  }
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
    /** Buffers whose bytes the socket has taken (their write callback ran). */
    const free: Buffer[] = [];
    let allocated = 0;
    let position = start;
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
      // Small bodies get a buffer of their size; larger ones a shared full-size one.
      return chunkBytes < SEND_CHUNK_BYTES ? Buffer.allocUnsafe(chunkBytes) : takeSpare(chunkBytes);
    };

    // Starts the next read when none is running, bytes remain and a buffer is free.
    const pump = (): void => {
      if (settled || reading || position >= end) return;
      const buffer = takeBuffer();
      if (buffer === null) return; // every buffer is with the socket: a write callback calls again
      reading = true;
      fs.read(file.fd, buffer, 0, Math.min(buffer.length, end - position), position, (err, bytesRead) => {
        reading = false;
        if (settled) return closeFd();
        if (err) return settle(err);
        if (bytesRead === 0) return settle(new Error(`The blob ended at ${position} bytes, before ${end}.`));
        position += bytesRead;
        // Everything is read: the file need not stay open while the socket drains.
        if (position >= end) closeFd();
        res.write(buffer.subarray(0, bytesRead), (writeErr) => {
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
