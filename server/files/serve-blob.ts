/**
 * Streams one blob as a download: conditional requests (`If-None-Match` → 304,
 * `If-Range`), a single byte range (206 / 416), safe headers, HEAD, and backpressure
 * end to end (a client that stops reading pauses the disk read; one that goes away
 * stops it and closes the file). A blob on the local filesystem is sent through a few
 * reused buffers (`sendFileRange`); any other store's stream goes through `pipeline`.
 */
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { AppError } from '../../contract/errors.js';
import type { BlobStore, ByteRange } from '../../core/ports/blob-store.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { attachmentDisposition, safeContentType } from './content-headers.js';
import { decideRange, ifRangeHolds, noneMatchHits } from './http-range.js';
import type { BodyMemory } from '../body-memory.js';
import { openForSending, sendFileRange, type OpenedFile } from './send-file.js';

export interface Download {
  sha256: string;
  size: number;
  /** File name for Content-Disposition. */
  name: string;
  mediaType: string | null;
  lastModified?: Date;
}

/** A ready file's current content as a `Download` (its name, type and modification time). */
export function fileDownload(
  file: Pick<TreeNode, 'size' | 'name' | 'mediaType' | 'updatedAt'> & { sha256: string },
): Download {
  return {
    sha256: file.sha256,
    size: file.size,
    name: file.name,
    mediaType: file.mediaType,
    lastModified: file.updatedAt,
  };
}

/** What `serveBlob` reads from and tells: the store, and the body memory (`BodyMemory.sent`). */
export interface ServeBlobDeps {
  blobs: BlobStore;
  bodyMemory?: Pick<BodyMemory, 'sent'>;
}

/** Writes the response for `download`; rejects only before anything was sent. */
export async function serveBlob(
  req: Request,
  res: Response,
  { blobs, bodyMemory }: ServeBlobDeps,
  download: Download,
): Promise<void> {
  const etag = `"${download.sha256}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'private, no-cache');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (download.lastModified) res.setHeader('Last-Modified', download.lastModified.toUTCString());

  if (noneMatchHits(req.headers['if-none-match'], etag)) {
    res.status(304).end();
    return;
  }

  const rangeHeader = ifRangeHolds(headerOf(req, 'if-range'), etag) ? headerOf(req, 'range') : undefined;
  const decision = decideRange(rangeHeader, download.size);
  if (decision.kind === 'unsatisfiable') {
    throw new AppError('RANGE_NOT_SATISFIABLE', `The file has ${download.size} bytes.`, {
      headers: { 'Content-Range': `bytes */${download.size}` },
    });
  }
  const range: ByteRange | undefined =
    decision.kind === 'partial' ? { start: decision.start, end: decision.end } : undefined;
  const length = range ? range.end - range.start + 1 : download.size;

  const contentType = safeContentType(download.mediaType);
  const disposition = attachmentDisposition(download.name);
  // Opened before the content headers, so a missing blob still gets a plain JSON error.
  // A blob on the local disk is sent by `sendFileRange` (reused buffers, no stream).
  const noBody = req.method === 'HEAD' || length === 0;
  const local = noBody ? null : blobs.localPath(download.sha256);
  const file: OpenedFile | null = local === null ? null : await openForSending(local, range);
  const body = noBody || file !== null ? null : await blobs.read(download.sha256, range);

  res.status(range ? 206 : 200);
  if (range) res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${download.size}`);
  res.setHeader('Content-Length', String(length));
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Disposition', disposition);

  if (file !== null) {
    try {
      await sendFileRange(res, file, range?.start ?? 0, length);
      bodyMemory?.sent(length);
    } catch (err) {
      // The client went away or the disk read failed after the headers were decided:
      // `sendFileRange` has closed the file and destroyed the response (a body shorter
      // than its Content-Length must not look complete); nothing more to send.
      req.log?.debug({ err }, 'download ended early');
    }
    return;
  }
  if (body === null) {
    res.end();
    return;
  }
  try {
    await pipeline(body, res);
    bodyMemory?.sent(length);
  } catch (err) {
    // The client went away or the disk read failed after the headers went out: the
    // pipeline has destroyed both streams (file handle closed); nothing more to send.
    body.destroy();
    if (!res.headersSent && !res.destroyed) throw err;
    req.log?.debug({ err }, 'download ended early');
  }
}

function headerOf(req: Request, name: 'range' | 'if-range'): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}
