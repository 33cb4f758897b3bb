/**
 * The upload API (tus 1.0 at `/api/v1/uploads`): the constants of the protocol as this
 * server speaks it, the decoded `Upload-Metadata` keys, and the JSON answer of
 * `GET /api/v1/uploads/:id`. Clients (CLI, daemon) build their requests from these.
 */
import { z } from 'zod';
import { timestampSchema } from './common.js';

/** The one tus version spoken; every request but OPTIONS carries it in `Tus-Resumable`. */
export const TUS_VERSION = '1.0.0';
/** Extensions announced in `Tus-Extension`. */
export const TUS_EXTENSIONS = ['creation', 'creation-with-upload', 'termination', 'expiration'] as const;
/** The only body type of PATCH and creation-with-upload. */
export const TUS_CONTENT_TYPE = 'application/offset+octet-stream';
/** Extra response header: `ready` when a creation was committed at once (deduplicated). */
export const UPLOAD_STATUS_HEADER = 'Aio-Upload-Status';
/** How long an unfinished upload may stay idle before it expires. */
export const UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;

export const uploadStatusSchema = z.enum([
  'receiving',
  'processing',
  'ready',
  'failed',
  'expired',
  'cancelled',
]);
export type UploadStatusValue = z.infer<typeof uploadStatusSchema>;

const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/u, '64 hexadecimal digits')
  .transform((v) => v.toLowerCase());
const integerText = z.string().regex(/^(0|[1-9][0-9]{0,15})$/u, 'a non-negative integer');

/**
 * The decoded `Upload-Metadata` pairs this server reads (unknown keys are kept but
 * ignored). The target is `path` (e.g. `/a/b/c.txt`) or `filename` plus an optional
 * `folder` (what browser tus clients such as Uppy send); names are checked separately
 * with `core/domain/names.ts`.
 */
export const uploadMetadataSchema = z.object({
  path: z.string().optional(),
  filename: z.string().optional(),
  folder: z.string().optional(),
  /** Hex sha256 of the whole content; the worker verifies it. Absent: the worker computes it. */
  sha256: sha256Hex.optional(),
  /** Client modification time, ms since the epoch. */
  mtime: integerText.transform(Number).pipe(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).optional(),
  /** The revision the client's change is based on; `0` = the file must not exist yet. */
  baseRevision: integerText
    .transform(Number)
    .pipe(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER))
    .optional(),
  /** `bulk` (sync daemons) queues the processing behind interactive uploads. */
  priority: z.enum(['bulk', 'normal']).optional(),
});
export type UploadMetadata = z.infer<typeof uploadMetadataSchema>;

/** `GET /api/v1/uploads/:id`. */
export const uploadInfoSchema = z.object({
  id: z.string(),
  /** Target path within the owner's namespace. */
  path: z.string(),
  name: z.string(),
  length: z.number().int().min(0),
  /** Bytes durably received (tus Upload-Offset). */
  offset: z.number().int().min(0),
  /** Live progress of a PATCH that is still streaming; at least `offset`. */
  receivedBytes: z.number().int().min(0),
  status: uploadStatusSchema,
  /** Set once the file is committed. */
  fileId: z.string().nullable(),
  /** Why it failed, an error code such as `CHECKSUM_MISMATCH` or `REVISION_CONFLICT`. */
  error: z.string().nullable(),
  createdAt: timestampSchema,
  expiresAt: timestampSchema,
});
export type UploadInfo = z.infer<typeof uploadInfoSchema>;

/** `POST /api/v1/uploads/known`: which of these sha256 the caller already stores (≤ 1000). */
export const knownBodySchema = z.strictObject({
  sha256: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(1000),
});
export type KnownBody = z.infer<typeof knownBodySchema>;
export interface KnownResponse {
  known: string[];
}

// ---------- batch uploads ----------

/**
 * `POST /api/v1/uploads/batch`: many small files in one request, committed together by
 * the worker. Body (`Content-Type: application/vnd.aio.upload-batch`): a 4-byte
 * big-endian manifest length, the manifest (UTF-8 JSON, `uploadBatchManifestSchema`),
 * then each file's bytes in manifest order, back to back. The limits live in
 * `contract/batch-limits.ts` (no zod: clients load them without the schemas).
 */
import {
  BATCH_CONTENT_TYPE,
  BATCH_MAX_BYTES,
  BATCH_MAX_FILES,
  BATCH_MAX_FILE_SIZE,
  BATCH_MAX_MANIFEST_BYTES,
} from '../batch-limits.js';

export {
  BATCH_CONTENT_TYPE,
  BATCH_MAX_BYTES,
  BATCH_MAX_FILES,
  BATCH_MAX_FILE_SIZE,
  BATCH_MAX_MANIFEST_BYTES,
};

export const uploadBatchItemSchema = z.strictObject({
  /** Target path, e.g. `/docs/a.txt` (`/Shared/<name>/…` for a folder shared with you as editor). */
  path: z.string().min(1).max(4096),
  size: z.number().int().min(0).max(BATCH_MAX_FILE_SIZE),
  /** Required: the server checks the bytes against it before anything is stored. */
  sha256: sha256Hex,
  /** Client modification time, ms since the epoch. */
  mtime: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /** As in tus `Upload-Metadata`: `0` = must not exist yet, `n` = must be at revision n. */
  baseRevision: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});
export type UploadBatchItem = z.infer<typeof uploadBatchItemSchema>;

export const uploadBatchManifestSchema = z
  .strictObject({
    files: z.array(uploadBatchItemSchema).min(1).max(BATCH_MAX_FILES),
    /** `bulk` (sync daemons) queues the processing behind interactive uploads. */
    priority: z.enum(['bulk', 'normal']).optional(),
  })
  .refine((m) => m.files.reduce((sum, f) => sum + f.size, 0) <= BATCH_MAX_BYTES, {
    message: `A batch carries at most ${BATCH_MAX_BYTES} bytes.`,
  });
export type UploadBatchManifest = z.infer<typeof uploadBatchManifestSchema>;

/** One file of a batch: its upload (when one was created) and where it stands. */
export const uploadBatchFileSchema = z.object({
  path: z.string(),
  /** `null` when the file was refused before an upload was created. */
  uploadId: z.string().nullable(),
  status: uploadStatusSchema,
  fileId: z.string().nullable(),
  /** The revision of `fileId` this upload made, once `ready` (absent from older servers). */
  revision: z.number().int().nullable(),
  /** An error code (`CHECKSUM_MISMATCH`, `REVISION_CONFLICT`, `INVALID_NAME`, …) when failed. */
  error: z.string().nullable(),
  /** What went wrong, for people. */
  message: z.string().nullable(),
});
export type UploadBatchFile = z.infer<typeof uploadBatchFileSchema>;

/**
 * The answer of `POST /api/v1/uploads/batch` (202) and of
 * `GET /api/v1/uploads/batch/:id[?wait=N]`, files in manifest order. `done` is true
 * once every file reached a final status (`ready`, `failed`, …).
 */
export const uploadBatchResponseSchema = z.object({
  batchId: z.string(),
  done: z.boolean(),
  files: z.array(uploadBatchFileSchema),
});
export type UploadBatchResponse = z.infer<typeof uploadBatchResponseSchema>;
