/**
 * Streams one blob as a download: conditional requests (`If-None-Match` → 304,
 * `If-Range`), a single byte range (206 / 416), safe headers, HEAD, and backpressure
 * end to end through `stream.pipeline` (a client that stops reading pauses the disk
 * read; one that goes away destroys it and closes the file).
 */
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { AppError } from '../../contract/errors.js';
import type { BlobStore, ByteRange } from '../../core/ports/blob-store.js';
import { attachmentDisposition, safeContentType } from './content-headers.js';
import { decideRange, ifRangeHolds, noneMatchHits } from './http-range.js';

export interface Download {
  sha256: string;
  size: number;
  /** File name for Content-Disposition. */
  name: string;
  mediaType: string | null;
  lastModified?: Date;
}

/** Writes the response for `download`; rejects only before anything was sent. */
export async function serveBlob(
  req: Request,
  res: Response,
  blobs: BlobStore,
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

  // Opened before the content headers, so a missing blob still gets a plain JSON error.
  const body = req.method === 'HEAD' || length === 0 ? null : await blobs.read(download.sha256, range);

  res.status(range ? 206 : 200);
  if (range) res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${download.size}`);
  res.setHeader('Content-Length', String(length));
  res.setHeader('Content-Type', safeContentType(download.mediaType));
  res.setHeader('Content-Disposition', attachmentDisposition(download.name));

  if (body === null) {
    res.end();
    return;
  }
  try {
    await pipeline(body, res);
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
