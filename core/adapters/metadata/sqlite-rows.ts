/**
 * Row shapes of the SQLite metadata tables and their mapping to port types, plus the
 * translation of SQLite errors to the error table.
 */
import { ConflictError, NotFoundError, UnavailableError } from '../../../contract/errors.js';
import type {
  ApiToken,
  AuditEntry,
  Change,
  ChangeKind,
  FileRevision,
  FileStatus,
  NodeKind,
  OutboxEntry,
  RefreshSession,
  Share,
  TokenScope,
  TreeNode,
  UploadSession,
  UploadStatus,
  User,
} from '../../ports/metadata-store.js';

export interface UserRow {
  id: string;
  email: string;
  name: string | null;
  password_hash: string;
  token_version: number;
  storage_used: number;
  storage_quota: number;
  change_seq: number;
  created_at: number;
  updated_at: number;
}

export interface SessionRow {
  id: string;
  user_id: string;
  family_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
  ip: string | null;
  user_agent: string | null;
}

export interface ApiTokenRow {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  token_hash: string;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AuditRow {
  pk: number;
  id: string;
  user_id: string | null;
  action: string;
  ip: string | null;
  user_agent: string | null;
  details: string;
  created_at: number;
}

export interface NodeRow {
  id: string;
  owner_id: string;
  parent_id: string | null;
  name: string;
  name_key: string;
  kind: NodeKind;
  size: number;
  sha256: string | null;
  media_type: string | null;
  mtime: number | null;
  revision: number;
  status: FileStatus;
  trashed_at: number | null;
  trash_root: string | null;
  created_at: number;
  updated_at: number;
}

export interface RevisionRow {
  file_id: string;
  revision: number;
  sha256: string;
  size: number;
  mtime: number | null;
  media_type: string | null;
  source_id: string;
  created_at: number;
}

export interface ChangeRow {
  owner_id: string;
  seq: number;
  kind: ChangeKind;
  node_id: string | null;
  data: string;
  created_at: number;
}

export interface UploadRow {
  id: string;
  owner_id: string;
  /** Null only in rows written before the column existed (the owner uploaded those). */
  uploader_id: string | null;
  parent_id: string | null;
  name: string;
  length: number;
  offset: number;
  sha256: string | null;
  mtime: number | null;
  base_revision: number | null;
  metadata: string;
  status: UploadStatus;
  error: string | null;
  file_id: string | null;
  /** Set with `file_id` (absent before the column existed). */
  revision?: number | null;
  /** Null for tus uploads (and rows written before the columns existed). */
  batch_id?: string | null;
  batch_index?: number | null;
  created_at: number;
  updated_at: number;
  expires_at: number;
}

export interface OutboxRow {
  pk: number;
  id: string;
  queue: string;
  payload: string;
  idempotency_key: string;
  priority: number;
  created_at: number;
}

export interface ShareRow {
  id: string;
  owner_id: string;
  node_id: string;
  token_hash: string | null;
  grantee_id: string | null;
  role: 'viewer' | 'editor';
  password_hash: string | null;
  expires_at: number | null;
  max_downloads: number | null;
  downloads: number;
  revoked_at: number | null;
  created_at: number;
}

const date = (ms: number): Date => new Date(ms);
const maybeDate = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));
export const msOrNull = (d: Date | null | undefined): number | null => (d ? d.getTime() : null);

export function toUser(r: UserRow): User {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    passwordHash: r.password_hash,
    tokenVersion: r.token_version,
    storageUsed: r.storage_used,
    storageQuota: r.storage_quota,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

export function toSession(r: SessionRow): RefreshSession {
  return {
    id: r.id,
    userId: r.user_id,
    familyId: r.family_id,
    tokenHash: r.token_hash,
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    rotatedAt: maybeDate(r.rotated_at),
    revokedAt: maybeDate(r.revoked_at),
    ip: r.ip,
    userAgent: r.user_agent,
  };
}

export function toApiToken(r: ApiTokenRow): ApiToken {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    prefix: r.prefix,
    tokenHash: r.token_hash,
    scopes: JSON.parse(r.scopes) as TokenScope[],
    createdAt: date(r.created_at),
    expiresAt: maybeDate(r.expires_at),
    lastUsedAt: maybeDate(r.last_used_at),
    revokedAt: maybeDate(r.revoked_at),
  };
}

export function toAudit(r: AuditRow): AuditEntry {
  return {
    id: r.id,
    userId: r.user_id,
    action: r.action,
    ip: r.ip,
    userAgent: r.user_agent,
    details: JSON.parse(r.details) as Record<string, unknown>,
    createdAt: date(r.created_at),
  };
}

export function toNode(r: NodeRow): TreeNode {
  return {
    id: r.id,
    ownerId: r.owner_id,
    parentId: r.parent_id,
    name: r.name,
    kind: r.kind,
    size: r.size,
    sha256: r.sha256,
    mediaType: r.media_type,
    mtime: r.mtime,
    revision: r.revision,
    status: r.status,
    trashedAt: maybeDate(r.trashed_at),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

export function toRevision(r: RevisionRow): FileRevision {
  return {
    fileId: r.file_id,
    revision: r.revision,
    sha256: r.sha256,
    size: r.size,
    mtime: r.mtime,
    mediaType: r.media_type,
    sourceId: r.source_id,
    createdAt: date(r.created_at),
  };
}

export function toChange(r: ChangeRow): Change {
  return {
    seq: r.seq,
    ownerId: r.owner_id,
    kind: r.kind,
    nodeId: r.node_id,
    data: JSON.parse(r.data) as Record<string, unknown>,
    createdAt: date(r.created_at),
  };
}

export function toUpload(r: UploadRow): UploadSession {
  return {
    id: r.id,
    ownerId: r.owner_id,
    uploaderId: r.uploader_id ?? r.owner_id,
    parentId: r.parent_id,
    name: r.name,
    length: r.length,
    offset: r.offset,
    sha256: r.sha256,
    mtime: r.mtime,
    baseRevision: r.base_revision,
    metadata: JSON.parse(r.metadata) as Record<string, string>,
    status: r.status,
    error: r.error,
    fileId: r.file_id,
    revision: r.revision ?? null,
    batchId: r.batch_id ?? null,
    batchIndex: r.batch_index ?? null,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    expiresAt: date(r.expires_at),
  };
}

export function toOutbox(r: OutboxRow): OutboxEntry {
  return {
    id: r.id,
    queue: r.queue,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    idempotencyKey: r.idempotency_key,
    priority: r.priority,
    createdAt: date(r.created_at),
  };
}

export function toShare(r: ShareRow): Share {
  return {
    id: r.id,
    ownerId: r.owner_id,
    nodeId: r.node_id,
    tokenHash: r.token_hash,
    granteeId: r.grantee_id,
    role: r.role,
    passwordHash: r.password_hash,
    expiresAt: maybeDate(r.expires_at),
    maxDownloads: r.max_downloads,
    downloads: r.downloads,
    revokedAt: maybeDate(r.revoked_at),
    createdAt: date(r.created_at),
  };
}

function sqliteCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Rethrows a unique-constraint failure as `ConflictError(code)` and a busy/locked database
 * as `UnavailableError` and a dangling reference as `NotFoundError`, keeping the driver error as `cause`; anything else unchanged.
 */
export function translateSqliteError(
  err: unknown,
  code: 'CONFLICT' | 'NAME_CONFLICT' | 'EMAIL_TAKEN' = 'CONFLICT',
): never {
  const sqlite = sqliteCode(err);
  if (sqlite === 'SQLITE_CONSTRAINT_UNIQUE' || sqlite === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    throw new ConflictError(code, undefined, err);
  }
  // A reference to a user or node that does not exist: it behaves as missing.
  if (sqlite === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new NotFoundError(undefined, err);
  if (sqlite === 'SQLITE_BUSY' || sqlite === 'SQLITE_LOCKED') {
    throw new UnavailableError('The metadata database is busy.', err);
  }
  throw err;
}
