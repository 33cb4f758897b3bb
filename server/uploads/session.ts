/**
 * Small rules about upload sessions shared by the tus handlers: ids, which states
 * accept bytes, the job that processes a finished upload, and the response headers
 * that describe a session.
 */
import type { Response } from 'express';
import { AppError } from '../../contract/errors.js';
import { timeOrderedToken } from '../../core/domain/ids.js';
import { PRIORITY } from '../../core/ports/job-queue.js';
import type { NewOutboxEntry, UploadSession } from '../../core/ports/metadata-store.js';
import { httpDate } from './tus-headers.js';

/** Shape of the ids `newUploadId` makes (22 base64url characters: 16 bytes). */
export const UPLOAD_ID = /^[A-Za-z0-9_-]{22}$/u;

/**
 * A URL-safe upload id: the creation time (ms, 48 bits) then 80 random bits, so uploads
 * created together sit together in the uploads index (see `core/domain/ids.ts`).
 */
export function newUploadId(): string {
  return timeOrderedToken();
}

/** Cache key of the live byte count of a PATCH in flight. */
export function progressKey(uploadId: string): string {
  return `upload-progress:${uploadId}`;
}

/** The job recorded (in the outbox, with the state change) once the last byte is in. */
/**
 * The `file.upload` job. `receivedSha256`: the hash the server computed while it wrote
 * every byte in one request, so the worker need not read the file again.
 */
export function processingJob(session: UploadSession, receivedSha256?: string): NewOutboxEntry {
  return {
    queue: 'file.upload',
    payload: receivedSha256 ? { uploadId: session.id, receivedSha256 } : { uploadId: session.id },
    idempotencyKey: session.id,
    priority:
      session.metadata.priority === Buffer.from('bulk').toString('base64') ? PRIORITY.bulk : PRIORITY.normal,
  };
}

/** True once the upload can no longer receive bytes because time ran out. */
export function isExpired(session: UploadSession, now: Date): boolean {
  return session.status === 'expired' || (session.status === 'receiving' && session.expiresAt <= now);
}

/**
 * Refuses sessions that are gone: cancelled (terminated) → 404, expired → 410. tus: "If
 * the upload is expired, the Server SHOULD respond with 404 Not Found or 410 Gone".
 */
export function assertNotGone(session: UploadSession, now: Date): void {
  if (session.status === 'cancelled') throw new AppError('NOT_FOUND', 'The upload was terminated.');
  if (isExpired(session, now)) throw new AppError('GONE', 'The upload expired.');
}

/** Refuses sessions that cannot take bytes: gone (404/410) or complete (409). */
export function assertReceiving(session: UploadSession, now: Date): void {
  assertNotGone(session, now);
  if (session.status !== 'receiving') {
    throw new AppError('CONFLICT', `The upload is complete (status ${session.status}).`);
  }
}

/** Upload-Offset, and Upload-Expires while the upload is unfinished. */
export function setProgressHeaders(res: Response, session: UploadSession): void {
  const offset = session.status === 'receiving' ? session.offset : session.length;
  res.setHeader('Upload-Offset', String(offset));
  // "This header MUST be included in every PATCH response if the upload is going to expire."
  if (session.status === 'receiving') res.setHeader('Upload-Expires', httpDate(session.expiresAt));
}
