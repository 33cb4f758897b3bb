/**
 * Limits of `POST /api/v1/uploads/batch` (see `contract/schemas/uploads.ts`), in a module
 * without zod so that clients load them cheaply.
 */
export const BATCH_CONTENT_TYPE = 'application/vnd.aio.upload-batch';
/** Most files in one batch. */
export const BATCH_MAX_FILES = 1000;
/** Largest file a batch carries; bigger ones use tus. */
export const BATCH_MAX_FILE_SIZE = 1024 * 1024;
/** Most bytes (all files) in one batch. */
export const BATCH_MAX_BYTES = 64 * 1024 * 1024;
/** Largest manifest. */
export const BATCH_MAX_MANIFEST_BYTES = 1024 * 1024;
