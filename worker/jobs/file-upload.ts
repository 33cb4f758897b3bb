/**
 * `file.upload`: turns a finished upload into a file revision. Payload `{ uploadId }`.
 *
 * Steps: hash the staging file → record the hash on the upload → verify the declared
 * sha256 → sniff the media type → move the bytes into content-addressed storage →
 * commit the revision (keyed by the upload id) → drop unreferenced old blobs → announce
 * the change, audit, queue a transcode for videos → mark the upload `ready` → ack.
 *
 * The file goes into `upload.ownerId`'s tree (and quota) even when an editor of a shared
 * folder uploaded it; audit entries belong to the uploader (`upload.uploaderId`) and
 * name the owner.
 *
 * Idempotent and crash-safe: a redelivery after a crash at any step ends with exactly
 * one revision. Finished uploads (`ready`, `failed`, `cancelled`, `expired`) are acked
 * at once; a staging file already moved is recovered through the recorded sha256
 * (`commitStaging` and `commitFile` are both idempotent); `commitFile` with the same
 * `sourceId` returns the first revision. The upload is marked `ready` last, so a crash
 * before it repeats the (idempotent) steps after the commit instead of skipping them.
 *
 * The blob is held (`core/blob-holds.ts`) from before the bytes move into it until the
 * commit, and blobs the upload leaves unreferenced (its own after a refused commit, old
 * revisions dropped) are deleted only after that hold is released, under a claim: a
 * concurrent upload of the same bytes keeps them.
 */
import { transcodeJob } from '../../core/transcode-job.js';
import { SNIFF_BYTES, mediaTypeFromName, mediaTypeOf } from '../../core/domain/media-type.js';
import { mapPool } from '../../core/domain/pool.js';
import { AppError } from '../../contract/errors.js';
import {
  batchHolder,
  deleteBlobIfUnreferenced,
  holdBlobs,
  releaseBlobs,
  uploadHolder,
  withBlobHold,
} from '../../core/blob-holds.js';
import { announceBatch, announceChange, announceUpload } from '../../core/changes.js';
import { PermanentJobError, type Job, type JobHandler } from '../../core/ports/job-queue.js';
import {
  FINAL_COMMIT_ERRORS,
  type CommitFileInput,
  type NewAuditEntry,
  type UploadSession,
} from '../../core/ports/metadata-store.js';
import type { WorkerDeps } from '../deps.js';

export function fileUploadHandler(deps: WorkerDeps): JobHandler {
  return async (job: Job) => {
    if (job.payload.batchId !== undefined) {
      await processBatch(deps, job);
      return;
    }
    const uploadId = job.payload.uploadId;
    if (typeof uploadId !== 'string' || uploadId === '') {
      throw new PermanentJobError(`file.upload job ${job.id} has no uploadId.`);
    }
    const upload = await deps.metadata.getUploadById(uploadId);
    if (!upload) {
      deps.logger.warn({ uploadId }, 'file.upload: no such upload; nothing to do');
      return;
    }
    if (upload.status !== 'processing') {
      // ready/failed/cancelled/expired: a redelivery of finished work. receiving: a stale job.
      deps.logger.debug({ uploadId, status: upload.status }, 'file.upload: not processing; acked');
      return;
    }
    const received = job.payload.receivedSha256;
    await processUpload(
      deps,
      upload,
      typeof received === 'string' && SHA256.test(received) ? received : null,
    );
  };
}

/** Uploads of one batch whose bytes are prepared at once (each a small file). */
const BATCH_CONCURRENCY = 8;

/**
 * A batch (`POST /uploads/batch`, payload `{ batchId, uploadIds }`): each upload's bytes
 * are checked, sniffed and moved into blob storage (a few at once), then every revision,
 * status and audit entry is written by one `commitUploads` — one commit for the batch.
 * The server checked each file's bytes against its declared sha256 as it staged them,
 * so that sha256 names the staged bytes. Redelivery: finished uploads are skipped, the
 * rest goes through the same idempotent steps.
 */
async function processBatch(deps: WorkerDeps, job: Job): Promise<void> {
  const { batchId, uploadIds } = job.payload;
  if (typeof batchId !== 'string' || !Array.isArray(uploadIds)) {
    throw new PermanentJobError(`file.upload job ${job.id} has a malformed batch.`);
  }
  const started = performance.now();
  const uploads = (await batchUploads(deps, batchId, uploadIds)).filter((u) => u.status === 'processing');
  const mediaTypes = isStringRecord(job.payload.mediaTypes) ? job.payload.mediaTypes : {};
  // The API held the batch's blobs as it stored them; held again (renewed) before they
  // are looked at, and released once their references are committed.
  const holder = batchHolder(batchId);
  const unneeded: string[] = [];
  let preparedAt = started;
  const { ready, outcomes } = await withBlobHold(
    deps,
    holder,
    uploads.flatMap((u) => (u.sha256 === null ? [] : [u.sha256])),
    async () => {
      const prepared = await mapPool(uploads, BATCH_CONCURRENCY, async (upload) => {
        const content = await batchContent(deps, upload, mediaTypes[upload.id], holder);
        return content ? { upload, content } : null;
      });
      const all = prepared.filter((p) => p !== null);
      // Videos one by one (their transcode job comes before `ready`); the rest in one commit.
      for (const { upload, content } of all.filter((p) => p.content.mediaType.startsWith('video/'))) {
        unneeded.push(...(await commitVideo(deps, upload, content)));
      }
      const rest = all.filter((p) => !p.content.mediaType.startsWith('video/'));
      preparedAt = performance.now();
      const committed = await deps.metadata.commitUploads(
        rest.map(({ upload, content }) => ({
          uploadId: upload.id,
          file: commitInput(upload, content),
          audit: uploadAudit(deps, upload, content),
        })),
      );
      return { ready: rest, outcomes: committed };
    },
  );
  const committedAt = performance.now();
  const owners = new Set<string>();
  for (const [i, outcome] of outcomes.entries()) {
    const { upload, content } = ready[i] as { upload: UploadSession; content: Prepared };
    owners.add(upload.ownerId);
    owners.add(upload.uploaderId);
    if (!outcome.ok) unneeded.push(content.sha256);
    else unneeded.push(...outcome.result.droppedBlobs);
  }
  for (const sha256 of unneeded) await deleteBlobIfUnreferenced(deps, sha256);
  await announceFeeds(deps, owners);
  await announceBatch(deps.cache, batchId);
  deps.logger.info(
    {
      batchId,
      files: uploads.length,
      committed: outcomes.filter((o) => o.ok).length,
      prepareMs: Math.round(preparedAt - started),
      commitMs: Math.round(committedAt - preparedAt),
    },
    'upload batch committed',
  );
}

/**
 * The job's uploads, in its order (missing ones left out): the batch in one query, its
 * uploader named by the first upload; an id that listing lacks is read on its own. One
 * query per file cost ~0.1 s of a 5,000-file sync's ~4 s of server CPU on the 2-core VM.
 */
async function batchUploads(
  deps: WorkerDeps,
  batchId: string,
  uploadIds: unknown[],
): Promise<UploadSession[]> {
  const ids = uploadIds.filter((id): id is string => typeof id === 'string');
  const first = ids[0] === undefined ? null : await deps.metadata.getUploadById(ids[0]);
  const listed = first ? await deps.metadata.listBatchUploads(first.uploaderId, batchId) : [];
  const byId = new Map(listed.map((u) => [u.id, u]));
  const out: UploadSession[] = [];
  for (const id of ids) {
    const upload = byId.get(id) ?? (await deps.metadata.getUploadById(id));
    if (upload) out.push(upload);
  }
  return out;
}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * A batch file's bytes: the API stored them content-addressed under the declared sha256
 * it had checked (and sniffed the type from memory). The blob must be there with the
 * upload's length; otherwise the general path (staging, hashing) decides.
 */
async function batchContent(
  deps: WorkerDeps,
  upload: UploadSession,
  mediaType: string | undefined,
  holder: string,
): Promise<Prepared | null> {
  if (upload.sha256 !== null && mediaType !== undefined) {
    const blob = await deps.blobs.stat(upload.sha256);
    if (blob?.size === upload.length) return { sha256: upload.sha256, size: blob.size, mediaType };
  }
  return prepareContent(deps, upload, upload.sha256, holder);
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' && value !== null && Object.values(value).every((v) => typeof v === 'string')
  );
}

interface Prepared {
  sha256: string;
  size: number;
  mediaType: string;
}

async function processUpload(
  deps: WorkerDeps,
  upload: UploadSession,
  receivedSha256: string | null,
): Promise<void> {
  const log = deps.logger.child({ uploadId: upload.id });
  // Held from before the bytes move into content-addressed storage to the commit; blobs
  // this upload leaves unreferenced are deleted only after the release.
  const holder = uploadHolder(upload.id);
  const unneeded: string[] = [];
  try {
    const content = await prepareContent(deps, upload, receivedSha256, holder);
    if (!content) return;
    if (content.mediaType.startsWith('video/')) {
      unneeded.push(...(await commitVideo(deps, upload, content)));
      return;
    }
    // Nothing follows the commit but notifications: revision, audit entry and `ready` in
    // one transaction (one fsync instead of three).
    const [outcome] = await deps.metadata.commitUploads([
      { uploadId: upload.id, file: commitInput(upload, content), audit: uploadAudit(deps, upload, content) },
    ]);
    if (!outcome) throw new Error('commitUploads returned no outcome');
    if (!outcome.ok) {
      // The client learns it from GET /uploads/:id; nothing was overwritten.
      unneeded.push(content.sha256);
      await announceUpload(deps.cache, upload.id, 'failed');
      log.info({ error: outcome.code }, 'upload failed');
      return;
    }
    const { result } = outcome;
    unneeded.push(...result.droppedBlobs);
    await announceFeeds(deps, [upload.ownerId, upload.uploaderId]);
    await announceUpload(deps.cache, upload.id, 'ready');
    log.info(
      {
        fileId: result.node.id,
        revision: result.revision.revision,
        size: content.size,
        mediaType: content.mediaType,
        duplicate: result.duplicate,
      },
      'upload committed',
    );
  } finally {
    await releaseBlobs(deps, holder);
    for (const sha256 of unneeded) await deleteBlobIfUnreferenced(deps, sha256);
  }
}

/**
 * A video: the transcode job must be queued before the upload is marked ready, so a
 * crash in between repeats the (idempotent) steps after the commit. Returns the blobs it
 * left unreferenced, for the caller to delete once it released its holds.
 */
async function commitVideo(deps: WorkerDeps, upload: UploadSession, content: Prepared): Promise<string[]> {
  let result;
  try {
    result = await deps.metadata.commitFile(commitInput(upload, content));
  } catch (err) {
    if (err instanceof AppError && FINAL_COMMIT_ERRORS.has(err.code)) {
      await fail(deps, upload, err.code, { message: err.message });
      return [content.sha256];
    }
    throw err;
  }
  await announceFeeds(deps, [upload.ownerId, upload.uploaderId]);
  const audit = uploadAudit(deps, upload, content);
  await deps.metadata.appendAudit({
    ...audit,
    details: { ...audit.details, fileId: result.node.id, revision: result.revision.revision },
  });
  await queueTranscode(deps, upload, result.node.id, content);
  await deps.metadata.setUploadStatus(upload.id, 'ready', {
    fileId: result.node.id,
    revision: result.revision.revision,
    error: null,
  });
  await announceUpload(deps.cache, upload.id, 'ready');
  deps.logger.info(
    { uploadId: upload.id, fileId: result.node.id, revision: result.revision.revision, size: content.size },
    'video upload committed',
  );
  return result.droppedBlobs;
}

/**
 * Everything before the commit: find the bytes, check size and declared sha256 (a
 * mismatch fails the upload: returns null), sniff the type and move the bytes into
 * content-addressed storage. Idempotent.
 */
async function prepareContent(
  deps: WorkerDeps,
  upload: UploadSession,
  receivedSha256: string | null,
  holder: string,
): Promise<Prepared | null> {
  let content = await locateContent(deps, upload, receivedSha256);
  if (content.kind !== 'missing') {
    // Held before the bytes move in (or are relied on where they are) and until the
    // caller commits; a blob found in place is looked at again under the hold.
    await holdBlobs(deps, holder, [content.sha256]);
    if (content.kind === 'committed' && (await deps.blobs.stat(content.sha256)) === null)
      content = { kind: 'missing' };
  }
  if (content.kind === 'missing') {
    await fail(deps, upload, 'STAGING_MISSING', {});
    return null;
  }
  const { sha256, size } = content;
  if (size !== upload.length) {
    await fail(deps, upload, 'SIZE_MISMATCH', { expected: upload.length, received: size });
    return null;
  }
  if (upload.sha256 !== null && upload.sha256 !== sha256) {
    // Nothing became visible; the bytes are not what the client promised.
    await fail(deps, upload, 'CHECKSUM_MISMATCH', { declared: upload.sha256, computed: sha256 });
    return null;
  }
  if (content.kind === 'staged' && upload.sha256 !== sha256 && receivedSha256 !== sha256) {
    // Recorded before the bytes move, so a redelivery after the move can still find them
    // (a declared sha256, or the one the job carries, already names them: no extra commit).
    await deps.metadata.setUploadStatus(upload.id, 'processing', { sha256 });
  }
  const mediaType = await sniffMediaType(deps, upload, content.kind === 'staged', sha256, size);
  if (content.kind === 'staged') await deps.blobs.commitStaging(upload.id, sha256);
  return { sha256, size, mediaType };
}

function commitInput(upload: UploadSession, content: Prepared): CommitFileInput {
  return {
    ownerId: upload.ownerId,
    parentId: upload.parentId,
    name: upload.name,
    sha256: content.sha256,
    size: content.size,
    mtime: upload.mtime,
    mediaType: content.mediaType,
    sourceId: upload.id,
    baseRevision: upload.baseRevision ?? undefined,
  };
}

/** The uploader's `file.upload` entry (the store adds the file id and revision in batches). */
function uploadAudit(deps: WorkerDeps, upload: UploadSession, content: Prepared): NewAuditEntry {
  return {
    userId: upload.uploaderId,
    action: 'file.upload',
    ip: null,
    userAgent: null,
    details: {
      uploadId: upload.id,
      ownerId: upload.ownerId,
      size: content.size,
      sha256: content.sha256,
      mediaType: content.mediaType,
    },
    createdAt: deps.clock.now(),
  };
}

async function queueTranscode(
  deps: WorkerDeps,
  upload: UploadSession,
  fileId: string,
  content: Prepared,
): Promise<void> {
  if (!content.mediaType.startsWith('video/')) return;
  await deps.queue.publish(transcodeJob({ ownerId: upload.ownerId, fileId, sha256: content.sha256 }));
}

type Content = { kind: 'staged' | 'committed'; sha256: string; size: number } | { kind: 'missing' };

/**
 * The bytes are in staging (hash them — unless the server hashed every byte as it wrote
 * them in one request: `receivedSha256`), or — after a delivery that crashed past
 * `commitStaging` — already in a blob named by the recorded sha256.
 */
async function locateContent(
  deps: WorkerDeps,
  upload: UploadSession,
  receivedSha256: string | null,
): Promise<Content> {
  const staged = await deps.blobs.stagingSize(upload.id);
  if (staged !== null) {
    if (receivedSha256 !== null && staged === upload.length) {
      return { kind: 'staged', sha256: receivedSha256, size: staged };
    }
    const { sha256, size } = await deps.blobs.hashStaging(upload.id);
    return { kind: 'staged', sha256, size };
  }
  // Staging is removed only after a verified move (or by expiry/termination, which never
  // touch a processing upload), so the recorded (or received) sha256 names the moved bytes.
  const named = upload.sha256 ?? receivedSha256;
  if (named !== null) {
    const blob = await deps.blobs.stat(named);
    if (blob) return { kind: 'committed', sha256: named, size: blob.size };
  }
  // A delivery that crashed after commitFile: the revision it made names the content.
  const node = await deps.metadata.findChild(upload.ownerId, upload.parentId, upload.name);
  if (node?.kind === 'file') {
    const revisions = await deps.metadata.listRevisions(upload.ownerId, node.id);
    const mine = revisions.find((r) => r.sourceId === upload.id);
    if (mine && (await deps.blobs.stat(mine.sha256)))
      return { kind: 'committed', sha256: mine.sha256, size: mine.size };
  }
  return { kind: 'missing' };
}

/** The media type by content (file-type), else by extension, else application/octet-stream. */
async function sniffMediaType(
  deps: WorkerDeps,
  upload: UploadSession,
  staged: boolean,
  sha256: string,
  size: number,
): Promise<string> {
  if (size === 0) return mediaTypeFromName(upload.name);
  const range = { start: 0, end: Math.min(size, SNIFF_BYTES) - 1 };
  const stream = staged ? deps.blobs.readStaging(upload.id, range) : await deps.blobs.read(sha256, range);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
  } catch (err) {
    deps.logger.debug({ err, uploadId: upload.id }, 'file.upload: type sniffing failed');
    return mediaTypeFromName(upload.name);
  } finally {
    stream.destroy();
  }
  return mediaTypeOf(Buffer.concat(chunks), upload.name);
}

async function fail(
  deps: WorkerDeps,
  upload: UploadSession,
  code: string,
  details: Record<string, unknown>,
): Promise<void> {
  // The bytes go and the audit entry is written before the status turns `failed`: whoever
  // waits for that status (a client's long-poll) then finds both done. A crash before the
  // status repeats these steps on redelivery (deleting is idempotent; the audit entry may
  // then appear twice, which beats missing).
  await deps.blobs.deleteStaging(upload.id);
  await deps.metadata.appendAudit({
    userId: upload.uploaderId,
    action: 'file.upload_failed',
    ip: null,
    userAgent: null,
    details: { uploadId: upload.id, ownerId: upload.ownerId, error: code, ...details },
    createdAt: deps.clock.now(),
  });
  await deps.metadata.setUploadStatus(upload.id, 'failed', { error: code });
  await announceUpload(deps.cache, upload.id, 'failed');
  deps.logger.info({ uploadId: upload.id, error: code }, 'upload failed');
}

/**
 * Wakes the change-feed long-polls of these users (owner and uploader: an editor's upload
 * into a shared folder was copied into the editor's feed too).
 */
async function announceFeeds(deps: WorkerDeps, users: Iterable<string>): Promise<void> {
  for (const user of new Set(users)) {
    await announceChange(deps.cache, user, await deps.metadata.latestChangeSeq(user));
  }
}
