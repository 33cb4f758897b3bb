/**
 * Shapes of the MongoDB metadata documents (see `mongo-models.ts` for their schemas and
 * indexes). Ids are strings so they look the same as in SQLite.
 */
import type {
  ChangeKind,
  FileStatus,
  NodeKind,
  TokenScope,
  TranscodeRecord,
  UploadStatus,
} from '../../ports/metadata-store.js';

export interface UserDoc {
  _id: string;
  email: string;
  name: string | null;
  passwordHash: string;
  tokenVersion: number;
  storageUsed: number;
  storageQuota: number;
  /** The owner's newest change seq; bumped in the transaction that appends the change. */
  changeSeq: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface SessionDoc {
  _id: string;
  userId: string;
  familyId: string;
  tokenHash: string;
  createdAt: Date;
  expiresAt: Date;
  rotatedAt: Date | null;
  revokedAt: Date | null;
  ip: string | null;
  userAgent: string | null;
}

export interface ApiTokenDoc {
  _id: string;
  userId: string;
  name: string;
  prefix: string;
  tokenHash: string;
  scopes: TokenScope[];
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface AuditDoc {
  /** ObjectId hex: increases with insertion, the tie-break of equal `createdAt`. */
  _id: string;
  userId: string | null;
  action: string;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
  createdAt: Date;
}

export interface NodeDoc {
  _id: string;
  ownerId: string;
  parentId: string | null;
  /** `parentId` or '' for the root, so the unique index also covers root entries. */
  parentKey: string;
  name: string;
  nameKey: string;
  kind: NodeKind;
  size: number;
  sha256: string | null;
  mediaType: string | null;
  mtime: number | null;
  /** `mtime ?? 0`, the sort key of `listChildren` by mtime. */
  mtimeKey: number;
  revision: number;
  status: FileStatus;
  /** `trashedAt === null`; partial indexes cannot test for null, so the flag carries it. */
  live: boolean;
  trashedAt: Date | null;
  trashRoot: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RevisionDoc {
  _id: string;
  fileId: string;
  ownerId: string;
  revision: number;
  sha256: string;
  size: number;
  mtime: number | null;
  mediaType: string | null;
  sourceId: string;
  createdAt: Date;
}

export interface ChangeDoc {
  _id: string;
  ownerId: string;
  seq: number;
  kind: ChangeKind;
  nodeId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
  /** Read marker of a `notify` change (a notification). */
  readAt?: Date | null;
}

export interface UploadDoc {
  _id: string;
  ownerId: string;
  /** Absent only in documents written before it existed (the owner uploaded those). */
  uploaderId?: string;
  parentId: string | null;
  name: string;
  length: number;
  offset: number;
  sha256: string | null;
  mtime: number | null;
  baseRevision: number | null;
  metadata: Record<string, string>;
  status: UploadStatus;
  error: string | null;
  fileId: string | null;
  /** The revision its commit made (absent in older documents). */
  revision?: number | null;
  /** Set for uploads of a `POST /uploads/batch` (absent in older documents). */
  batchId?: string | null;
  batchIndex?: number | null;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date;
}

export interface OutboxDoc {
  /** ObjectId hex, so `_id` order is insertion order. */
  _id: string;
  queue: string;
  payload: Record<string, unknown>;
  idempotencyKey: string;
  priority: number;
  createdAt: Date;
}

export interface ShareDoc {
  _id: string;
  ownerId: string;
  nodeId: string;
  tokenHash: string | null;
  granteeId: string | null;
  role: 'viewer' | 'editor';
  passwordHash: string | null;
  expiresAt: Date | null;
  maxDownloads: number | null;
  downloads: number;
  revokedAt: Date | null;
  createdAt: Date;
  /** Set once, at the first opening (the owner is notified). */
  openedAt?: Date | null;
}

/** A hold on a blob about to be referenced, or a claim of one being deleted (`kind`). */
export interface BlobHoldDoc {
  /** `<sha256>:<holder>` */
  _id: string;
  sha256: string;
  holder: string;
  kind: 'hold' | 'delete';
  expiresAt: Date;
}

/**
 * One per blob that was ever held or claimed: every hold and claim transaction writes it,
 * so two of them on the same blob conflict (MongoDB's snapshot isolation would otherwise
 * let a hold and a claim that read each other's collection both commit).
 */
export interface BlobLockDoc {
  /** The sha256. */
  _id: string;
  version: number;
}

/** A transcode outcome by source content (`TranscodeRecord` in the port, keyed by its sha256). */
export type TranscodeDoc = { _id: string } & Omit<TranscodeRecord, 'sha256'>;

/** A blob kept referenced until `expiresAt` (`keepBlob` in the port). */
export interface BlobKeepDoc {
  /** `<sha256>:<holder>` */
  _id: string;
  sha256: string;
  holder: string;
  expiresAt: Date;
}
