/**
 * The batch upload client (`POST /api/v1/uploads/batch`), shared by the CLI and the
 * daemon: many small files in one request, then one long-poll until the worker has
 * committed them all. Files must be at most `BATCH_MAX_FILE_SIZE`; a batch at most
 * `BATCH_MAX_FILES` files and `BATCH_MAX_BYTES` bytes (`planBatches` cuts a list so).
 */
import type { ApiClient } from './client.js';
import { errorFromResponse } from './client.js';
import { AppError } from './errors.js';
import { BATCH_CONTENT_TYPE, BATCH_MAX_BYTES, BATCH_MAX_FILES, BATCH_MAX_FILE_SIZE } from './batch-limits.js';
import type { UploadBatchFile, UploadBatchItem, UploadBatchResponse } from './schemas/uploads.js';

export { BATCH_MAX_BYTES, BATCH_MAX_FILES, BATCH_MAX_FILE_SIZE };
export type { UploadBatchFile, UploadBatchResponse };

export interface BatchFile {
  /** Remote path, e.g. `/docs/a.txt`. */
  path: string;
  /** The whole content (at most `BATCH_MAX_FILE_SIZE` bytes). */
  bytes: Uint8Array;
  /** sha256 (hex) of `bytes`; the server refuses the file when they differ. */
  sha256: string;
  mtimeMs?: number;
  /** `0`: the file must not exist yet; `n`: it must be at revision n. */
  baseRevision?: number;
}

/** The request body: manifest length (uint32 BE), manifest JSON, then every file's bytes. */
export function encodeBatch(files: readonly BatchFile[], priority?: 'bulk' | 'normal'): Buffer {
  const manifest: { files: UploadBatchItem[]; priority?: 'bulk' | 'normal' } = {
    files: files.map((f) => ({
      path: f.path,
      size: f.bytes.byteLength,
      sha256: f.sha256,
      ...(f.mtimeMs === undefined ? {} : { mtime: Math.max(0, Math.round(f.mtimeMs)) }),
      ...(f.baseRevision === undefined ? {} : { baseRevision: f.baseRevision }),
    })),
    ...(priority ? { priority } : {}),
  };
  const json = Buffer.from(JSON.stringify(manifest), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.byteLength, 0);
  return Buffer.concat([head, json, ...files.map((f) => f.bytes)]);
}

/** Splits sizes (in order) into batches within the file-count and byte limits. */
export function planBatches<T extends { size: number }>(
  items: readonly T[],
  limits: { maxFiles?: number; maxBytes?: number } = {},
): T[][] {
  const maxFiles = Math.min(limits.maxFiles ?? BATCH_MAX_FILES, BATCH_MAX_FILES);
  const maxBytes = Math.min(limits.maxBytes ?? BATCH_MAX_BYTES, BATCH_MAX_BYTES);
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (item.size > BATCH_MAX_FILE_SIZE)
      throw new RangeError(`A batch file is at most ${BATCH_MAX_FILE_SIZE} bytes.`);
    if (current.length > 0 && (current.length >= maxFiles || bytes + item.size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Sends one batch; the answer says, per file, whether it is on its way (`processing`) or refused. */
export async function sendBatch(
  client: ApiClient,
  files: readonly BatchFile[],
  options: { priority?: 'bulk' | 'normal'; signal?: AbortSignal } = {},
): Promise<UploadBatchResponse> {
  const res = await client.raw('POST', '/api/v1/uploads/batch', {
    body: encodeBatch(files, options.priority),
    headers: { 'content-type': BATCH_CONTENT_TYPE },
    signal: options.signal,
    timeoutMs: 120_000,
  });
  if (res.status !== 202) throw errorFromResponse(res.status, res.body);
  return JSON.parse(res.body.toString('utf8')) as UploadBatchResponse;
}

/**
 * Waits until every file of the batch is final (the server holds each request up to
 * 25 s). Returns the files that got an upload, in batch order.
 */
export async function waitForBatch(
  client: ApiClient,
  batchId: string,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<UploadBatchResponse> {
  const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
  for (;;) {
    const view = await client.get<UploadBatchResponse>(
      `/api/v1/uploads/batch/${encodeURIComponent(batchId)}`,
      {
        searchParams: { wait: 25 },
        timeoutMs: 40_000,
        signal: options.signal,
      },
    );
    if (view.done) return view;
    if (Date.now() > deadline) {
      throw new AppError('SERVICE_UNAVAILABLE', 'The server did not finish the batch in time.');
    }
  }
}

/**
 * Sends a batch and waits for it: every file of `files`, in order, with its final status
 * (`ready` with its file id, or `failed` with the error code).
 */
export async function uploadBatch(
  client: ApiClient,
  files: readonly BatchFile[],
  options: { priority?: 'bulk' | 'normal'; signal?: AbortSignal; wait?: boolean } = {},
): Promise<UploadBatchFile[]> {
  const sent = await sendBatch(client, files, options);
  if (sent.done || options.wait === false) return sent.files;
  const final = await waitForBatch(client, sent.batchId, { signal: options.signal });
  const byUpload = new Map(final.files.map((f) => [f.uploadId, f]));
  return sent.files.map((f) => (f.uploadId === null ? f : (byUpload.get(f.uploadId) ?? f)));
}
