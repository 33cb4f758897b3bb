/**
 * `file.download`: builds the zip of a folder (published by `POST /api/v1/folders/zip`)
 * and makes it downloadable through a signed URL valid 24 hours.
 *
 * Steps: status `running` → zip the tree into a blob (`zip-folder.ts`), kept referenced
 * while its URL is valid (`keepBlob`; the trash purge's sweep deletes it after) → status `done`
 * with `{ sha256, size, url, name, files }` → a `notify` change `{ type: 'zip.ready',
 * jobId }` on the owner's feed, announced on the Cache.
 *
 * Idempotent: a redelivered job whose status is `done` returns at once; otherwise the
 * zip is built again (deterministic, so it lands on the same blob).
 *
 * Errors: a malformed payload, or a folder that is gone, trashed or foreign, throws
 * `PermanentJobError` (status `failed`, dead-lettered). A file whose blob is missing is
 * permanent too (storage lost it; retrying cannot help). Anything else is rethrown so
 * the queue retries it; the status goes back to `queued` with the error, or to `failed`
 * on the last attempt.
 */
import { AppError } from '../../contract/errors.js';
import { fileDownloadPayloadSchema, type ZipResult } from '../../contract/schemas/jobs.js';
import { withBlobHold } from '../../core/blob-holds.js';
import { announceChange } from '../../core/changes.js';
import { JobStatusStore, type JobRef } from '../../core/job-status.js';
import { PermanentJobError, type Job, type JobHandler } from '../../core/ports/job-queue.js';
import { signDownload } from '../../core/signed-url.js';
import type { WorkerDeps } from '../deps.js';
import { zipFolder } from './zip-folder.js';

/** How long the signed URL of a zip stays valid: as long as its status is kept. */
export const ZIP_URL_TTL_MS = 24 * 60 * 60 * 1000;
/** File name of a zip of the whole namespace. */
export const ROOT_ZIP_NAME = 'files.zip';

export interface FileDownloadOptions {
  /** Deliveries before the queue gives up; the last failure marks the status `failed`. Default 5 (as the worker runtime). */
  maxAttempts?: number;
}

export function fileDownloadHandler(deps: WorkerDeps, options: FileDownloadOptions = {}): JobHandler {
  const maxAttempts = options.maxAttempts ?? 5;
  const statuses = new JobStatusStore(deps.cache, deps.clock);

  return async (job: Job) => {
    const parsed = fileDownloadPayloadSchema.safeParse(job.payload);
    if (!parsed.success)
      throw new PermanentJobError('Malformed file.download payload.', { cause: parsed.error });
    const { jobId, ownerId, folderId } = parsed.data;
    const ref: JobRef = { id: jobId, ownerId, type: 'file.download' };
    const log = deps.logger.child({ jobId, ownerId, folderId });

    if ((await statuses.get(jobId))?.status === 'done') {
      log.info('zip already built; redelivery ignored');
      return;
    }
    await statuses.set(ref, { status: 'running' });

    let result: ZipResult;
    try {
      result = await buildZip(deps, jobId, ownerId, folderId);
    } catch (err) {
      const failure = asPermanent(err);
      const last = failure instanceof PermanentJobError || job.attempt >= maxAttempts;
      const shown = failure instanceof PermanentJobError ? failure.message : 'The zip could not be built.';
      await statuses
        .set(
          ref,
          last ? { status: 'failed', error: shown } : { status: 'queued', error: `${shown} Retrying.` },
        )
        .catch((statusErr: unknown) => log.warn({ err: statusErr }, 'could not record the job status'));
      throw failure;
    }
    await statuses.set(ref, { status: 'done', result: { ...result } });
    log.info({ sha256: result.sha256, size: result.size, files: result.files }, 'zip ready');

    // The status is the truth; the notification is a nudge. Failing it must not redo the zip.
    try {
      const change = await deps.metadata.appendChange(ownerId, 'notify', null, { type: 'zip.ready', jobId });
      await announceChange(deps.cache, ownerId, change.seq);
    } catch (err) {
      log.warn({ err }, 'could not append the zip.ready notification');
    }
  };
}

async function buildZip(
  deps: WorkerDeps,
  jobId: string,
  ownerId: string,
  folderId: string | null,
): Promise<ZipResult> {
  let name = ROOT_ZIP_NAME;
  if (folderId !== null) {
    const folder = await deps.metadata.getNode(ownerId, folderId);
    if (folder === null || folder.trashedAt !== null || folder.kind !== 'folder') {
      throw new PermanentJobError('The folder no longer exists.');
    }
    name = `${folder.name}.zip`;
  }
  const zip = await zipFolder(deps, ownerId, folderId);
  const exp = deps.clock.now().getTime() + ZIP_URL_TTL_MS;
  // Kept as long as its URL is valid (then the trash purge's sweep deletes it), committed
  // under a hold like any reference: a purge of a file with the same bytes cannot take it.
  const holder = `zip:${jobId}`;
  await withBlobHold(deps, holder, [zip.sha256], async () => {
    if ((await deps.blobs.stat(zip.sha256)) === null)
      throw new Error('The zip was deleted before it could be kept; building it again.');
    await deps.metadata.keepBlob(holder, zip.sha256, new Date(exp));
  });
  const token = signDownload(deps.jwtSecret, {
    sha256: zip.sha256,
    name,
    mediaType: 'application/zip',
    ownerId,
    exp,
  });
  return { sha256: zip.sha256, size: zip.size, url: `/api/v1/dl/${token}`, name, files: zip.files };
}

/** A blob the tree points at but storage lacks will not come back on a retry. */
function asPermanent(err: unknown): unknown {
  if (err instanceof AppError && err.code === 'NOT_FOUND') {
    return new PermanentJobError("A file's content is missing from storage.", { cause: err });
  }
  return err;
}
