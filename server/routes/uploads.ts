/**
 * Resumable uploads, tus 1.0 (core, creation, creation-with-upload, termination,
 * expiration), mounted at `/api/v1/uploads`. Bytes land in the BlobStore's staging
 * area; the last byte records a `file.upload` job (through the outbox) and the worker
 * turns the upload into a file revision. See docs/api-uploads.md.
 */
import { Router, type Request, type Response } from 'express';
import { AppError } from '../../contract/errors.js';
import { UPLOAD_STATUS_HEADER, knownBodySchema, type UploadInfo } from '../../contract/schemas/uploads.js';
import type { UploadSession } from '../../core/ports/metadata-store.js';
import { batchChannel, uploadChannel } from '../../core/changes.js';
import { pathOf } from '../../core/tree.js';
import { audit } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { waitOnChannel } from '../long-poll.js';
import { authenticate, authOf, requireScope } from '../middleware/authenticate.js';
import { requireUploadAccess, sharedFolderPath } from '../shares/mounts.js';
import { batchDone, batchFileOf, receiveBatch } from '../uploads/batch.js';
import { createUpload } from '../uploads/create-upload.js';
import { finishIfComplete, receiveBytes, settleOffset } from '../uploads/receive-bytes.js';
import {
  UPLOAD_ID,
  assertNotGone,
  assertReceiving,
  isExpired,
  progressKey,
  setProgressHeaders,
} from '../uploads/session.js';
import {
  hasBody,
  httpDate,
  requireOffsetOctetStream,
  tusOptions,
  tusProtocol,
  uploadLength,
  uploadOffset,
} from '../uploads/tus-headers.js';
import { formatUploadMetadata, parseUploadMetadata, uploadTargetOf } from '../uploads/upload-metadata.js';
import { lockUpload } from '../uploads/upload-lock.js';

export function uploadRoutes(deps: AppDeps): Router {
  const router = Router();

  // Not tus: which of these contents does the caller already store? Lets a client send
  // small new files in one request (creation-with-upload) and known ones with no bytes.
  router.post('/known', authenticate(deps), requireScope('write'), async (req, res) => {
    const { sha256 } = knownBodySchema.parse(req.body);
    const owner = authOf(req).user.id;
    const known: string[] = [];
    for (const hash of new Set(sha256)) {
      if (await deps.metadata.findFileBySha256(owner, hash)) known.push(hash);
    }
    res.json({ known });
  });

  // Not tus either: many small files in one request (server/uploads/batch.ts).
  router.post('/batch', authenticate(deps), requireScope('write'), async (req, res) => {
    const answer = await receiveBatch(deps, req, authOf(req).user);
    res.status(202).json(answer);
  });

  // `?wait=N` (seconds, ≤ 30): answers once every file of the batch is final, or after N s.
  // Lists the files that got an upload; those refused at once were in the POST's answer.
  router.get('/batch/:id', authenticate(deps), async (req, res) => {
    const batchId = req.params.id;
    const uploaderId = authOf(req).user.id;
    if (typeof batchId !== 'string' || !UPLOAD_ID.test(batchId))
      throw new AppError('NOT_FOUND', 'No such batch.');
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    // The wait re-checks a count (one row), not the batch's 500 uploads; they are listed
    // once at the end. An unknown batch counts nothing to wait for: the first check ends it.
    const pending = await waitOnChannel(
      deps.cache,
      batchChannel(batchId),
      () => deps.metadata.countBatchPending(uploaderId, batchId),
      (left) => left === null || left === 0,
      { waitMs: waitSeconds(req.query.wait) * 1000, fallbackMs: 500, signal: controller.signal },
    );
    if (pending === null) throw new AppError('NOT_FOUND', 'No such batch.');
    // Statuses only move forward: the listing is at least as final as the last count.
    const sessions = await deps.metadata.listBatchUploads(uploaderId, batchId);
    // A batch's files share a few folders: each folder's path is looked up once.
    const folders = new Map<string | null, Promise<string>>();
    const files = await Promise.all(
      sessions.map(async (s) => {
        let folder = folders.get(s.parentId);
        if (folder === undefined) {
          folder = folderPathOf(deps, s);
          folders.set(s.parentId, folder);
        }
        return batchFileOf(`${await folder}/${s.name}`, s);
      }),
    );
    res.setHeader('Cache-Control', 'no-store');
    res.json({ batchId, done: batchDone(files), files });
  });

  router.use(tusProtocol());
  router.options(['/', '/:id'], tusOptions(deps.config.maxUploadSize));
  router.use(authenticate(deps), requireScope('write'));

  /**
   * Looks up an upload the caller created (into their own tree or a folder shared with
   * them); anybody else's id — the target folder's owner's too — is exactly as unknown
   * as a made-up one.
   */
  const load = async (req: Request): Promise<UploadSession> => {
    const id = req.params.id;
    const session =
      typeof id === 'string' && UPLOAD_ID.test(id)
        ? await deps.metadata.getUpload(authOf(req).user.id, id)
        : null;
    if (!session) throw new AppError('NOT_FOUND', 'No such upload.');
    return session;
  };

  // Creation: "The Client MUST send a POST request against a known upload creation URL
  // to request a new upload resource. The request MUST include the Upload-Length header."
  router.post('/', async (req, res) => {
    const target = uploadTargetOf(parseUploadMetadata(req.get('upload-metadata')));
    const length = uploadLength(req);
    const withBody = hasBody(req);
    // creation-with-upload: "the Client MUST include the Content-Type:
    // application/offset+octet-stream header" when it sends bytes with the creation.
    if (withBody) requireOffsetOctetStream(req);
    const { session, deduplicated } = await createUpload(deps, req, authOf(req).user, length, target);
    res.setHeader('Location', `${req.baseUrl}/${session.id}`);
    if (deduplicated) {
      // The content is already stored: tus clients see Upload-Offset = Upload-Length and stop.
      res.setHeader(UPLOAD_STATUS_HEADER, 'ready');
      setProgressHeaders(res, session);
      res.status(201).end();
      return;
    }
    let current = session;
    if (withBody) {
      const { session: after, overflow } = await receiveBytes(deps, session, 0, req);
      current = after;
      if (overflow) throw overflowError(res, current);
      setProgressHeaders(res, current);
    } else if (length === 0) {
      // An empty file is complete at creation: an empty staging file stands for it.
      await deps.blobs.appendStaging(session.id, 0, noBytes(), 0);
      current = await finishIfComplete(deps, session);
      setProgressHeaders(res, current);
    } else {
      res.setHeader('Upload-Expires', httpDate(session.expiresAt));
    }
    res.status(201).end();
  });

  // "The Server MUST always include the Upload-Offset header in the response for a HEAD
  // request … The Server MUST prevent the client and/or proxies from caching the
  // response by adding the Cache-Control: no-store header to the response."
  router.head('/:id', async (req, res) => {
    const found = await load(req);
    res.setHeader('Cache-Control', 'no-store');
    assertNotGone(found, deps.clock.now());
    const session = await settleOffset(deps, found);
    setProgressHeaders(res, session);
    res.setHeader('Upload-Length', String(session.length));
    const metadata = formatUploadMetadata(session.metadata);
    if (metadata !== '') res.setHeader('Upload-Metadata', metadata);
    res.status(200).end();
  });

  router.patch('/:id', async (req, res) => {
    requireOffsetOctetStream(req);
    const offset = uploadOffset(req);
    const session = await load(req);
    assertReceiving(session, deps.clock.now());
    // An editor whose share was revoked (or turned read-only) meanwhile adds no more bytes.
    await requireUploadAccess(deps, session);
    const { session: after, overflow } = await receiveBytes(deps, session, offset, req);
    // "The Server MUST acknowledge successful PATCH requests with the 204 No Content
    // status. It MUST include the Upload-Offset header containing the new offset."
    if (overflow) throw overflowError(res, after);
    setProgressHeaders(res, after);
    res.status(204).end();
  });

  // Termination: "When receiving a DELETE request for an existing upload the Server
  // SHOULD free associated resources and MUST respond with the 204 No Content status".
  router.delete('/:id', async (req, res) => {
    const found = await load(req);
    const lock = await lockUpload(deps.cache, found.id);
    try {
      const session = (await deps.metadata.getUpload(found.uploaderId, found.id)) ?? found;
      if (session.status === 'cancelled') throw new AppError('NOT_FOUND', 'The upload was terminated.');
      if (session.status === 'processing' || session.status === 'ready') {
        throw new AppError('CONFLICT', `The upload is complete (status ${session.status}).`);
      }
      await deps.metadata.setUploadStatus(session.id, 'cancelled');
      await deps.blobs.deleteStaging(session.id);
      await deps.cache.del(progressKey(session.id)).catch(() => undefined);
      await audit(deps, req, 'file.upload_cancelled', {
        uploadId: session.id,
        ownerId: session.ownerId,
        offset: session.offset,
      });
    } finally {
      await lock.release();
    }
    res.status(204).end();
  });

  // `?wait=N` (seconds, ≤ 30): answer once the upload reached a final status (ready,
  // failed, …) or after N seconds, so clients need not poll while the worker runs.
  router.get('/:id', async (req, res) => {
    const first = await load(req);
    const waitMs = waitSeconds(req.query.wait) * 1000;
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    const session = await waitOnChannel(
      deps.cache,
      uploadChannel(first.id),
      async () => (await deps.metadata.getUpload(first.uploaderId, first.id)) ?? first,
      (s) => s.status !== 'processing' && s.status !== 'receiving',
      { waitMs, fallbackMs: 500, signal: controller.signal },
    );
    res.setHeader('Cache-Control', 'no-store');
    res.json(await uploadInfo(deps, session));
  });

  return router;
}

/**
 * "The Server MUST NOT accept more bytes than the Upload-Length": the allowed bytes were
 * kept, the rest is refused. The connection closes after the answer, so unread bytes
 * of the body cannot be taken for the next request.
 */
function overflowError(res: Response, session: UploadSession): AppError {
  res.setHeader('Connection', 'close');
  res.req.resume();
  return new AppError(
    'BAD_REQUEST',
    'The body is longer than the rest of the upload; the excess was refused.',
    {
      headers: { 'Upload-Offset': String(session.offset) },
    },
  );
}

function waitSeconds(raw: unknown): number {
  if (raw === undefined) return 0;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(n) || n < 0 || n > 30) {
    throw new AppError('VALIDATION_FAILED', 'wait must be a number of seconds from 0 to 30.');
  }
  return n;
}

/** An empty body: creates the staging file of an empty upload. */
async function* noBytes(): AsyncGenerator<Uint8Array> {}

/**
 * The path of an upload's folder as its uploader sees it (`''` for the root): a folder
 * shared with them is under `/Shared/<name>`.
 */
async function folderPathOf(deps: AppDeps, session: UploadSession): Promise<string> {
  if (session.parentId === null) return '';
  if (session.uploaderId !== session.ownerId) {
    return (await sharedFolderPath(deps, session.uploaderId, session.ownerId, session.parentId)) ?? '';
  }
  const parent = await deps.metadata.getNode(session.ownerId, session.parentId);
  return parent ? pathOf(deps.metadata, session.ownerId, parent) : '';
}

/** The upload as its uploader sees it: a path in a shared folder is under `/Shared/<name>`. */
async function uploadInfo(deps: AppDeps, session: UploadSession): Promise<UploadInfo> {
  const path = `${await folderPathOf(deps, session)}/${session.name}`;
  let receivedBytes = session.offset;
  if (session.status === 'receiving') {
    const live = Number(await deps.cache.get(progressKey(session.id)).catch(() => null));
    if (Number.isSafeInteger(live) && live > receivedBytes) receivedBytes = Math.min(live, session.length);
  }
  return {
    id: session.id,
    path,
    name: session.name,
    length: session.length,
    offset: session.offset,
    receivedBytes,
    status: isExpired(session, deps.clock.now()) ? 'expired' : session.status,
    fileId: session.fileId,
    error: session.error,
    createdAt: session.createdAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
  };
}
