/**
 * Document shapes, schemas and indexes of the MongoDB metadata collections. Ids are
 * strings (UUIDs, or ObjectId hex where insertion order matters) so they look the same
 * as in SQLite. Every schema is `strict` and `strictQuery`, so unknown fields in writes
 * and filters are dropped rather than passed to the server.
 */
import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type {
  UserDoc,
  SessionDoc,
  ApiTokenDoc,
  AuditDoc,
  NodeDoc,
  RevisionDoc,
  ChangeDoc,
  UploadDoc,
  OutboxDoc,
  ShareDoc,
  BlobHoldDoc,
  BlobLockDoc,
  TranscodeDoc,
  BlobKeepDoc,
} from './mongo-docs.js';

export type {
  UserDoc,
  SessionDoc,
  ApiTokenDoc,
  AuditDoc,
  NodeDoc,
  RevisionDoc,
  ChangeDoc,
  UploadDoc,
  OutboxDoc,
  ShareDoc,
  BlobHoldDoc,
  BlobLockDoc,
  TranscodeDoc,
  BlobKeepDoc,
} from './mongo-docs.js';

export interface MetadataModels {
  users: Model<UserDoc>;
  sessions: Model<SessionDoc>;
  apiTokens: Model<ApiTokenDoc>;
  audit: Model<AuditDoc>;
  nodes: Model<NodeDoc>;
  revisions: Model<RevisionDoc>;
  blobHolds: Model<BlobHoldDoc>;
  blobLocks: Model<BlobLockDoc>;
  changes: Model<ChangeDoc>;
  uploads: Model<UploadDoc>;
  outbox: Model<OutboxDoc>;
  shares: Model<ShareDoc>;
  transcodes: Model<TranscodeDoc>;
  blobKeeps: Model<BlobKeepDoc>;
}

// versionKey off: the store never relies on __v; minimize off: keep `{}` details and data.
const OPTIONS = {
  strict: true,
  strictQuery: true,
  versionKey: false,
  minimize: false,
  timestamps: false,
} as const;
const str = { type: String, default: null };
const date = { type: Date, default: null };
const num = { type: Number, default: null };
const mixed = { type: Schema.Types.Mixed, default: {} };

function schema<T>(definition: Record<string, unknown>, collection: string): Schema<T> {
  return new Schema<T>({ _id: { type: String, required: true }, ...definition }, { ...OPTIONS, collection });
}

export function defineModels(conn: Connection): MetadataModels {
  const users = schema<UserDoc>(
    {
      email: { type: String, required: true },
      name: str,
      passwordHash: { type: String, required: true },
      tokenVersion: { type: Number, default: 0 },
      storageUsed: { type: Number, default: 0 },
      storageQuota: { type: Number, required: true },
      changeSeq: { type: Number, default: 0 },
      createdAt: Date,
      updatedAt: Date,
    },
    'users',
  );
  users.index({ email: 1 }, { unique: true });

  const sessions = schema<SessionDoc>(
    {
      userId: { type: String, required: true },
      familyId: { type: String, required: true },
      tokenHash: { type: String, required: true },
      createdAt: Date,
      expiresAt: Date,
      rotatedAt: date,
      revokedAt: date,
      ip: str,
      userAgent: str,
    },
    'refresh_sessions',
  );
  sessions.index({ tokenHash: 1 }, { unique: true });
  sessions.index({ familyId: 1 });
  sessions.index({ userId: 1 });

  const apiTokens = schema<ApiTokenDoc>(
    {
      userId: { type: String, required: true },
      name: { type: String, required: true },
      prefix: { type: String, required: true },
      tokenHash: { type: String, required: true },
      scopes: { type: [String], default: [] },
      createdAt: Date,
      expiresAt: date,
      lastUsedAt: date,
      revokedAt: date,
    },
    'api_tokens',
  );
  apiTokens.index({ tokenHash: 1 }, { unique: true });
  apiTokens.index({ userId: 1, createdAt: 1 });

  const audit = schema<AuditDoc>(
    {
      userId: str,
      action: { type: String, required: true },
      ip: str,
      userAgent: str,
      details: mixed,
      createdAt: Date,
    },
    'audit_log',
  );
  audit.index({ userId: 1, createdAt: -1, _id: -1 });

  const nodes = schema<NodeDoc>(
    {
      ownerId: { type: String, required: true },
      parentId: str,
      parentKey: { type: String, default: '' },
      name: { type: String, required: true },
      nameKey: { type: String, required: true },
      kind: { type: String, required: true, enum: ['folder', 'file'] },
      size: { type: Number, default: 0 },
      sha256: str,
      mediaType: str,
      mtime: num,
      mtimeKey: { type: Number, default: 0 },
      revision: { type: Number, default: 0 },
      status: { type: String, required: true },
      live: { type: Boolean, default: true },
      trashedAt: date,
      trashRoot: str,
      createdAt: Date,
      updatedAt: Date,
    },
    'nodes',
  );
  nodes.index(
    { ownerId: 1, parentKey: 1, nameKey: 1 },
    { unique: true, partialFilterExpression: { live: true }, name: 'nodes_live_name' },
  );
  nodes.index({ ownerId: 1, parentKey: 1, live: 1 });
  nodes.index({ ownerId: 1, sha256: 1 });
  nodes.index({ trashedAt: 1 }, { partialFilterExpression: { live: false } });

  const revisions = schema<RevisionDoc>(
    {
      fileId: { type: String, required: true },
      ownerId: { type: String, required: true },
      revision: { type: Number, required: true },
      sha256: { type: String, required: true },
      size: { type: Number, required: true },
      mtime: num,
      mediaType: str,
      sourceId: { type: String, required: true },
      createdAt: Date,
    },
    'file_revisions',
  );
  revisions.index({ fileId: 1, revision: 1 }, { unique: true });
  revisions.index({ fileId: 1, sourceId: 1 }, { unique: true });
  revisions.index({ ownerId: 1, sourceId: 1 });
  revisions.index({ sha256: 1 });

  const changes = schema<ChangeDoc>(
    {
      ownerId: { type: String, required: true },
      seq: { type: Number, required: true },
      kind: { type: String, required: true },
      nodeId: str,
      data: mixed,
      createdAt: Date,
      readAt: date,
    },
    'changes',
  );
  changes.index({ ownerId: 1, seq: 1 }, { unique: true });
  changes.index({ ownerId: 1, kind: 1, seq: -1 });

  const uploads = schema<UploadDoc>(
    {
      ownerId: { type: String, required: true },
      // Absent in documents from before it existed: the owner uploaded those.
      uploaderId: { type: String },
      parentId: str,
      name: { type: String, required: true },
      length: { type: Number, required: true },
      offset: { type: Number, default: 0 },
      sha256: str,
      mtime: num,
      baseRevision: num,
      metadata: mixed,
      status: { type: String, required: true },
      error: str,
      fileId: str,
      revision: num,
      batchId: str,
      batchIndex: num,
      createdAt: Date,
      updatedAt: Date,
      expiresAt: Date,
    },
    'uploads',
  );
  uploads.index({ status: 1, expiresAt: 1 });
  uploads.index({ batchId: 1, batchIndex: 1 }, { partialFilterExpression: { batchId: { $type: 'string' } } });

  const outbox = schema<OutboxDoc>(
    {
      queue: { type: String, required: true },
      payload: mixed,
      idempotencyKey: { type: String, required: true },
      priority: { type: Number, default: 0 },
      createdAt: Date,
    },
    'metadata_outbox',
  );

  const shares = schema<ShareDoc>(
    {
      ownerId: { type: String, required: true },
      nodeId: { type: String, required: true },
      tokenHash: str,
      granteeId: str,
      role: { type: String, required: true, enum: ['viewer', 'editor'] },
      passwordHash: str,
      expiresAt: date,
      maxDownloads: num,
      downloads: { type: Number, default: 0 },
      revokedAt: date,
      createdAt: Date,
      openedAt: date,
    },
    'shares',
  );
  // Only public links have a token hash; user shares (null) must not collide.
  shares.index(
    { tokenHash: 1 },
    { unique: true, partialFilterExpression: { tokenHash: { $type: 'string' } } },
  );
  shares.index({ ownerId: 1, createdAt: -1 });
  shares.index({ granteeId: 1 });
  shares.index({ ownerId: 1, granteeId: 1, revokedAt: 1 });

  const blobHolds = schema<BlobHoldDoc>(
    {
      sha256: { type: String, required: true },
      holder: { type: String, required: true },
      kind: { type: String, required: true, enum: ['hold', 'delete'] },
      expiresAt: { type: Date, required: true },
    },
    'blob_holds',
  );
  blobHolds.index({ sha256: 1, expiresAt: 1 });
  blobHolds.index({ holder: 1 });
  blobHolds.index({ expiresAt: 1 });

  const blobLocks = schema<BlobLockDoc>({ version: { type: Number, default: 0 } }, 'blob_locks');

  const transcodes = schema<TranscodeDoc>(
    {
      status: { type: String, required: true, enum: ['done', 'skipped', 'failed'] },
      fileId: { type: String, required: true },
      posterSha256: str,
      previewSha256: str,
      reason: str,
      updatedAt: { type: Date, required: true },
    },
    'transcodes',
  );
  const blobKeeps = schema<BlobKeepDoc>(
    {
      sha256: { type: String, required: true },
      holder: { type: String, required: true },
      expiresAt: { type: Date, required: true },
    },
    'blob_keeps',
  );
  blobKeeps.index({ sha256: 1, expiresAt: 1 });
  blobKeeps.index({ expiresAt: 1 });
  // A done record references its poster and preview blobs (`isBlobReferenced`).
  transcodes.index({ posterSha256: 1 }, { partialFilterExpression: { posterSha256: { $type: 'string' } } });
  transcodes.index({ previewSha256: 1 }, { partialFilterExpression: { previewSha256: { $type: 'string' } } });

  return {
    users: conn.model<UserDoc>('User', users),
    sessions: conn.model<SessionDoc>('RefreshSession', sessions),
    apiTokens: conn.model<ApiTokenDoc>('ApiToken', apiTokens),
    audit: conn.model<AuditDoc>('AuditEntry', audit),
    nodes: conn.model<NodeDoc>('TreeNode', nodes),
    revisions: conn.model<RevisionDoc>('FileRevision', revisions),
    changes: conn.model<ChangeDoc>('Change', changes),
    uploads: conn.model<UploadDoc>('UploadSession', uploads),
    outbox: conn.model<OutboxDoc>('OutboxEntry', outbox),
    shares: conn.model<ShareDoc>('Share', shares),
    blobHolds: conn.model<BlobHoldDoc>('BlobHold', blobHolds),
    blobLocks: conn.model<BlobLockDoc>('BlobLock', blobLocks),
    transcodes: conn.model<TranscodeDoc>('Transcode', transcodes),
    blobKeeps: conn.model<BlobKeepDoc>('BlobKeep', blobKeeps),
  };
}

/** Marks an operator object (`{ $gt: n }`) as written by the store, so `sanitizeFilter` keeps it. */
export function op<T extends Record<string, unknown>>(value: T): T {
  return mongoose.trusted(value) as T;
}

/** A new ObjectId as hex: unique and increasing with insertion within a process. */
export function orderedId(): string {
  return new mongoose.Types.ObjectId().toHexString();
}

/** Runs `fn` in one MongoDB transaction (retried by the driver on transient errors). */
export type RunTx = <T>(fn: (session: mongoose.mongo.ClientSession) => Promise<T>) => Promise<T>;
