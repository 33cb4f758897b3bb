/**
 * A tus 1.0 client for one file, shared by the CLI and the daemon: create (with the
 * target path, sha256, mtime and base revision as Upload-Metadata), resume from the
 * server's offset after any interruption, and stream the rest with backpressure.
 * The caller keeps the upload URL (a resume record) so a killed process resumes too.
 */
import fs from 'node:fs';
import got from 'got';
import type { ApiClient } from './client.js';
import { errorFromResponse, networkError } from './client.js';
import { AppError } from './errors.js';

export const TUS_VERSION = '1.0.0';

export interface UploadTarget {
  /** Remote path, e.g. `/docs/report.pdf`. */
  path: string;
  size: number;
  sha256: string;
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
  const headers = {
    ...(await client.authHeaders()),
    'tus-resumable': TUS_VERSION,
    'upload-offset': String(offset),
    'content-type': 'application/offset+octet-stream',
    'content-length': String(size - offset),
  };
  const body = fs.createReadStream(file, { start: offset, end: size - 1, highWaterMark: 1024 * 1024 });
  try {
    const request = got(url, {
      method: 'PATCH',
      headers,
      body: size - offset > 0 ? body : '',
      throwHttpErrors: false,
      retry: { limit: 0 },
      timeout: { socket: 60_000 },
      responseType: 'buffer',
    });
    if (onProgress)
      request.on('uploadProgress', (p: { transferred: number }) => onProgress(offset + p.transferred));
    const res = await request;
    if (res.statusCode === 401) {
      // The access token expired during a long transfer: refresh and let the caller resume.
      await client.refreshAuth();
      throw new AppError('SERVICE_UNAVAILABLE', 'The session was refreshed during the upload; resuming.');
    }
    if (res.statusCode !== 204) throw errorFromResponse(res.statusCode, res.body);
    return Number(res.headers['upload-offset'] ?? size);
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw networkError(client.server, err);
  } finally {
    body.destroy();
  }
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
