/**
 * `POST /api/v1/uploads/batch`: many small files in one request (see
 * `contract/schemas/uploads.ts` for the body). A sync of thousands of small files is
 * bound by per-file round trips and commits, not bytes; a batch costs one request,
 * two metadata commits and one `file.upload` job for up to 1,000 files, and the worker
 * commits all their revisions in one transaction.
 *
 * Steps: read and validate the manifest → check every file as tus creation would (names,
 * limits, folder in the way, stale base revision, quota — a refused file fails alone)
 * → create the folders and all upload sessions (one commit) → read each file's bytes,
 * check its sha256, sniff its type and store it content-addressed (fsynced, a few files
 * written at once) → finish the
 * uploads and write the job (one commit) → answer 202 with every file's status.
 *
 * Nothing becomes visible before the worker commits. A client that goes away mid-body
 * leaves no upload behind: the batch's uploads are cancelled and their staging removed.
 */
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { AppError, ConflictError } from '../../contract/errors.js';
import {
  BATCH_CONTENT_TYPE,
  BATCH_MAX_MANIFEST_BYTES,
  UPLOAD_TTL_MS,
  uploadBatchManifestSchema,
  type UploadBatchFile,
  type UploadBatchItem,
  type UploadBatchResponse,
} from '../../contract/schemas/uploads.js';
import { batchHolder, holdBlobs, releaseBlobs } from '../../core/blob-holds.js';
import { mediaTypeOf } from '../../core/domain/media-type.js';
import { nameKey, splitPath } from '../../core/domain/names.js';
import { PRIORITY } from '../../core/ports/job-queue.js';
import type { NewUploadSession, UploadSession, User } from '../../core/ports/metadata-store.js';
import { ensureFolders } from '../../core/tree.js';
import type { BodyMemory } from '../body-memory.js';
import type { AppDeps } from '../deps.js';
import { kickOutboxRelay } from '../outbox-relay.js';
import { resolveUploadPlace } from '../shares/mounts.js';
import { checkTarget, findExisting } from './create-upload.js';
import { newUploadId } from './session.js';

type Deps = Pick<AppDeps, 'config' | 'metadata' | 'blobs' | 'cache' | 'clock' | 'logger' | 'bodyMemory'>;

/** Files stored together (`BlobStore.putMany`), and how many such groups are stored at once. */
const GROUP_FILES = 256;
const GROUP_BYTES = 4 * 1024 * 1024;
const GROUPS_IN_FLIGHT = 2;

/** What happened to one file of the manifest while the request was read. */
interface Slot {
  item: UploadBatchItem;
  session: NewUploadSession | null;
  error: { code: string; message: string } | null;
}

/** `GET /uploads/batch/:id` and the POST answer: one file as the client sees it. */
export function batchFileOf(path: string, session: UploadSession | null, slot?: Slot): UploadBatchFile {
  if (!session) {
    return {
      path,
      uploadId: null,
      status: 'failed',
      fileId: null,
      revision: null,
      error: slot?.error?.code ?? 'FAILED',
      message: slot?.error?.message ?? null,
    };
  }
  return {
    path,
    uploadId: session.id,
    status: session.status,
    fileId: session.fileId,
    revision: session.revision,
    error: session.error,
    message: null,
  };
}

/** True once no file of the batch can change any more (uploads or their answers). */
export function batchDone(files: ReadonlyArray<{ status: string }>): boolean {
  return files.every((f) => f.status !== 'receiving' && f.status !== 'processing');
}

export async function receiveBatch(deps: Deps, req: Request, user: User): Promise<UploadBatchResponse> {
  if (req.get('content-type')?.split(';')[0]?.trim().toLowerCase() !== BATCH_CONTENT_TYPE) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `A batch is sent as ${BATCH_CONTENT_TYPE}.`);
  }
  const body = new BodyReader(req, deps.bodyMemory);
  const manifest = await readManifest(body);
  const batchId = newUploadId();
  const t0 = performance.now();
  const slots = await planBatch(deps, user, batchId, manifest.files);
  const t1 = performance.now();
  const sessions = slots.flatMap((s) => (s.session ? [s.session] : []));
  const created = sessions.length > 0 ? await deps.metadata.createUploads(sessions) : [];
  const t2 = performance.now();

  const staged: string[] = [];
  const mediaTypes: Record<string, string> = {};
  const writes = new WritePool(GROUPS_IN_FLIGHT);
  // Checked bytes go straight into content-addressed storage, a group at a time (the
  // store shares the folders' fsyncs within a group): staging them and moving them
  // later would cost twice the fsyncs.
  let group: Array<{ session: NewUploadSession; bytes: Buffer; sha256: string }> = [];
  let groupBytes = 0;
  const flush = async (): Promise<void> => {
    if (group.length === 0) return;
    const members = group;
    group = [];
    groupBytes = 0;
    await writes.add(async () => {
      // Held until the worker has committed them (it releases the batch's holds), so no
      // deletion of the same content elsewhere can take these bytes away meanwhile.
      await holdBlobs(
        deps,
        batchHolder(batchId),
        members.map((m) => m.sha256),
      );
      const stored = await deps.blobs.putMany(members.map((m) => m.bytes));
      for (const [i, { session, bytes }] of members.entries()) {
        if (stored[i]?.sha256 !== session.sha256)
          throw new Error(`blob stored for ${session.sha256} differs`);
        mediaTypes[session.id] = await mediaTypeOf(bytes, session.name);
        staged.push(session.id);
      }
    });
  };
  try {
    for (const slot of slots) {
      const bytes = await body.read(slot.item.size);
      if (bytes === null) throw new AppError('BAD_REQUEST', 'The body ended before the last file.');
      if (!slot.session) continue;
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== slot.item.sha256) {
        slot.error = {
          code: 'CHECKSUM_MISMATCH',
          message: `The bytes have sha256 ${sha256}, not the declared ${slot.item.sha256}.`,
        };
        continue;
      }
      group.push({ session: slot.session, bytes, sha256 });
      groupBytes += bytes.byteLength;
      if (group.length >= GROUP_FILES || groupBytes >= GROUP_BYTES) await flush();
    }
    await flush();
    await writes.drain();
    if (!(await body.atEnd()))
      throw new AppError('BAD_REQUEST', 'The body is longer than the manifest says.');
  } catch (err) {
    await writes.settle();
    await abandon(deps, created);
    await releaseBlobs(deps, batchHolder(batchId));
    throw err;
  }

  const t3 = performance.now();
  // Files whose bytes did not match: failed now, their sessions never take bytes.
  for (const slot of slots) {
    if (slot.session && slot.error) {
      await deps.metadata.setUploadStatus(slot.session.id, 'failed', { error: slot.error.code });
    }
  }
  const ready = new Set(staged);
  const ids = slots.flatMap((s) => (s.session && !s.error && ready.has(s.session.id) ? [s.session.id] : []));
  let moved: UploadSession[] = [];
  if (ids.length > 0) {
    moved = await deps.metadata.finishUploads(ids, {
      queue: 'file.upload',
      payload: { batchId, uploadIds: ids, mediaTypes },
      idempotencyKey: `batch:${batchId}`,
      priority: manifest.priority === 'bulk' ? PRIORITY.bulk : PRIORITY.normal,
    });
    await kickOutboxRelay(deps.cache);
  }
  const byId = new Map([...created, ...moved].map((s) => [s.id, s]));
  const files = slots.map((slot) => {
    const id = slot.session?.id;
    const session = id === undefined ? undefined : byId.get(id);
    if (slot.error || !session) return batchFileOf(slot.item.path, null, slot);
    return batchFileOf(slot.item.path, session);
  });
  deps.logger.info(
    {
      batchId,
      files: slots.length,
      accepted: ids.length,
      bytes: manifest.files.reduce((n, f) => n + f.size, 0),
      planMs: Math.round(t1 - t0),
      createMs: Math.round(t2 - t1),
      storeMs: Math.round(t3 - t2),
      finishMs: Math.round(performance.now() - t3),
    },
    'upload batch received',
  );
  return { batchId, done: batchDone(files), files };
}

async function readManifest(body: BodyReader): Promise<ReturnType<typeof uploadBatchManifestSchema.parse>> {
  const head = await body.read(4);
  if (head === null) throw new AppError('BAD_REQUEST', 'The body has no manifest.');
  const length = head.readUInt32BE(0);
  if (length === 0 || length > BATCH_MAX_MANIFEST_BYTES) {
    throw new AppError('BAD_REQUEST', `The manifest must be 1 to ${BATCH_MAX_MANIFEST_BYTES} bytes.`);
  }
  const raw = await body.read(length);
  if (raw === null) throw new AppError('BAD_REQUEST', 'The body ended inside the manifest.');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch {
    throw new AppError('BAD_REQUEST', 'The manifest is not UTF-8 JSON.');
  }
  return uploadBatchManifestSchema.parse(json);
}

/**
 * Checks every file as tus creation does and prepares its upload session; a file that
 * cannot be uploaded gets its error instead. Folders are created only for accepted
 * files, after all checks. Quota counts the whole batch, per owner.
 */
async function planBatch(
  deps: Deps,
  user: User,
  batchId: string,
  items: readonly UploadBatchItem[],
): Promise<Slot[]> {
  const now = deps.clock.now();
  const folderIds = new Map<string, string | null>();
  const owners = new Map<string, { used: number; quota: number }>();
  const seen = new Set<string>();
  const slots: Slot[] = [];
  for (const [index, item] of items.entries()) {
    const slot: Slot = { item, session: null, error: null };
    slots.push(slot);
    try {
      if (item.size > deps.config.maxUploadSize) {
        throw new AppError(
          'PAYLOAD_TOO_LARGE',
          `The file exceeds the limit of ${deps.config.maxUploadSize} bytes.`,
        );
      }
      const segments = splitPath(item.path);
      const name = segments.pop();
      if (name === undefined)
        throw new AppError('INVALID_PATH', 'The path names the root folder, not a file.');
      const place = await resolveUploadPlace(deps, user.id, segments, name);
      const folderKey = `${place.ownerId}\0${place.baseId ?? ''}\0${place.folders.map(nameKey).join('/')}`;
      const targetKey = `${folderKey}\0${nameKey(place.name)}`;
      if (seen.has(targetKey)) throw new ConflictError('CONFLICT', 'The batch names this path twice.');
      seen.add(targetKey);

      // Folders already resolved for an earlier file of the batch are not walked again.
      const knownParent = folderIds.get(folderKey);
      const existing =
        knownParent !== undefined
          ? await deps.metadata.findChild(place.ownerId, knownParent, place.name)
          : await findExisting(deps, place);
      checkTarget(existing, place.name, item.baseRevision ?? null);
      let usage = owners.get(place.ownerId);
      if (!usage) {
        const owner = place.ownerId === user.id ? user : await deps.metadata.getUserById(place.ownerId);
        if (!owner) throw new AppError('NOT_FOUND', 'Not found.');
        usage = { used: owner.storageUsed, quota: owner.storageQuota };
        owners.set(place.ownerId, usage);
      }
      const grows = item.size - (existing?.size ?? 0);
      if (usage.used + grows > usage.quota) {
        throw new AppError(
          'QUOTA_EXCEEDED',
          place.ownerId === user.id ? undefined : "The owner's storage quota would be exceeded.",
        );
      }
      usage.used += Math.max(0, grows);

      let parentId = folderIds.get(folderKey);
      if (parentId === undefined) {
        parentId = await ensureFolders(deps.metadata, place.ownerId, place.folders, place.baseId);
        folderIds.set(folderKey, parentId);
      }
      slot.session = {
        id: newUploadId(),
        ownerId: place.ownerId,
        uploaderId: user.id,
        parentId,
        name: place.name,
        length: item.size,
        sha256: item.sha256,
        mtime: item.mtime ?? null,
        baseRevision: item.baseRevision ?? null,
        metadata: {},
        expiresAt: new Date(now.getTime() + UPLOAD_TTL_MS),
        batchId,
        batchIndex: index,
      };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      slot.error = { code: err.code, message: err.message };
    }
  }
  return slots;
}

/**
 * The request failed after the sessions were created: none of them may linger. Blobs
 * already stored stay (content-addressed: another upload may be about to use the same
 * content); nothing references them.
 */
async function abandon(deps: Deps, created: readonly UploadSession[]): Promise<void> {
  for (const session of created) {
    try {
      await deps.metadata.setUploadStatus(session.id, 'cancelled');
    } catch (err) {
      // The upload expiry removes what is left.
      deps.logger.warn({ err, uploadId: session.id }, 'could not cancel an upload of a failed batch');
    }
  }
}

/** At most `limit` tasks at once; `add` waits for a free place, the first failure is rethrown. */
class WritePool {
  private readonly running = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    if (this.failure !== null) throw this.failure;
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure !== null) throw this.failure;
    const p: Promise<void> = task()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Waits for the running tasks, ignoring their outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.running);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure !== null) throw this.failure;
  }
}

/** Exact-length reads from a request body, with backpressure (one chunk at a time). */
class BodyReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private ended = false;

  constructor(
    req: Request,
    /** Told of every piece of the body pulled (see server/body-memory.ts). */
    private readonly memory?: Pick<BodyMemory, 'received'>,
  ) {
    this.iterator = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** The next piece of the body, or null at its end. */
  private async pull(): Promise<Buffer | null> {
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return null;
    }
    this.memory?.received(next.value.byteLength);
    this.buffered.push(next.value);
    this.bufferedBytes += next.value.byteLength;
    return next.value;
  }

  /** The next `n` bytes, or null when the body ends first. */
  async read(n: number): Promise<Buffer | null> {
    while (this.bufferedBytes < n && !this.ended) await this.pull();
    if (this.bufferedBytes < n) return null;
    const all = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered);
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.buffered = rest.byteLength > 0 ? [rest] : [];
    this.bufferedBytes = rest.byteLength;
    return out;
  }

  /** True when nothing follows what was read. */
  async atEnd(): Promise<boolean> {
    if (this.bufferedBytes > 0) return false;
    if (this.ended) return true;
    const next = await this.pull();
    if (next === null) return true;
    return next.byteLength === 0 ? this.atEnd() : false;
  }
}
