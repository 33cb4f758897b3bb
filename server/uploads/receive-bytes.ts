/**
 * Writing a request body into an upload's staging file: the heart of tus PATCH (and
 * of creation-with-upload). Under the upload's lock, the body streams straight into
 * the BlobStore (its awaited writes are the backpressure; memory stays flat), the new
 * offset is recorded with a compare-and-set, and the last byte finishes the upload
 * (state and outbox job in one commit) and nudges the outbox relay.
 */
import type { Request } from 'express';
import { AppError } from '../../contract/errors.js';
import type { UploadSession } from '../../core/ports/metadata-store.js';
import type { AppDeps } from '../deps.js';
import { kickOutboxRelay } from '../outbox-relay.js';
import { announceUpload } from '../../core/changes.js';
import { UPLOAD_SHA256_HEADER, contentLength, statedChecksums, type StatedChecksums } from './tus-headers.js';
import { assertReceiving, processingJob, progressKey } from './session.js';
import { lockUpload } from './upload-lock.js';

/** How often the live byte count is written to the Cache while bytes flow. */
export const PROGRESS_INTERVAL_MS = 250;
const PROGRESS_TTL_MS = 10 * 60_000;

export interface ReceiveResult {
  session: UploadSession;
  /** The client sent more than Upload-Length allows; only the allowed bytes were kept. */
  overflow: boolean;
}

type Deps = Pick<AppDeps, 'metadata' | 'blobs' | 'cache' | 'clock' | 'logger' | 'bodyMemory'>;

/**
 * Appends `req`'s body at `offset` to `session` (created by the caller). Throws
 * `UPLOAD_LOCKED` (another request writes it), `OFFSET_MISMATCH` (the offset is not the
 * stored one), `GONE`/`NOT_FOUND`/`CONFLICT` (the upload cannot take bytes). When the
 * client goes away mid-body, what arrived is kept and recorded, so HEAD reports it and
 * the client resumes from there.
 */
export async function receiveBytes(
  deps: Deps,
  session: UploadSession,
  offset: number,
  req: Request,
): Promise<ReceiveResult> {
  const lock = await lockUpload(deps.cache, session.id);
  try {
    // Re-read under the lock: another request may have moved the upload meanwhile.
    let current = await reconcile(deps, await reload(deps, session));
    assertReceiving(current, deps.clock.now());
    if (offset !== current.offset) {
      throw new AppError(
        'OFFSET_MISMATCH',
        `Upload-Offset is ${offset}; the upload has ${current.offset} bytes.`,
        {
          headers: { 'Upload-Offset': String(current.offset) },
        },
      );
    }
    const remaining = current.length - offset;
    const declared = contentLength(req);
    // A malformed Upload-Checksum header is refused before any byte is written.
    statedChecksums(req);
    const progress = new ProgressWriter(deps, session.id, offset);
    let overflow = declared !== undefined && declared > remaining;
    let seen = 0;
    const onChunk = (bytes: number): void => {
      seen += bytes;
      deps.bodyMemory?.received(bytes);
      if (seen > remaining) overflow = true;
      progress.update(Math.min(seen, remaining));
    };
    // Every body is hashed on its way to disk (by the store, as it writes): to check the
    // checksums the client states, and (an upload that arrives whole in one request) so
    // the worker can skip reading it back.
    let written: number;
    let chunkSha256: string;
    try {
      // The request itself: the store reads it through its events (cheaper per chunk than
      // iterating it) and leaves what is beyond the upload unread, for `awaitEnd`.
      ({ size: written, sha256: chunkSha256 } = await deps.blobs.appendStaging(
        session.id,
        offset,
        req,
        remaining,
        { onChunk },
      ));
    } finally {
      await progress.stop();
    }
    // The writer stops at the upload's last byte; a chunked body's end (and its trailers)
    // may still be on the way: read them, and note any bytes beyond the upload.
    if (written === current.length && !overflow && (await awaitEnd(req))) overflow = true;
    const stated = await checkedChecksums(deps, current, offset, req, chunkSha256, written, overflow);
    if (written > offset) {
      const advanced = await deps.metadata.advanceUpload(session.id, offset, written);
      if (!advanced) throw new AppError('CONFLICT', 'The upload changed while its bytes were written.');
      current = advanced;
    }
    if (stated.upload !== undefined && current.offset === current.length && current.status === 'receiving') {
      current = await declareUploadSha256(deps, current, stated.upload);
      // Tells the client the sha256 it stated is the one the upload will be held to.
      req.res?.setHeader(UPLOAD_SHA256_HEADER, stated.upload);
    }
    // A request that announced the whole upload's sha256 as a trailer but ended before it
    // does not finish the upload: the client states it again (an empty PATCH will do).
    if (stated.upload === undefined && announcesUploadSha256(req)) return { session: current, overflow };
    current = await finishIfComplete(deps, current, offset === 0 ? chunkSha256 : undefined);
    return { session: current, overflow };
  } finally {
    await lock.release();
  }
}

/**
 * Verifies what the client stated about this request's bytes once they are written
 * (tus checksum: "Once the entire request has been received, the Server MUST verify the
 * uploaded chunk against the provided checksum"). On a mismatch — or a bad trailer —
 * the chunk is discarded and 460 (400) answered. A body cut short has no trailer and is
 * kept as without a checksum: the whole upload's sha256 still covers those bytes.
 */
async function checkedChecksums(
  deps: Deps,
  session: UploadSession,
  offset: number,
  req: Request,
  chunkSha256: string,
  written: number,
  overflow: boolean,
): Promise<StatedChecksums> {
  let stated: StatedChecksums;
  try {
    stated = statedChecksums(req);
  } catch (err) {
    if (written > offset) await discardChunk(deps, session, offset);
    throw err;
  }
  // Only a body that arrived whole is checked (a trailer exists only then anyway).
  if (overflow || !req.complete) return {};
  const complete = written === session.length;
  const mismatch =
    (stated.chunk !== undefined && stated.chunk !== chunkSha256) ||
    // The whole upload came in this request: its sha256 is known now.
    (stated.upload !== undefined && offset === 0 && complete && stated.upload !== chunkSha256);
  if (mismatch) {
    await discardChunk(deps, session, offset);
    throw new AppError(
      'CHECKSUM_MISMATCH',
      'The bytes received do not match the stated checksum; they were discarded.',
    );
  }
  return stated;
}

/**
 * "The Server MUST discard the chunk": a first chunk by removing the staging file (the
 * upload stays at offset 0). A staging file cannot be cut back to a later offset, so
 * there the upload ends as failed (the client starts a new one); nothing is committed.
 */
async function discardChunk(deps: Deps, session: UploadSession, offset: number): Promise<void> {
  if (offset > 0) await failUpload(deps, session);
  else await deps.blobs.deleteStaging(session.id);
}

/** Ends the upload as failed with CHECKSUM_MISMATCH and drops its bytes. */
async function failUpload(deps: Deps, session: UploadSession): Promise<void> {
  await deps.metadata.setUploadStatus(session.id, 'failed', { error: 'CHECKSUM_MISMATCH' });
  await deps.blobs.deleteStaging(session.id);
  await announceUpload(deps.cache, session.id, 'failed').catch(() => undefined);
}

/**
 * The client stated the whole upload's sha256 on the request that completed it (it hashed
 * while it sent): recorded like a `sha256` given at creation, so the worker verifies the
 * staged bytes against it before anything is committed. A value that contradicts the one
 * given at creation ends the upload as a mismatch.
 */
async function declareUploadSha256(
  deps: Deps,
  session: UploadSession,
  sha256: string,
): Promise<UploadSession> {
  if (session.sha256 === sha256) return session;
  if (session.sha256 !== null) {
    await failUpload(deps, session);
    throw new AppError('CHECKSUM_MISMATCH', 'The stated sha256 differs from the one given at creation.');
  }
  return (await deps.metadata.setUploadStatus(session.id, 'receiving', { sha256 })) ?? session;
}

/** Records the job and moves the upload to `processing` once every byte is in; kicks the relay. */
export async function finishIfComplete(
  deps: Pick<Deps, 'metadata' | 'cache'>,
  session: UploadSession,
  receivedSha256?: string,
): Promise<UploadSession> {
  if (session.status !== 'receiving' || session.offset !== session.length) return session;
  const finished = await deps.metadata.finishUpload(session.id, processingJob(session, receivedSha256));
  if (!finished) return (await deps.metadata.getUploadById(session.id)) ?? session;
  await kickOutboxRelay(deps.cache);
  return finished;
}

async function reload(deps: Deps, session: UploadSession): Promise<UploadSession> {
  const fresh = await deps.metadata.getUpload(session.uploaderId, session.id);
  if (!fresh) throw new AppError('NOT_FOUND');
  return fresh;
}

/**
 * For HEAD: when no request is writing the upload, records bytes a crashed request left
 * behind (see `reconcile`) so the offset the client resumes from includes them. While a
 * request holds the lock the recorded offset is answered as is.
 */
export async function settleOffset(deps: Deps, session: UploadSession): Promise<UploadSession> {
  if (session.status !== 'receiving') return session;
  let lock;
  try {
    lock = await lockUpload(deps.cache, session.id);
  } catch (err) {
    if (err instanceof AppError && err.code === 'UPLOAD_LOCKED') return session;
    throw err;
  }
  try {
    return await reconcile(deps, await reload(deps, session));
  } finally {
    await lock.release();
  }
}

/**
 * A request that died before its offset was recorded (a process crash, the server
 * SIGKILLed mid-body) leaves the staging file longer than the stored offset. Those
 * bytes are kept: fsynced first (the crashed writer may not have), then recorded, so
 * the client resumes after them.
 */
async function reconcile(deps: Deps, session: UploadSession): Promise<UploadSession> {
  if (session.status !== 'receiving') return session;
  const staged = (await deps.blobs.stagingSize(session.id)) ?? 0;
  if (staged === session.offset) return session;
  if (staged < session.offset || staged > session.length) {
    throw new AppError('CONFLICT', `The staging file has ${staged} bytes; ${session.offset} were recorded.`);
  }
  deps.logger.warn(
    { uploadId: session.id, recorded: session.offset, staged },
    'recording bytes of a lost request',
  );
  // Appending nothing at the end fsyncs the file (BlobStore contract).
  await deps.blobs.appendStaging(session.id, staged, noBytes(), 0);
  const advanced = await deps.metadata.advanceUpload(session.id, session.offset, staged);
  return advanced ?? reload(deps, session);
}

/** How long the end of a body (its trailers) may take after the upload's last byte. */
const END_WAIT_MS = 30_000;

/**
 * Waits until the request's body has ended (its trailers are then in `req.trailers`).
 * Resolves `true` when more bytes came (more than the upload allows), `false` at the end
 * or when the request was cut off.
 */
function awaitEnd(req: Request): Promise<boolean> {
  if (req.complete || req.readableEnded || req.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (extra: boolean): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onEnd);
      req.off('error', onEnd);
      resolve(extra);
    };
    const onData = (chunk: Buffer): void => {
      if (chunk.byteLength > 0) finish(true);
    };
    const onEnd = (): void => finish(false);
    const timer = setTimeout(onEnd, END_WAIT_MS);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onEnd);
    req.once('error', onEnd);
    // The store left the body paused where the upload ended.
    req.resume();
  });
}

/** The request announced (`Trailer:`) that the whole upload's sha256 follows the body. */
function announcesUploadSha256(req: Request): boolean {
  return (req.get('trailer') ?? '')
    .split(',')
    .some((name) => name.trim().toLowerCase() === UPLOAD_SHA256_HEADER.toLowerCase());
}

/** Writes `offset + received` to the Cache at most every `PROGRESS_INTERVAL_MS`; best effort. */
class ProgressWriter {
  private latest: number;
  private written: number;
  private lastWriteAt = 0;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly deps: Pick<Deps, 'cache'>,
    private readonly uploadId: string,
    private readonly base: number,
  ) {
    this.latest = base;
    this.written = base;
  }

  update(received: number): void {
    this.latest = this.base + received;
    const now = Date.now();
    if (this.pending || now - this.lastWriteAt < PROGRESS_INTERVAL_MS) return;
    this.lastWriteAt = now;
    this.pending = this.write().finally(() => {
      this.pending = undefined;
    });
  }

  /** Waits for a write in flight, then drops the key: the stored offset is the truth again. */
  async stop(): Promise<void> {
    await this.pending;
    await this.deps.cache.del(progressKey(this.uploadId)).catch(() => undefined);
  }

  private async write(): Promise<void> {
    if (this.latest === this.written) return;
    const value = this.latest;
    try {
      await this.deps.cache.set(progressKey(this.uploadId), String(value), PROGRESS_TTL_MS);
      this.written = value;
    } catch {
      // Progress is a courtesy; a Cache outage must not break the upload.
    }
  }
}

async function* noBytes(): AsyncGenerator<Uint8Array> {}
