/**
 * A tus 1.0 client for one file, shared by the CLI and the daemon: create (with the
 * target path, sha256, mtime and base revision as Upload-Metadata), resume from the
 * server's offset after any interruption, and stream the rest with backpressure.
 * The caller keeps the upload URL (a resume record) so a killed process resumes too.
 */
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { ApiClient, RawResponse } from './client.js';
import { USER_AGENT, agentFor, errorFromResponse, networkError, requestFor } from './client.js';
import { chunkPool } from './chunk-file.js';
import { drained } from './drained.js';
import { AppError } from './errors.js';
import { InlineHasher, ThreadHasher, type ChunkHasher } from './hash-thread.js';

export const TUS_VERSION = '1.0.0';
/**
 * AIO's header (as a trailer here) on the PATCH that completes an upload: the hex sha256
 * of the whole upload. The server checks it against the bytes it received (or records it
 * for the worker to check, when earlier requests brought some of them) and answers with
 * the same header once it holds that sha256.
 */
export const UPLOAD_SHA256_HEADER = 'Aio-Upload-Sha256';
/** Reads (and socket writes) of this size: few syscalls, little memory. */
const SEND_CHUNK_BYTES = 2 * 1024 * 1024;
/**
 * A hashed upload of at least this many bytes is hashed on a worker thread (starting one
 * costs ~20 ms). Why: on the main thread the sha256 (0.54 s per GiB) ran in turn with the
 * reads and socket writes, and the client's main thread was busy ~85 % of a 1 GiB upload
 * while the server's waited for data half of the time.
 */
const HASH_THREAD_MIN_BYTES = 32 * 1024 * 1024;
/** Chunk buffers in flight when hashing on a thread: being read, sent or hashed. */
const THREAD_POOL_CHUNKS = 4;

/**
 * Chunk buffers for reading the file: fresh ones (the socket keeps each until written),
 * or, when the hash runs on a thread, a few reused buffers of shared memory, each free
 * again once both the socket and the hasher are done with it.
 */
class ChunkBuffers {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(buffer: Buffer | null) => void> = [];
  private stopped = false;

  constructor(private readonly shared: Buffer[] | null) {
    if (shared) this.free.push(...shared);
  }

  /** A buffer of at least `bytes`; `null` once `stop` was called (the request is over). */
  take(bytes: number): Promise<Buffer | null> {
    if (this.stopped) return Promise.resolve(null);
    if (this.shared === null) return Promise.resolve(Buffer.allocUnsafe(bytes));
    const buffer = this.free.pop();
    if (buffer) return Promise.resolve(buffer);
    return new Promise<Buffer | null>((resolve) => this.waiting.push(resolve));
  }

  give(buffer: Buffer): void {
    if (this.shared === null) return;
    const waiter = this.waiting.shift();
    if (waiter) waiter(buffer);
    else this.free.push(buffer);
  }

  /** Answers every waiting and later `take` with `null`. */
  stop(): void {
    this.stopped = true;
    for (const waiter of this.waiting.splice(0)) waiter(null);
  }
}

export interface UploadTarget {
  /** Remote path, e.g. `/docs/report.pdf`. */
  path: string;
  size: number;
  /** Verified when given; else the client states it at the end (see `sendRest`). */
  sha256?: string;
  mtimeMs: number;
  /** Optimistic concurrency: the revision this change is based on (0: must not exist). */
  baseRevision?: number;
  priority?: 'bulk' | 'normal';
}

export interface CreatedUpload {
  /** Absolute URL of the upload resource. */
  url: string;
  offset: number;
  /** `ready` when the server already had the bytes (deduplicated). */
  status: string | null;
}

export function encodeMetadata(pairs: Record<string, string | number | undefined>): string {
  return Object.entries(pairs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${Buffer.from(String(v), 'utf8').toString('base64')}`)
    .join(',');
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Creates the upload. With `body` (small files) the bytes travel in the same request
 * (tus creation-with-upload), so a small file costs one round trip.
 */
export async function createUpload(
  client: ApiClient,
  target: UploadTarget,
  body?: Buffer,
): Promise<CreatedUpload> {
  const res = await client.raw('POST', '/api/v1/uploads', {
    body,
    headers: {
      ...(body ? { 'content-type': 'application/offset+octet-stream' } : {}),
      'tus-resumable': TUS_VERSION,
      'upload-length': String(target.size),
      'upload-metadata': encodeMetadata({
        path: target.path,
        sha256: target.sha256,
        mtime: Math.round(target.mtimeMs),
        baseRevision: target.baseRevision,
        priority: target.priority,
      }),
    },
  });
  if (res.status !== 201) throw errorFromResponse(res.status, res.body);
  const location = header(res.headers, 'location');
  if (!location) throw new AppError('INTERNAL', 'The server did not say where the upload lives.');
  return {
    url: new URL(location, `${client.server}/`).toString(),
    offset: Number(header(res.headers, 'upload-offset') ?? 0),
    status: header(res.headers, 'aio-upload-status') ?? null,
  };
}

/** The server's offset, or null when the upload is gone (expired, cancelled, unknown). */
export async function uploadOffset(client: ApiClient, url: string): Promise<number | null> {
  const res = await client.raw('HEAD', url.replace(client.server, ''), {
    headers: { 'tus-resumable': TUS_VERSION },
  });
  if (res.status === 404 || res.status === 410) return null;
  if (res.status >= 400) throw errorFromResponse(res.status, res.body);
  const offset = Number(header(res.headers, 'upload-offset'));
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new AppError('INTERNAL', 'Bad Upload-Offset from server.');
  return offset;
}

/**
 * Sends the file from `offset` to the end in one PATCH. Returns the new offset. On a
 * broken connection it throws `SERVICE_UNAVAILABLE`; the caller asks for the offset and
 * calls again.
 */
export async function sendFrom(
  client: ApiClient,
  url: string,
  file: string,
  offset: number,
  size: number,
  onProgress?: (sentTotal: number) => void,
): Promise<number> {
  return (await sendRest(client, url, file, offset, size, { onProgress })).offset;
}

export interface SendOptions {
  onProgress?: (sentTotal: number) => void;
  /**
   * Hash the file while sending it and state the whole upload's sha256 in a trailer, so
   * the server verifies the bytes against what was read here before anything is
   * committed. The bytes before `offset` (sent earlier) are read and hashed first.
   */
  hashWhole?: boolean;
}

export interface SendResult {
  offset: number;
  /** With `hashWhole`, once the upload is complete: the sha256 the server confirmed. */
  sha256: string | null;
}

/**
 * Sends the file from `offset` to the end in one (chunked) PATCH through Node's HTTP
 * client: reads of 2 MiB, the next read overlapping the socket write of the last,
 * backpressure from the socket. With `hashWhole` the sha256 of the whole file travels
 * as an `Aio-Upload-Sha256` trailer and the answer must confirm it.
 */
export async function sendRest(
  client: ApiClient,
  url: string,
  file: string,
  offset: number,
  size: number,
  options: SendOptions = {},
): Promise<SendResult> {
  const handle = await fs.open(file, 'r');
  let hash: ChunkHasher | null = null;
  try {
    let buffers = new ChunkBuffers(null);
    if (options.hashWhole) {
      const pool =
        size >= HASH_THREAD_MIN_BYTES ? chunkPool(THREAD_POOL_CHUNKS, SEND_CHUNK_BYTES, true) : null;
      if (pool?.shared) {
        hash = new ThreadHasher();
        buffers = new ChunkBuffers(Array.from({ length: THREAD_POOL_CHUNKS }, (_, i) => pool.buffer(i)));
      } else {
        hash = new InlineHasher();
      }
      await hashPrefix(handle, offset, hash, buffers);
    }
    const headers: Record<string, string> = {
      ...(await client.authHeaders()),
      'user-agent': USER_AGENT,
      'tus-resumable': TUS_VERSION,
      'upload-offset': String(offset),
      'content-type': 'application/offset+octet-stream',
    };
    // A trailer needs a chunked body; without one the length is declared.
    if (hash) headers.trailer = UPLOAD_SHA256_HEADER;
    else headers['content-length'] = String(size - offset);
    let res: RawResponse;
    try {
      res = await patchBody(new URL(url), headers, handle, offset, size, hash, buffers, options.onProgress);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw networkError(client.server, err);
    }
    if (res.status === 401) {
      // The access token expired during a long transfer: refresh and let the caller resume.
      await client.refreshAuth();
      throw new AppError('SERVICE_UNAVAILABLE', 'The session was refreshed during the upload; resuming.');
    }
    if (res.status !== 204) throw errorFromResponse(res.status, res.body);
    const newOffset = Number(header(res.headers, 'upload-offset') ?? size);
    if (!hash || newOffset < size) return { offset: newOffset, sha256: null };
    const sent = await hash.digest();
    const confirmed = header(res.headers, UPLOAD_SHA256_HEADER.toLowerCase());
    if (confirmed !== sent) {
      throw new AppError(
        'CHECKSUM_MISMATCH',
        confirmed === undefined
          ? 'The server did not confirm the sha256 of the upload.'
          : 'The server holds different bytes than were sent.',
      );
    }
    return { offset: newOffset, sha256: sent };
  } finally {
    await hash?.close();
    await handle.close();
  }
}

/** Feeds the file's first `length` bytes (sent earlier) to `hash`, to go on with. */
async function hashPrefix(
  handle: FileHandle,
  length: number,
  hash: ChunkHasher,
  buffers: ChunkBuffers,
): Promise<void> {
  let position = 0;
  while (position < length) {
    const buffer = await buffers.take(Math.min(SEND_CHUNK_BYTES, length - position));
    if (buffer === null) throw new Error('The chunk buffers were stopped.');
    const bytes = Math.min(buffer.length, length - position);
    await readInto(handle, buffer, bytes, position);
    await new Promise<void>((resolve, reject) =>
      hash.update(buffer.subarray(0, bytes), (err) => (err ? reject(err) : resolve())),
    );
    buffers.give(buffer);
    position += bytes;
  }
}

/** Reads `[position, position + length)` into the start of `buffer`. */
async function readInto(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new AppError('CONFLICT', 'The file became shorter during the upload.');
    filled += bytesRead;
  }
}

/** The PATCH itself: resolves with the answer, rejects on a network error. */
function patchBody(
  url: URL,
  headers: Record<string, string>,
  handle: FileHandle,
  offset: number,
  size: number,
  hash: ChunkHasher | null,
  buffers: ChunkBuffers,
  onProgress?: (sentTotal: number) => void,
): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    const req = requestFor(url)(url, { method: 'PATCH', headers, agent: agentFor(url) });
    // No progress on the socket for 60 s: give up (the caller resumes from the server's offset).
    req.setTimeout(60_000, () => req.destroy(Object.assign(new Error('ETIMEDOUT'), { code: 'ETIMEDOUT' })));
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(err);
    };
    req.once('error', fail);
    req.once('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', fail);
      res.once('end', () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    writeBody(req, handle, offset, size, hash, buffers, onProgress).catch(fail);
  });
}

async function writeBody(
  req: ClientRequest,
  handle: FileHandle,
  offset: number,
  size: number,
  hash: ChunkHasher | null,
  buffers: ChunkBuffers,
  onProgress?: (sentTotal: number) => void,
): Promise<void> {
  let failure: Error | null = null;
  // A request that ends early (an error, the server's answer) gives no more buffers back:
  // a read waiting for one gets none. (Not a `Promise.race` with a 'close' promise: each
  // race would stay subscribed to it, holding its chunk, until the request ends.)
  req.once('close', () => buffers.stop());
  const read = async (position: number): Promise<{ buffer: Buffer; chunk: Buffer } | null> => {
    const length = Math.min(SEND_CHUNK_BYTES, size - position);
    const buffer = await buffers.take(length);
    if (buffer === null) return null;
    await readInto(handle, buffer, length, position);
    return { buffer, chunk: buffer.subarray(0, length) };
  };
  let position = offset;
  let pending = position < size ? read(position) : null;
  while (pending) {
    const next = await pending;
    if (next === null || req.destroyed) return;
    if (failure) throw failure;
    const { buffer, chunk } = next;
    position += chunk.length;
    // The next read runs while this chunk is hashed and written (with reused buffers, as
    // soon as one is free again).
    pending = position < size ? read(position) : null;
    pending?.catch(() => undefined);
    // The buffer is free once the socket has taken its bytes and the hash has read them.
    let users = hash ? 2 : 1;
    const release = (): void => {
      if (--users === 0) buffers.give(buffer);
    };
    hash?.update(chunk, (err) => {
      if (err) failure ??= err;
      release();
    });
    const flowing = req.write(chunk, release);
    if (!flowing) await drained(req);
    onProgress?.(position);
  }
  if (failure) throw failure;
  if (hash) req.addTrailers({ [UPLOAD_SHA256_HEADER]: await hash.digest() });
  req.end();
}

/** The upload's state as `GET /api/v1/uploads/:id` reports it (the fields clients use). */
export interface UploadView {
  status: string;
  fileId: string | null;
  error: string | null;
}

/** Waits (server-side long-poll) until the worker committed the upload; a failed upload throws with the server's reason. */
export async function waitForUpload(
  client: ApiClient,
  id: string,
  timeoutMs = 10 * 60_000,
): Promise<UploadView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // The server holds the request until the upload is final (or 25 s passed).
    const view = await client.get<UploadView>(`/api/v1/uploads/${encodeURIComponent(id)}`, {
      searchParams: { wait: 25 },
      timeoutMs: 40_000,
    });
    if (view.status === 'ready') return view;
    if (view.status === 'failed') {
      if (view.error === 'CHECKSUM_MISMATCH') {
        throw new AppError('CHECKSUM_MISMATCH', 'The server received different bytes than were sent.');
      }
      if (view.error === 'REVISION_CONFLICT') throw new AppError('REVISION_CONFLICT');
      throw new AppError(
        'INTERNAL',
        `The server could not store the file: ${view.error ?? 'unknown reason'}.`,
      );
    }
    if (view.status !== 'processing' && view.status !== 'receiving') {
      throw new AppError('GONE', `The upload ended as ${view.status}.`);
    }
    if (Date.now() > deadline)
      throw new AppError('SERVICE_UNAVAILABLE', 'The server did not finish the file in time.');
  }
}
