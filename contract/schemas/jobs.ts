/**
 * Request and response schemas of background jobs a person waits for
 * (`/api/v1/jobs`, `/api/v1/folders/zip`). A job's status lives in the Cache for a day
 * (see `core/job-status.ts`); the job itself sits in the durable queue until done.
 */
import { z } from 'zod';
import { timestampSchema } from './common.js';

export const jobStateSchema = z.enum(['queued', 'running', 'done', 'failed', 'skipped']);
export type JobState = z.infer<typeof jobStateSchema>;

/** The kinds of job whose status is kept: the queue that runs them. */
export const jobTypeSchema = z.enum(['file.download', 'video.transcode']);
export type JobType = z.infer<typeof jobTypeSchema>;

/** An opaque job id (a UUID today). */
export const jobIdSchema = z.string().min(1).max(128);

/** `GET /api/v1/jobs/:id`. `result` is set once `done` (its shape depends on `type`), `error` once `failed`. */
export const jobStatusSchema = z.object({
  id: z.string(),
  ownerId: z.string(),
  type: jobTypeSchema,
  status: jobStateSchema,
  result: z.record(z.string(), z.unknown()).optional(),
  error: z.string().optional(),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type JobStatusBody = z.infer<typeof jobStatusSchema>;

/** `POST /api/v1/folders/zip`: the folder by path (`/` is the whole namespace) or by id. */
export const folderZipBodySchema = z.union([
  z.strictObject({ path: z.string().min(1).max(4096) }),
  z.strictObject({ id: z.string().min(1).max(128) }),
]);
export type FolderZipBody = z.infer<typeof folderZipBodySchema>;

/** 202 answer of `POST /api/v1/folders/zip`: poll `GET /api/v1/jobs/:jobId`. */
export const folderZipResponseSchema = z.object({ jobId: z.string() });
export type FolderZipResponse = z.infer<typeof folderZipResponseSchema>;

/** `result` of a done `file.download` job. */
export const zipResultSchema = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Relative URL with a signed token valid 24 h: `GET` it without an Authorization header. */
  url: z.string().startsWith('/api/v1/dl/'),
  /** `<folder name>.zip`. */
  name: z.string(),
  /** Files written into the zip. */
  files: z.number().int().nonnegative(),
});
export type ZipResult = z.infer<typeof zipResultSchema>;

// ---------- queue payloads (server → worker, not HTTP) ----------

/** Payload of a `file.download` job. `folderId` `null` zips the owner's whole namespace. */
export const fileDownloadPayloadSchema = z.object({
  jobId: jobIdSchema,
  ownerId: z.string().min(1),
  folderId: z.string().min(1).nullable(),
});
export type FileDownloadPayload = z.infer<typeof fileDownloadPayloadSchema>;

/** Payload of a `video.transcode` job (published by the upload worker for video files). */
export const videoTranscodePayloadSchema = z.object({
  ownerId: z.string().min(1),
  fileId: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type VideoTranscodePayload = z.infer<typeof videoTranscodePayloadSchema>;
