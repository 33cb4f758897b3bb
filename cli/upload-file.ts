/**
 * Uploads one local file to a remote path, resumably: a small resume record in
 * `<config>/uploads/` remembers the upload URL and the file's identity (size, mtime,
 * inode, sha256 when known), so an interrupted upload of the same unchanged file — even
 * after the process was killed — continues from the server's offset instead of starting
 * over.
 *
 * A large file whose sha256 is not known yet is read once: hashed while it is sent, its
 * sha256 stated in a trailer of the last PATCH, which the server checks against the bytes
 * it received (or holds the upload to) before anything is committed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ApiClient } from '../contract/client.js';
import { AppError } from '../contract/errors.js';
import {
  createUpload,
  sendRest,
  uploadOffset,
  waitForUpload,
  type UploadTarget,
} from '../contract/tus-client.js';
import { sha256File } from '../core/domain/hash.js';
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from './paths.js';

interface ResumeRecord {
  url: string;
  size: number;
  mtimeMs: number;
  ino: number;
  /** Null while the file is hashed as it is sent. */
  sha256: string | null;
  remotePath: string;
}

export interface UploadOutcome {
  local: string;
  remote: string;
  uploadId: string;
  size: number;
  sha256: string;
  /** `uploaded`, `deduplicated` (server had the bytes), or `resumed` (continued an earlier upload). */
  how: 'uploaded' | 'deduplicated' | 'resumed';
  status: 'ready' | 'pending';
  fileId: string | null;
  /** Bytes sent by this run (less than `size` when resumed, 0 when deduplicated). */
  bytesSent: number;
}

export interface UploadFileOptions {
  client: ApiClient;
  /** Where resume records go; `null` keeps none (AIO_TOKEN runs write nothing to disk). */
  configDir: string | null;
  /** Identifies the server+profile in resume records. */
  account: string;
  local: string;
  remote: string;
  wait: boolean;
  priority?: 'bulk' | 'normal';
  baseRevision?: number;
  onProgress?: (sent: number, size: number) => void;
  /** Attempts to resume after a broken connection. */
  retries?: number;
  /**
   * `false` when the caller asked the server (`/uploads/known`) and it lacks this content:
   * a small file then travels with its creation request (one round trip).
   */
  serverHas?: boolean;
  /**
   * The file's sha256 when the caller already hashed it (e.g. `aio sync` to compare), so
   * a big file is not read an extra time. If the file changed since, the server finds
   * the mismatch and the upload fails; nothing wrong is stored.
   */
  sha256?: string;
  /**
   * Hash a big file before its upload is created, so the server can answer with content
   * it has already (`deduplicated`, nothing sent), as `aio sync` wants for files that
   * were moved; otherwise a big file is hashed as it is sent (one read).
   */
  hashFirst?: boolean;
}

/** Files up to this size are read whole and sent with the creation request when new. */
export const SMALL_FILE = 1024 * 1024;

function recordPath(configDir: string, account: string, local: string, remote: string): string {
  const key = createHash('sha256')
    .update(`${account}\0${path.resolve(local)}\0${remote}`)
    .digest('hex')
    .slice(0, 32);
  return path.join(configDir, 'uploads', `${key}.json`);
}

export async function uploadFile(options: UploadFileOptions): Promise<UploadOutcome> {
  const { client } = options;
  const stat = await fs.stat(options.local);
  if (!stat.isFile()) throw new AppError('BAD_REQUEST', `Not a regular file: ${options.local}`);
  const recordFile = options.configDir
    ? recordPath(options.configDir, options.account, options.local, options.remote)
    : null;
  const record = recordFile ? await readJsonFile<ResumeRecord>(recordFile) : null;
  const unchanged =
    record && record.size === stat.size && record.mtimeMs === stat.mtimeMs && record.ino === stat.ino;

  let sha256: string | null;
  let url: string | null = null;
  let offset = 0;
  let how: UploadOutcome['how'] = 'uploaded';
  let status: string | null = null;

  if (unchanged && record) {
    sha256 = record.sha256;
    const serverOffset = await uploadOffset(client, record.url);
    if (serverOffset !== null) {
      url = record.url;
      offset = serverOffset;
      how = 'resumed';
    }
  } else if (stat.size <= SMALL_FILE && options.serverHas === false) {
    // What is hashed is exactly what is sent: one read, one request.
    const body = await fs.readFile(options.local);
    const bodySha256 = createHash('sha256').update(body).digest('hex');
    const created = await createUpload(client, target(options, body.length, bodySha256, stat.mtimeMs), body);
    const id = created.url.split('/').pop() as string;
    return finish(options, {
      id,
      size: body.length,
      sha256: bodySha256,
      how: created.status === 'ready' ? 'deduplicated' : 'uploaded',
      ready: created.status === 'ready',
      bytesSent: body.length,
    });
  } else if (options.sha256 !== undefined || stat.size <= SMALL_FILE || options.hashFirst === true) {
    // A small file (or one the caller asked for) is hashed first: the server may have its
    // content (no bytes sent then).
    sha256 = options.sha256 ?? (await sha256File(options.local)).sha256;
  } else {
    // A large one is hashed while it is sent: no extra read.
    sha256 = null;
  }

  if (!url) {
    const created = await createUpload(client, target(options, stat.size, sha256, stat.mtimeMs));
    url = created.url;
    offset = created.offset;
    status = created.status;
    if (created.status === 'ready') how = 'deduplicated';
    else if (recordFile) {
      await ensurePrivateDir(path.dirname(recordFile));
      await writeFileAtomic(
        recordFile,
        JSON.stringify({
          url,
          size: stat.size,
          mtimeMs: stat.mtimeMs,
          ino: stat.ino,
          sha256,
          remotePath: options.remote,
        }),
      );
    }
  }

  const startOffset = offset;
  let attempts = 0;
  // A zero-length upload is complete at creation (the server finishes it at once). An
  // upload hashed on the way needs its sha256 stated even when every byte is there (a
  // process killed before the last PATCH ended): an empty PATCH states it.
  let unconfirmed = sha256 === null && status !== 'ready';
  while (offset < stat.size || unconfirmed) {
    try {
      const sent = await sendRest(client, url, options.local, offset, stat.size, {
        hashWhole: sha256 === null,
        onProgress: (n) => options.onProgress?.(n, stat.size),
      });
      offset = sent.offset;
      if (sent.sha256 !== null) sha256 = sent.sha256;
      if (offset >= stat.size) unconfirmed = false;
    } catch (err) {
      if (err instanceof AppError && err.code === 'CONFLICT' && unconfirmed && offset >= stat.size) {
        // The upload is complete already: an earlier run's PATCH stated the sha256 and
        // the answer was lost. The server held the bytes to it; it is what this file hashes to.
        sha256 = (await sha256File(options.local)).sha256;
        unconfirmed = false;
        break;
      }
      if (
        !(err instanceof AppError) ||
        err.code !== 'SERVICE_UNAVAILABLE' ||
        attempts >= (options.retries ?? 5)
      ) {
        throw err;
      }
      attempts++;
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempts, 5000)));
      const serverOffset = await uploadOffset(client, url);
      if (serverOffset === null)
        throw new AppError('GONE', 'The upload expired on the server; run the command again.');
      offset = serverOffset;
    }
  }
  options.onProgress?.(stat.size, stat.size);
  if (recordFile) await fs.rm(recordFile, { force: true });

  return finish(options, {
    id: url.split('/').pop() as string,
    size: stat.size,
    sha256: sha256 ?? '',
    how,
    ready: status === 'ready',
    bytesSent: stat.size - startOffset,
  });
}

function target(
  options: UploadFileOptions,
  size: number,
  sha256: string | null,
  mtimeMs: number,
): UploadTarget {
  return {
    path: options.remote,
    size,
    sha256: sha256 ?? undefined,
    mtimeMs,
    baseRevision: options.baseRevision,
    priority: options.priority,
  };
}

async function finish(
  options: UploadFileOptions,
  sent: {
    id: string;
    size: number;
    sha256: string;
    how: UploadOutcome['how'];
    ready: boolean;
    bytesSent: number;
  },
): Promise<UploadOutcome> {
  let fileId: string | null = null;
  let ready = sent.ready;
  if (options.wait) {
    fileId = (await waitForUpload(options.client, sent.id)).fileId;
    ready = true;
  }
  return {
    local: options.local,
    remote: options.remote,
    uploadId: sent.id,
    size: sent.size,
    sha256: sent.sha256,
    how: sent.how,
    status: ready ? 'ready' : 'pending',
    fileId,
    bytesSent: sent.bytesSent,
  };
}
