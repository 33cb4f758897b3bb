/**
 * MetadataStore: everything AIO Storage knows except the bytes.
 *
 * Adapters: `SqliteMetadataStore` (embedded default) and `MongoMetadataStore`.
 * Both pass `core/testing/metadata-store.suite.ts`.
 *
 * Atomicity: instead of a generic transaction callback (better-sqlite3 transactions are
 * synchronous, MongoDB's are session-bound), every method that changes more than one
 * record is one transaction in each adapter. Methods that change the file tree append
 * to the owner's change feed inside that same transaction, so the feed can never miss
 * or reorder a change.
 *
 * Ownership: every method that takes an `ownerId` only sees that owner's records; a
 * foreign id behaves exactly like a missing one (`null` or `NotFoundError`).
 *
 * Errors: a violated unique rule throws `ConflictError` (code `NAME_CONFLICT`,
 * `EMAIL_TAKEN`, `REVISION_CONFLICT` or `CONFLICT`), keeping the driver error as
 * `cause`; a missing record that the call needs throws `NotFoundError`; a dead backend
 * throws `UnavailableError`.
 */
import { AppError } from '../../contract/errors.js';

// ---------- users and sessions ----------

export interface User {
  id: string;
  /** Trimmed, lower-cased. Unique. */
  email: string;
  name: string | null;
  passwordHash: string;
  /** Bumped on password change: access tokens carrying an older version are refused. */
  tokenVersion: number;
  /** Bytes of all current file revisions the user owns (trash included, old versions excluded). */
  storageUsed: number;
  storageQuota: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewUser {
  email: string;
  name: string | null;
  passwordHash: string;
  storageQuota: number;
}

export interface UserPatch {
  name?: string | null;
  /** Setting a new hash also bumps `tokenVersion` and revokes every refresh session of the user. */
  passwordHash?: string;
}

/** One refresh token of a login session. A family is one login; each refresh rotates within it. */
export interface RefreshSession {
  id: string;
  userId: string;
  familyId: string;
  /** sha256 hex of the opaque token; the token itself is never stored. */
  tokenHash: string;
  createdAt: Date;
  expiresAt: Date;
  /** Set when this token was exchanged for the next one. */
  rotatedAt: Date | null;
  /** Set when the family was revoked (logout, reuse, password change). */
  revokedAt: Date | null;
  ip: string | null;
  userAgent: string | null;
}

export interface NewRefreshSession {
  userId: string;
  /** Omit to start a new family (a login). */
  familyId?: string;
  tokenHash: string;
  expiresAt: Date;
  ip: string | null;
  userAgent: string | null;
}

export type RotateResult =
  | { kind: 'rotated'; previous: RefreshSession; next: RefreshSession }
  /** The token had already been rotated: the whole family is now revoked. */
  | { kind: 'reused'; previous: RefreshSession }
  /** Unknown, expired or revoked. */
  | { kind: 'invalid' };

// ---------- API tokens ----------

export type TokenScope = 'read' | 'write' | 'share';

export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  /** The first characters of the token as shown to the user, e.g. `aio_3f9a1c`. */
  prefix: string;
  tokenHash: string;
  scopes: TokenScope[];
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface NewApiToken {
  userId: string;
  name: string;
  prefix: string;
  tokenHash: string;
  scopes: TokenScope[];
  expiresAt: Date | null;
}

// ---------- audit ----------

export interface AuditEntry {
  id: string;
  userId: string | null;
  /** e.g. `auth.login`, `auth.login_failed`, `token.create`, `file.upload_failed`. */
  action: string;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
  createdAt: Date;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'createdAt'> & { createdAt?: Date };

export interface Page<T> {
  items: T[];
  /** Opaque; pass back to get the next page. `null` at the end. */
  nextCursor: string | null;
}

// ---------- the file tree ----------

export type NodeKind = 'folder' | 'file';
/** `pending`: bytes received, the worker has not committed them yet. */
export type FileStatus = 'pending' | 'ready' | 'failed';

export interface TreeNode {
  id: string;
  ownerId: string;
  /** `null` for entries of the owner's root folder. */
  parentId: string | null;
  /** NFC-normalised, validated by `core/domain/names.ts` before it gets here. */
  name: string;
  kind: NodeKind;
  /** Current revision's size; 0 for folders. */
  size: number;
  sha256: string | null;
  mediaType: string | null;
  /** Client modification time (ms since epoch) of the current revision. */
  mtime: number | null;
  /** 0 for folders; 1.. for files, bumped on each committed revision. */
  revision: number;
  status: FileStatus;
  /** Set while the node (or an ancestor it was trashed with) is in the trash. */
  trashedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface FileRevision {
  fileId: string;
  revision: number;
  sha256: string;
  size: number;
  mtime: number | null;
  mediaType: string | null;
  /** The upload (or operation) that produced it; unique per file: committing twice is a no-op. */
  sourceId: string;
  createdAt: Date;
}

export interface CommitFileInput {
  ownerId: string;
  parentId: string | null;
  name: string;
  sha256: string;
  size: number;
  mtime: number | null;
  mediaType: string | null;
  /**
   * Idempotency key (the upload id). Committing the same `sourceId` again returns the
   * revision committed the first time and changes nothing.
   */
  sourceId: string;
  /**
   * The revision the client based its change on. `undefined`: no check (last writer
   * wins). `0`: the file must not exist yet. `n`: the current revision must be `n`.
   * Otherwise throws `ConflictError('REVISION_CONFLICT')`.
   */
  baseRevision?: number;
  /** Revisions kept per file; older ones are dropped (their sha256 is returned for GC). Default 10. */
  keepRevisions?: number;
}

export interface CommitFileResult {
  node: TreeNode;
  revision: FileRevision;
  /** True when `sourceId` had been committed before and nothing changed now. */
  duplicate: boolean;
  /** sha256 of revisions dropped by `keepRevisions`; the caller may delete unreferenced blobs. */
  droppedBlobs: string[];
}

export interface ListOptions {
  limit?: number;
  /** Opaque cursor from the previous page. */
  cursor?: string | null;
  sort?: 'name' | 'mtime' | 'size';
  order?: 'asc' | 'desc';
  includeTrashed?: boolean;
}

// ---------- change feed ----------

export type ChangeKind = 'create' | 'update' | 'move' | 'delete' | 'restore' | 'purge' | 'notify';

export interface Change {
  /** Per-owner sequence number: 1, 2, 3 … with no gaps, assigned at commit. */
  seq: number;
  ownerId: string;
  kind: ChangeKind;
  nodeId: string | null;
  /** Snapshot of what the client needs (name, parentId, kind, revision, sha256, size, …). */
  data: Record<string, unknown>;
  createdAt: Date;
}

// ---------- uploads ----------

export type UploadStatus = 'receiving' | 'processing' | 'ready' | 'failed' | 'expired' | 'cancelled';

export interface UploadSession {
  id: string;
  /** Whose tree the file is committed into (and whose quota it counts against). */
  ownerId: string;
  /**
   * Who created the upload and alone may see, resume or cancel it: the owner, or an
   * editor of a folder the owner shared (`/Shared/<name>/…`).
   */
  uploaderId: string;
  parentId: string | null;
  name: string;
  /** Declared total length (tus Upload-Length). */
  length: number;
  /** Bytes durably received so far (tus Upload-Offset). */
  offset: number;
  sha256: string | null;
  mtime: number | null;
  baseRevision: number | null;
  /** Raw tus Upload-Metadata pairs, for clients that sent more. */
  metadata: Record<string, string>;
  status: UploadStatus;
  error: string | null;
  /** Set once the worker committed it. */
  fileId: string | null;
  /** The revision of `fileId` its commit made; set with `fileId` (null before, and in rows older than the field). */
  revision: number | null;
  /** The batch (`POST /uploads/batch`) it came in, and its place there; null for tus uploads. */
  batchId: string | null;
  batchIndex: number | null;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date;
}

export type NewUploadSession = Omit<
  UploadSession,
  'offset' | 'status' | 'error' | 'fileId' | 'revision' | 'createdAt' | 'updatedAt' | 'batchId' | 'batchIndex'
> & { batchId?: string | null; batchIndex?: number | null };

/** One upload of a batch job to commit: the revision, and the audit entry of the uploader. */
export interface CommitUploadInput {
  uploadId: string;
  file: CommitFileInput;
  audit: NewAuditEntry;
}

/**
 * The outcome of one `commitUploads` item: committed (the upload is `ready`), or refused
 * with a final error code (the upload is `failed` with it; nothing was written).
 */
/** Commit errors that end an upload for good (`commitUploads`); other errors are retried. */
export const FINAL_COMMIT_ERRORS: ReadonlySet<string> = new Set([
  'REVISION_CONFLICT',
  'NAME_CONFLICT',
  'CONFLICT',
  'NOT_FOUND',
  'QUOTA_EXCEEDED',
]);

/** The code of a commit error that ends an upload for good, or null (retry it). */
export function finalCommitError(err: unknown): string | null {
  return err instanceof AppError && FINAL_COMMIT_ERRORS.has(err.code) ? err.code : null;
}

export type CommitUploadOutcome =
  { ok: true; result: CommitFileResult } | { ok: false; code: string; message: string };

/** A job written in the same transaction as metadata, relayed to the JobQueue afterwards. */
export interface OutboxEntry {
  id: string;
  queue: string;
  payload: Record<string, unknown>;
  idempotencyKey: string;
  priority: number;
  createdAt: Date;
}

export type NewOutboxEntry = Omit<OutboxEntry, 'id' | 'createdAt'>;

// ---------- derived content ----------

/**
 * The outcome of transcoding one video content (`video.transcode`): keyed by the source
 * content's sha256, so every file with those bytes shares one poster and preview. A
 * `done` record references its poster and preview blobs as a revision references its
 * content: they are not deleted while it stands (`isBlobReferenced`).
 */
export interface TranscodeRecord {
  /** The source video's content. */
  sha256: string;
  /** `skipped`: ffmpeg is not installed; `failed`: ffmpeg refused the input or timed out. */
  status: 'done' | 'skipped' | 'failed';
  /** The file whose upload asked for it (the latest one, for logs). */
  fileId: string;
  /** Blob of the poster JPEG, when done. */
  posterSha256: string | null;
  /** Blob of the MP4 preview, when done. */
  previewSha256: string | null;
  /** Why it was skipped or failed. */
  reason: string | null;
  updatedAt: Date;
}

/** A blob kept referenced until a time (`keepBlob`): a zip behind a signed URL. */
export interface BlobKeep {
  holder: string;
  sha256: string;
  until: Date;
}

// ---------- shares ----------

export interface Share {
  id: string;
  ownerId: string;
  nodeId: string;
  /** sha256 hex of the public link token (public links); `null` for user shares. */
  tokenHash: string | null;
  /** Recipient (user shares); `null` for public links. */
  granteeId: string | null;
  role: 'viewer' | 'editor';
  passwordHash: string | null;
  expiresAt: Date | null;
  maxDownloads: number | null;
  downloads: number;
  revokedAt: Date | null;
  createdAt: Date;
}

export type NewShare = Omit<Share, 'id' | 'downloads' | 'revokedAt' | 'createdAt'>;

// ---------- notifications ----------

/**
 * A notification is a `notify` change of the user's own feed (`data.type` says what
 * happened) plus a durable read marker. Appending a `notify` change creates one.
 */
export interface Notification {
  /** The seq of the `notify` change: the notification's id. */
  seq: number;
  /** `data.type` of the change, e.g. `share.received`, `share.opened`, `zip.ready`. */
  type: string;
  data: Record<string, unknown>;
  createdAt: Date;
  readAt: Date | null;
}

export interface MetadataStore {
  // users
  createUser(input: NewUser): Promise<User>;
  getUserById(id: string): Promise<User | null>;
  getUserByEmail(email: string): Promise<User | null>;
  updateUser(id: string, patch: UserPatch): Promise<User>;

  // refresh sessions
  createRefreshSession(input: NewRefreshSession): Promise<RefreshSession>;
  /**
   * Atomically exchanges the token with hash `tokenHash` for a new one in the same family.
   * A token that was already rotated revokes its whole family and yields `reused`.
   */
  rotateRefreshSession(
    tokenHash: string,
    next: { tokenHash: string; expiresAt: Date },
    now: Date,
  ): Promise<RotateResult>;
  getRefreshSessionByHash(tokenHash: string): Promise<RefreshSession | null>;
  /** True while the family has a member that is neither revoked nor expired. */
  isSessionFamilyActive(familyId: string, now: Date): Promise<boolean>;
  revokeSessionFamily(familyId: string, now: Date): Promise<void>;
  revokeAllSessions(userId: string, now: Date): Promise<void>;

  // API tokens
  createApiToken(input: NewApiToken): Promise<ApiToken>;
  listApiTokens(userId: string): Promise<ApiToken[]>;
  getApiTokenByHash(tokenHash: string): Promise<ApiToken | null>;
  /** Returns false when there is no such (unrevoked) token of that user. */
  revokeApiToken(userId: string, id: string, now: Date): Promise<boolean>;
  touchApiToken(id: string, now: Date): Promise<void>;

  // audit
  appendAudit(entry: NewAuditEntry): Promise<AuditEntry>;
  /** Newest first. */
  listAudit(userId: string, options: { limit: number; cursor?: string | null }): Promise<Page<AuditEntry>>;

  // tree
  getNode(ownerId: string, id: string): Promise<TreeNode | null>;
  /** Case-insensitive (Unicode-folded) lookup among the non-trashed children of `parentId`. */
  findChild(ownerId: string, parentId: string | null, name: string): Promise<TreeNode | null>;
  /**
   * `findChild` down `names` from `parentId`: the node of each name in order, ending early
   * at the first name that is not there or after a node that is not a folder (so the
   * answer is shorter than `names` unless the whole path exists). One call for a path.
   */
  findPath(ownerId: string, parentId: string | null, names: readonly string[]): Promise<TreeNode[]>;
  listChildren(ownerId: string, parentId: string | null, options?: ListOptions): Promise<Page<TreeNode>>;
  /** Throws `ConflictError('NAME_CONFLICT')` when a live sibling has the same name up to case. */
  createFolder(ownerId: string, parentId: string | null, name: string): Promise<TreeNode>;
  /** Creates or updates a file; see `CommitFileInput`. Adjusts `storageUsed` and appends a change. */
  commitFile(input: CommitFileInput): Promise<CommitFileResult>;
  listRevisions(ownerId: string, fileId: string): Promise<FileRevision[]>;
  /** Moves and/or renames. Refuses to move a folder into itself or a descendant (`CONFLICT`). */
  moveNode(ownerId: string, id: string, parentId: string | null, name: string): Promise<TreeNode>;
  /** Moves a node (and with it its subtree) to the trash. */
  trashNode(ownerId: string, id: string, now: Date): Promise<TreeNode>;
  /** Restores from trash; `NAME_CONFLICT` when the name was taken meanwhile. */
  restoreNode(ownerId: string, id: string): Promise<TreeNode>;
  /** Deletes a trashed node and its subtree for good; returns the sha256 of every dropped revision. */
  purgeNode(ownerId: string, id: string): Promise<{ droppedBlobs: string[] }>;
  /** Trashed nodes whose `trashedAt` is before `before` (for the 30-day purge), any owner. */
  listTrashedBefore(before: Date, limit: number): Promise<TreeNode[]>;
  /**
   * True while any revision of any user, a `done` transcode record (as its poster or
   * preview) or an unexpired keep (`keepBlob`) still references the blob.
   */
  isBlobReferenced(sha256: string): Promise<boolean>;
  /**
   * Blob holds keep a content-addressed blob from being deleted between the moment code
   * relies on its bytes (moves bytes into it, or finds it already there) and the moment
   * its reference is committed — by any process. A reference is committed only under a
   * hold (`holdBlobs`, then check the blob, then commit, then `releaseBlobs`), and a blob
   * is deleted only under a deletion claim (`claimBlobDeletion`, delete, `releaseBlobs`).
   * See `core/blob-holds.ts`.
   *
   * Holds each blob for `holder` until `until` (idempotent: a later `until` extends it),
   * unless one of them is claimed for deletion by another holder (a claim that has not
   * expired at `now`): then nothing is held and the answer is false (try again shortly).
   */
  holdBlobs(holder: string, sha256s: readonly string[], now: Date, until: Date): Promise<boolean>;
  /**
   * Claims the blob for deletion by `holder` until `until`, atomically with the checks
   * that no revision references it and that no hold or other claim (unexpired at `now`)
   * is on it; false (and nothing claimed) otherwise.
   */
  claimBlobDeletion(holder: string, sha256: string, now: Date, until: Date): Promise<boolean>;
  /** Drops every hold and claim of `holder`, and any hold or claim expired at `now`. */
  releaseBlobs(holder: string, now: Date): Promise<void>;
  /**
   * Records the outcome of transcoding `record.sha256`, replacing any earlier one. A `done`
   * record's blobs must be held while it is committed (`withBlobHold`), as for a revision.
   */
  putTranscode(record: TranscodeRecord): Promise<void>;
  /** The recorded transcode outcome for this source content, or null. */
  getTranscode(sha256: string): Promise<TranscodeRecord | null>;
  /**
   * Drops the transcode record of this source content (once the content itself is gone);
   * returns it, or null when there was none. Its blobs are then unreferenced unless
   * something else references them.
   */
  deleteTranscode(sha256: string): Promise<TranscodeRecord | null>;
  /**
   * Keeps the blob referenced for `holder` until `until` (a zip while its signed URL is
   * valid): no deletion claim succeeds on it before then. Idempotent; a later `until`
   * extends it. Commit it under a hold, as a revision.
   */
  keepBlob(holder: string, sha256: string, until: Date): Promise<void>;
  /** Keeps expired at `now`, soonest expired first, at most `limit` (for the sweep that deletes their blobs). */
  listExpiredBlobKeeps(now: Date, limit: number): Promise<BlobKeep[]>;
  /** Drops a keep, expired or not (no-op when there is none). */
  dropBlobKeep(holder: string, sha256: string): Promise<void>;
  /** A ready file of this owner whose current revision has this sha256 (deduplication). */
  findFileBySha256(ownerId: string, sha256: string): Promise<TreeNode | null>;

  // change feed
  /** Changes with `seq > cursor`, ascending, at most `limit`. */
  listChanges(ownerId: string, cursor: number, limit: number): Promise<Change[]>;
  /** The owner's newest seq (0 when none). */
  latestChangeSeq(ownerId: string): Promise<number>;
  /**
   * Appends a change that is not a tree mutation (e.g. a notification).
   *
   * Shared folders: every change appended for a node (this one or a tree mutation's)
   * is also appended, in the same transaction, to the feed of each user the node is
   * shared with (an unrevoked user share of the node or of an ancestor), with
   * `data.share = { id, ownerId }` added. `notify` changes are never copied.
   */
  appendChange(
    ownerId: string,
    kind: ChangeKind,
    nodeId: string | null,
    data: Record<string, unknown>,
  ): Promise<Change>;

  // uploads and outbox
  createUpload(input: NewUploadSession): Promise<UploadSession>;
  /** The upload `id` when `uploaderId` created it (not when they only own its target); else null. */
  getUpload(uploaderId: string, id: string): Promise<UploadSession | null>;
  /** Any owner; for the worker. */
  getUploadById(id: string): Promise<UploadSession | null>;
  /**
   * Compare-and-set of the offset: succeeds only when the stored offset is `from` and the
   * status is `receiving`. Returns the updated session, or `null` when the CAS failed.
   */
  advanceUpload(id: string, from: number, to: number): Promise<UploadSession | null>;
  /**
   * Atomically sets status `processing` (only from `receiving` with offset = length) and
   * writes `job` to the outbox. Returns null when the upload was not in that state.
   */
  finishUpload(id: string, job: NewOutboxEntry): Promise<UploadSession | null>;
  /** Creates several upload sessions in one transaction (all or none). */
  createUploads(inputs: readonly NewUploadSession[]): Promise<UploadSession[]>;
  /**
   * For a batch whose bytes are all staged: in one transaction, every listed upload
   * still `receiving` gets offset = length and status `processing`, and `job` is written
   * to the outbox (only when at least one upload moved). Returns the uploads that moved.
   */
  finishUploads(ids: readonly string[], job: NewOutboxEntry): Promise<UploadSession[]>;
  /** The uploads of a batch that `uploaderId` created, in batch order. */
  listBatchUploads(uploaderId: string, batchId: string): Promise<UploadSession[]>;
  /**
   * How many uploads of that batch are not final yet (`receiving` or `processing`); `null`
   * when `uploaderId` has no such batch. What a long poll re-checks, instead of listing.
   */
  countBatchPending(uploaderId: string, batchId: string): Promise<number | null>;
  /**
   * Commits many uploads at once (the worker's batch step): for each item, in order,
   * `commitFile(item.file)`, then the upload becomes `ready` (with the file id) and the
   * audit entry is appended. An item whose commit throws a `ConflictError` or `AppError`
   * with code `REVISION_CONFLICT`, `NAME_CONFLICT`, `CONFLICT`, `NOT_FOUND` or
   * `QUOTA_EXCEEDED` is refused: its upload becomes `failed` with the code and nothing
   * else of it is written. Any other error aborts the call (what was written is rolled
   * back where the store has transactions; every step is idempotent by upload id).
   */
  commitUploads(items: readonly CommitUploadInput[]): Promise<CommitUploadOutcome[]>;
  setUploadStatus(
    id: string,
    status: UploadStatus,
    /** `sha256`: the worker records the hash it computed before moving the bytes, so a redelivery can finish. */
    fields?: { error?: string | null; fileId?: string | null; revision?: number | null; sha256?: string },
  ): Promise<UploadSession | null>;
  /** `receiving` uploads whose `expiresAt` is before `now`, any owner. */
  listExpiredUploads(now: Date, limit: number): Promise<UploadSession[]>;
  addOutbox(job: NewOutboxEntry): Promise<OutboxEntry>;
  /** Oldest first. */
  listOutbox(limit: number): Promise<OutboxEntry[]>;
  deleteOutbox(id: string): Promise<void>;

  // notifications (the `notify` changes of the owner's feed)
  /** Newest first; `unreadOnly` leaves out those marked read. */
  listNotifications(
    ownerId: string,
    options: { unreadOnly?: boolean; limit: number; cursor?: string | null },
  ): Promise<Page<Notification>>;
  /** Marks the given notifications (or all) read; returns how many were unread before. */
  markNotificationsRead(ownerId: string, seqs: readonly number[] | 'all', now: Date): Promise<number>;

  // shares
  createShare(input: NewShare): Promise<Share>;
  getShare(ownerId: string, id: string): Promise<Share | null>;
  getShareByTokenHash(tokenHash: string): Promise<Share | null>;
  listShares(ownerId: string): Promise<Share[]>;
  listSharesWithUser(granteeId: string): Promise<Share[]>;
  revokeShare(ownerId: string, id: string, now: Date): Promise<boolean>;
  /**
   * Atomically counts one download unless `maxDownloads` is reached or the share is
   * revoked. Returns the updated share, or null when refused.
   */
  recordShareDownload(id: string): Promise<Share | null>;
  /** Records the first opening of a share; true only for the call that recorded it (atomic). */
  markShareOpened(id: string, now: Date): Promise<boolean>;

  /** Round trip to the backend, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
