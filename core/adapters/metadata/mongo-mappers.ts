/**
 * Mapping of MongoDB documents to port types, and the translation of driver errors to
 * the error table (`E11000` → `ConflictError`, network trouble → `UnavailableError`).
 */
import { ConflictError, UnavailableError } from '../../../contract/errors.js';
import type {
  ApiToken,
  AuditEntry,
  Change,
  FileRevision,
  OutboxEntry,
  RefreshSession,
  Share,
  TranscodeRecord,
  TreeNode,
  UploadSession,
  User,
} from '../../ports/metadata-store.js';
import type {
  ApiTokenDoc,
  AuditDoc,
  ChangeDoc,
  NodeDoc,
  OutboxDoc,
  RevisionDoc,
  SessionDoc,
  ShareDoc,
  TranscodeDoc,
  UploadDoc,
  UserDoc,
} from './mongo-models.js';

export const toUser = (d: UserDoc): User => ({
  id: d._id,
  email: d.email,
  name: d.name ?? null,
  passwordHash: d.passwordHash,
  tokenVersion: d.tokenVersion,
  storageUsed: d.storageUsed,
  storageQuota: d.storageQuota,
  createdAt: d.createdAt,
  updatedAt: d.updatedAt,
});

export const toSession = (d: SessionDoc): RefreshSession => ({
  id: d._id,
  userId: d.userId,
  familyId: d.familyId,
  tokenHash: d.tokenHash,
  createdAt: d.createdAt,
  expiresAt: d.expiresAt,
  rotatedAt: d.rotatedAt ?? null,
  revokedAt: d.revokedAt ?? null,
  ip: d.ip ?? null,
  userAgent: d.userAgent ?? null,
});

export const toApiToken = (d: ApiTokenDoc): ApiToken => ({
  id: d._id,
  userId: d.userId,
  name: d.name,
  prefix: d.prefix,
  tokenHash: d.tokenHash,
  scopes: [...d.scopes],
  createdAt: d.createdAt,
  expiresAt: d.expiresAt ?? null,
  lastUsedAt: d.lastUsedAt ?? null,
  revokedAt: d.revokedAt ?? null,
});

export const toAudit = (d: AuditDoc): AuditEntry => ({
  id: d._id,
  userId: d.userId ?? null,
  action: d.action,
  ip: d.ip ?? null,
  userAgent: d.userAgent ?? null,
  details: d.details ?? {},
  createdAt: d.createdAt,
});

export const toNode = (d: NodeDoc): TreeNode => ({
  id: d._id,
  ownerId: d.ownerId,
  parentId: d.parentId ?? null,
  name: d.name,
  kind: d.kind,
  size: d.size,
  sha256: d.sha256 ?? null,
  mediaType: d.mediaType ?? null,
  mtime: d.mtime ?? null,
  revision: d.revision,
  status: d.status,
  trashedAt: d.trashedAt ?? null,
  createdAt: d.createdAt,
  updatedAt: d.updatedAt,
});

export const toRevision = (d: RevisionDoc): FileRevision => ({
  fileId: d.fileId,
  revision: d.revision,
  sha256: d.sha256,
  size: d.size,
  mtime: d.mtime ?? null,
  mediaType: d.mediaType ?? null,
  sourceId: d.sourceId,
  createdAt: d.createdAt,
});

export const toChange = (d: ChangeDoc): Change => ({
  seq: d.seq,
  ownerId: d.ownerId,
  kind: d.kind,
  nodeId: d.nodeId ?? null,
  data: d.data ?? {},
  createdAt: d.createdAt,
});

export const toUpload = (d: UploadDoc): UploadSession => ({
  id: d._id,
  ownerId: d.ownerId,
  uploaderId: d.uploaderId ?? d.ownerId,
  parentId: d.parentId ?? null,
  name: d.name,
  length: d.length,
  offset: d.offset,
  sha256: d.sha256 ?? null,
  mtime: d.mtime ?? null,
  baseRevision: d.baseRevision ?? null,
  metadata: d.metadata ?? {},
  status: d.status,
  error: d.error ?? null,
  fileId: d.fileId ?? null,
  revision: d.revision ?? null,
  batchId: d.batchId ?? null,
  batchIndex: d.batchIndex ?? null,
  createdAt: d.createdAt,
  updatedAt: d.updatedAt,
  expiresAt: d.expiresAt,
});

export const toOutbox = (d: OutboxDoc): OutboxEntry => ({
  id: d._id,
  queue: d.queue,
  payload: d.payload ?? {},
  idempotencyKey: d.idempotencyKey,
  priority: d.priority,
  createdAt: d.createdAt,
});

export const toShare = (d: ShareDoc): Share => ({
  id: d._id,
  ownerId: d.ownerId,
  nodeId: d.nodeId,
  tokenHash: d.tokenHash ?? null,
  granteeId: d.granteeId ?? null,
  role: d.role,
  passwordHash: d.passwordHash ?? null,
  expiresAt: d.expiresAt ?? null,
  maxDownloads: d.maxDownloads ?? null,
  downloads: d.downloads,
  revokedAt: d.revokedAt ?? null,
  createdAt: d.createdAt,
});

function isDuplicateKey(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; writeErrors?: { code?: unknown }[] };
  return e.code === 11000 || e.code === 11001 || (e.writeErrors ?? []).some((w) => w.code === 11000);
}

function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /^Mongo(NetworkError|NetworkTimeoutError|ServerSelectionError|NotConnectedError|TopologyClosedError)$/.test(
    err.name,
  );
}

/**
 * Rethrows a duplicate key error (E11000) as `ConflictError(code)` and a lost server as
 * `UnavailableError`, keeping the driver error as `cause`; anything else unchanged.
 */
export function translateMongoError(
  err: unknown,
  code: 'CONFLICT' | 'NAME_CONFLICT' | 'EMAIL_TAKEN' = 'CONFLICT',
): never {
  if (isDuplicateKey(err)) throw new ConflictError(code, undefined, err);
  if (isUnavailable(err)) throw new UnavailableError('MongoDB is unavailable.', err);
  throw err;
}

export function toTranscode(d: TranscodeDoc): TranscodeRecord {
  return {
    sha256: d._id,
    status: d.status,
    fileId: d.fileId,
    posterSha256: d.posterSha256 ?? null,
    previewSha256: d.previewSha256 ?? null,
    reason: d.reason ?? null,
    updatedAt: d.updatedAt,
  };
}
