/**
 * Uploads one local file to a remote path, resumably: a small resume record in
 * `<config>/uploads/` remembers the upload URL and the file's identity (size, mtime,
 * inode, sha256), so an interrupted upload of the same unchanged file — even after the
 * process was killed — continues from the server's offset instead of starting over.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ApiClient } from '../contract/client.js';
import { AppError } from '../contract/errors.js';
import { createUpload, sendFrom, uploadOffset } from '../contract/tus-client.js';
import { sha256File } from '../core/domain/hash.js';
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from './paths.js';

interface ResumeRecord {
  url: string;
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
  remotePath: string;
}

export interface UploadOutcome {
  local: string;
  remote: string;
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
  onHashed?: (size: number) => void;
  onProgress?: (sent: number, size: number) => void;
  /** Attempts to resume after a broken connection. */
  retries?: number;
}

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

  let sha256: string;
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
  } else {
    sha256 = (await sha256File(options.local)).sha256;
    options.onHashed?.(stat.size);
  }

  if (!url) {
    const created = await createUpload(client, {
      path: options.remote,
      size: stat.size,
      sha256,
      mtimeMs: stat.mtimeMs,
      baseRevision: options.baseRevision,
      priority: options.priority,
    });
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
  // A zero-length upload is complete at creation (the server finishes it at once).
  while (offset < stat.size) {
    try {
      offset = await sendFrom(client, url, options.local, offset, stat.size, (sent) =>
        options.onProgress?.(sent, stat.size),
      );
    } catch (err) {
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

  const id = url.split('/').pop() as string;
  let fileId: string | null = null;
  let final: UploadOutcome['status'] = status === 'ready' ? 'ready' : 'pending';
  if (options.wait) {
    const done = await waitForUpload(client, id);
    fileId = done.fileId;
    final = 'ready';
  }
  return {
    local: options.local,
    remote: options.remote,
    size: stat.size,
    sha256,
    how,
    status: final,
    fileId,
    bytesSent: stat.size - startOffset,
  };
}

interface UploadView {
  status: string;
  fileId: string | null;
  error: string | null;
}

/** Polls the upload until the worker committed it; a failed upload throws with the server's reason. */
export async function waitForUpload(
  client: ApiClient,
  id: string,
  timeoutMs = 10 * 60_000,
): Promise<UploadView> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const view = await client.get<UploadView>(`/api/v1/uploads/${encodeURIComponent(id)}`);
    if (view.status === 'ready') return view;
    if (view.status === 'failed') {
      if (view.error === 'CHECKSUM_MISMATCH')
        throw new AppError('CHECKSUM_MISMATCH', 'The server received different bytes than were sent.');
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
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 1000);
  }
}
