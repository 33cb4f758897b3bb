/**
 * tus creation: checks the target (size limit, folder in the way, stale base revision,
 * quota), creates missing parent folders and the upload session, and — when the owner
 * already has a ready file with the declared sha256 — commits the new file at once, so
 * no byte has to travel.
 *
 * A target under `/Shared/<name>/…` (a folder shared with the caller as `editor`) goes
 * into the owner's tree: the owner's quota, the owner's content for deduplication, and
 * only folders inside the shared one are created. The session records both: `ownerId`
 * (whose tree) and `uploaderId` (the caller, who alone can see and resume it).
 */
import type { Request } from 'express';
import { AppError, ConflictError, NotFoundError } from '../../contract/errors.js';
import { UPLOAD_TTL_MS } from '../../contract/schemas/uploads.js';
import { deleteBlobIfUnreferenced, uploadHolder, withBlobHold } from '../../core/blob-holds.js';
import { announceChange } from '../../core/changes.js';
import { ensureFolders } from '../../core/tree.js';
import type { TreeNode, UploadSession, User } from '../../core/ports/metadata-store.js';
import { audit } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { findSharedNode, resolveUploadPlace, type UploadPlace } from '../shares/mounts.js';
import { newUploadId } from './session.js';
import type { UploadTarget } from './upload-metadata.js';

type Deps = Pick<AppDeps, 'config' | 'metadata' | 'blobs' | 'cache' | 'clock'>;

export interface CreatedUpload {
  session: UploadSession;
  /** True when the file was committed from an existing blob (the session is `ready`). */
  deduplicated: boolean;
}

/**
 * Throws `PAYLOAD_TOO_LARGE` (over the server's limit), `FORBIDDEN` (a folder shared
 * read-only), `NOT_FOUND` (under `/Shared/<name>` with no such share), `NAME_CONFLICT`
 * (a folder has the target's name), `CONFLICT` (a parent is a file), `REVISION_CONFLICT`
 * (stale base revision) or `QUOTA_EXCEEDED` (of the owner); nothing is created in those
 * cases.
 */
export async function createUpload(
  deps: Deps,
  req: Request,
  user: User,
  length: number,
  target: UploadTarget,
): Promise<CreatedUpload> {
  if (length > deps.config.maxUploadSize) {
    throw new AppError(
      'PAYLOAD_TOO_LARGE',
      `Upload-Length exceeds the limit of ${deps.config.maxUploadSize} bytes.`,
    );
  }
  const place = await resolveUploadPlace(deps, user.id, target.folders, target.name);
  const shared = place.ownerId !== user.id;
  const owner = shared ? await deps.metadata.getUserById(place.ownerId) : user;
  if (!owner) throw new NotFoundError('Not found.');

  const existing = await findExisting(deps, place);
  checkTarget(existing, target.name, target.baseRevision);
  const replaced = existing?.size ?? 0;
  if (owner.storageUsed + length - replaced > owner.storageQuota) {
    // Another user's usage is theirs to know: an editor learns only that it is full.
    throw shared
      ? new AppError('QUOTA_EXCEEDED', "The owner's storage quota would be exceeded.")
      : new AppError('QUOTA_EXCEEDED', undefined, {
          details: { storageUsed: owner.storageUsed, storageQuota: owner.storageQuota, length },
        });
  }

  const parentId = await ensureFolders(deps.metadata, place.ownerId, place.folders, place.baseId);
  const now = deps.clock.now();
  const session = await deps.metadata.createUpload({
    id: newUploadId(),
    ownerId: place.ownerId,
    uploaderId: user.id,
    parentId,
    name: target.name,
    length,
    sha256: target.sha256,
    mtime: target.mtime,
    baseRevision: target.baseRevision,
    metadata: target.raw,
    expiresAt: new Date(now.getTime() + UPLOAD_TTL_MS),
  });

  const committed = await commitKnownContent(deps, req, session);
  return committed ? { session: committed, deduplicated: true } : { session, deduplicated: false };
}

/**
 * Throws `NAME_CONFLICT` when a folder has the target's name and `REVISION_CONFLICT`
 * when the file is not at `baseRevision` (`null`: no check; `0`: must not exist).
 */
export function checkTarget(existing: TreeNode | null, name: string, baseRevision: number | null): void {
  if (existing?.kind === 'folder')
    throw new ConflictError('NAME_CONFLICT', `A folder named "${name}" exists.`);
  const current = existing?.revision ?? 0;
  if (baseRevision !== null && current !== baseRevision) {
    throw new ConflictError(
      'REVISION_CONFLICT',
      `The file is at revision ${current}; the upload is based on ${baseRevision}.`,
    );
  }
}

/** The live node at the target, walking existing folders without creating any. */
export async function findExisting(
  deps: Pick<AppDeps, 'metadata'>,
  place: Pick<UploadPlace, 'ownerId' | 'baseId' | 'folders' | 'name'>,
): Promise<TreeNode | null> {
  let parentId = place.baseId;
  for (const segment of place.folders) {
    const child: TreeNode | null = await deps.metadata.findChild(place.ownerId, parentId, segment);
    if (!child) return null; // created later; nothing can exist below it
    if (child.kind !== 'folder') throw new AppError('CONFLICT', `Not a folder: ${child.name}`);
    parentId = child.id;
  }
  return deps.metadata.findChild(place.ownerId, parentId, place.name);
}

/**
 * Deduplication: the owner (never the uploader, when they differ) already has a ready
 * file with this content and its blob is present, so the new revision points at the
 * same blob. Returns the `ready` session, or null when the bytes must be sent.
 * `commitFile` is keyed by the upload id, so a retry never makes a second revision.
 */
async function commitKnownContent(
  deps: Deps,
  req: Request,
  session: UploadSession,
): Promise<UploadSession | null> {
  const sha256 = session.sha256;
  if (sha256 === null) return null;
  const source = await deps.metadata.findFileBySha256(session.ownerId, sha256);
  if (!source || source.status !== 'ready') return null;
  // An editor may reuse only content they can already read (inside a folder shared with
  // them), so the answer tells nothing about the owner's other files.
  if (session.uploaderId !== session.ownerId) {
    const visible = await findSharedNode(deps, session.uploaderId, source.id);
    if (visible?.ownerId !== session.ownerId) return null;
  }
  // Held from the check that the blob is there to the commit of the new reference, so a
  // deletion of the source's last revision elsewhere cannot take the bytes in between.
  const result = await withBlobHold(deps, uploadHolder(session.id), [sha256], async () => {
    const blob = await deps.blobs.stat(sha256);
    if (!blob || blob.size !== session.length) return null;
    try {
      return await deps.metadata.commitFile({
        ownerId: session.ownerId,
        parentId: session.parentId,
        name: session.name,
        sha256,
        size: blob.size,
        mtime: session.mtime,
        mediaType: source.mediaType,
        sourceId: session.id,
        baseRevision: session.baseRevision ?? undefined,
      });
    } catch (err) {
      if (err instanceof AppError) {
        await deps.metadata.setUploadStatus(session.id, 'failed', { error: err.code });
      }
      throw err;
    }
  });
  if (!result) return null;
  await deps.metadata.advanceUpload(session.id, 0, session.length);
  for (const dropped of result.droppedBlobs) await deleteBlobIfUnreferenced(deps, dropped);
  const ready = await deps.metadata.setUploadStatus(session.id, 'ready', { fileId: result.node.id });
  await announceChange(deps.cache, session.ownerId, await deps.metadata.latestChangeSeq(session.ownerId));
  if (session.uploaderId !== session.ownerId) {
    // The store copied the change into the uploader's feed (a grantee of the folder).
    const seq = await deps.metadata.latestChangeSeq(session.uploaderId);
    await announceChange(deps.cache, session.uploaderId, seq);
  }
  // The entry is the uploader's (the caller's); `ownerId` says whose tree got the file.
  await audit(deps, req, 'file.upload', {
    uploadId: session.id,
    ownerId: session.ownerId,
    fileId: result.node.id,
    revision: result.revision.revision,
    size: result.revision.size,
    deduplicated: true,
  });
  return ready;
}
