/**
 * `SqliteMetadataStore`: the embedded MetadataStore on the shared better-sqlite3
 * database (see `core/sqlite.ts`). better-sqlite3 is synchronous, so
 * each method runs its statements — one IMMEDIATE transaction where several rows change
 * — and resolves; errors become rejections with codes from `contract/errors.ts`.
 *
 * The store does not own the database: `close()` leaves it open for whoever opened it.
 */
import { UnavailableError } from '../../../contract/errors.js';
import { systemClock, type Clock } from '../../domain/clock.js';
import { groupCommitOf, migrate, StampedMemo, type GroupCommit, type SqliteDatabase } from '../../sqlite.js';
import type {
  ApiToken,
  AuditEntry,
  BlobKeep,
  Change,
  ChangeKind,
  CommitFileInput,
  CommitFileResult,
  CommitUploadInput,
  CommitUploadOutcome,
  FileRevision,
  ListOptions,
  MetadataStore,
  NewApiToken,
  NewAuditEntry,
  NewOutboxEntry,
  NewRefreshSession,
  NewShare,
  Notification,
  NewUploadSession,
  NewUser,
  OutboxEntry,
  Page,
  RefreshSession,
  RotateResult,
  Share,
  TranscodeRecord,
  TreeNode,
  UploadSession,
  UploadStatus,
  User,
  UserPatch,
} from '../../ports/metadata-store.js';
import { SqliteAccounts } from './sqlite-accounts.js';
import {
  appendChangeTx,
  latestChangeSeq,
  listChanges,
  listNotifications,
  markNotificationsRead,
} from './sqlite-changes.js';
import { finalCommitError } from './shared.js';
import { SqliteBlobHolds, dropBlobKeep, keepBlob, listExpiredBlobKeeps } from './sqlite-blob-holds.js';
import { MIGRATIONS } from './sqlite-schema.js';
import * as transcodes from './sqlite-transcodes.js';
import { SqliteTransfers } from './sqlite-transfers.js';
import { SqliteTrash } from './sqlite-trash.js';
import { SqliteTree } from './sqlite-tree.js';

/** Users and path lookups remembered while the database is unchanged (see `StampedMemo`). */
const MEMO_USERS = 1_000;
const MEMO_CHILDREN = 10_000;
const MEMO_PATHS = 10_000;

/** `value`, frozen: a remembered value is shared by every caller. */
function frozen<T extends object | null>(value: T): T {
  return value === null ? value : Object.freeze(value);
}

export class SqliteMetadataStore implements MetadataStore {
  private readonly accounts: SqliteAccounts;
  private readonly tree: SqliteTree;
  private readonly trash: SqliteTrash;
  private readonly transfers: SqliteTransfers;
  private readonly blobHolds: SqliteBlobHolds;
  private readonly clock: Clock;
  private readonly writes: GroupCommit;
  private closed = false;
  /**
   * Lookups made on every request (the user behind a token; a path, folder by folder),
   * remembered while the database is unchanged: each query takes and drops WAL's read lock
   * (two `fcntl`s) before its row; a V8 profile of the listing load put ~20 % of the
   * server's CPU there (`perf` later put ~6 % in all of better-sqlite3: V8's sampler
   * over-weights native frames).
   */
  private readonly users: StampedMemo<User | null>;
  private readonly children: StampedMemo<TreeNode | null>;
  private readonly paths: StampedMemo<readonly TreeNode[]>;

  /** Applies the `metadata` migrations to `db`. */
  constructor(
    private readonly db: SqliteDatabase,
    options: { clock?: Clock } = {},
  ) {
    const clock = options.clock ?? systemClock;
    migrate(db, 'metadata', MIGRATIONS);
    this.accounts = new SqliteAccounts(db, clock);
    this.tree = new SqliteTree(db, clock);
    this.trash = new SqliteTrash(db, clock, this.tree);
    this.transfers = new SqliteTransfers(db, clock);
    this.blobHolds = new SqliteBlobHolds(db, this.tree);
    this.clock = clock;
    this.writes = groupCommitOf(db);
    this.users = new StampedMemo(db, MEMO_USERS);
    this.children = new StampedMemo(db, MEMO_CHILDREN);
    this.paths = new StampedMemo(db, MEMO_PATHS);
  }

  async createUser(input: NewUser): Promise<User> {
    return this.write(() => this.accounts.createUser(input));
  }
  async getUserById(id: string): Promise<User | null> {
    return this.run(() => this.users.get(id, () => frozen(this.accounts.getUserById(id))));
  }
  async getUserByEmail(email: string): Promise<User | null> {
    return this.run(() => this.accounts.getUserByEmail(email));
  }
  async updateUser(id: string, patch: UserPatch): Promise<User> {
    return this.write(() => this.accounts.updateUser(id, patch));
  }

  async createRefreshSession(input: NewRefreshSession): Promise<RefreshSession> {
    return this.write(() => this.accounts.createRefreshSession(input));
  }
  async rotateRefreshSession(
    tokenHash: string,
    next: { tokenHash: string; expiresAt: Date },
    now: Date,
  ): Promise<RotateResult> {
    return this.write(() => this.accounts.rotateRefreshSession(tokenHash, next, now));
  }
  async getRefreshSessionByHash(tokenHash: string): Promise<RefreshSession | null> {
    return this.run(() => this.accounts.getRefreshSessionByHash(tokenHash));
  }
  async isSessionFamilyActive(familyId: string, now: Date): Promise<boolean> {
    return this.run(() => this.accounts.isSessionFamilyActive(familyId, now));
  }
  async revokeSessionFamily(familyId: string, now: Date): Promise<void> {
    return this.write(() => this.accounts.revokeSessionFamily(familyId, now));
  }
  async revokeAllSessions(userId: string, now: Date): Promise<void> {
    return this.write(() => this.accounts.revokeAllSessions(userId, now));
  }

  async createApiToken(input: NewApiToken): Promise<ApiToken> {
    return this.write(() => this.accounts.createApiToken(input));
  }
  async listApiTokens(userId: string): Promise<ApiToken[]> {
    return this.run(() => this.accounts.listApiTokens(userId));
  }
  async getApiTokenByHash(tokenHash: string): Promise<ApiToken | null> {
    return this.run(() => this.accounts.getApiTokenByHash(tokenHash));
  }
  async revokeApiToken(userId: string, id: string, now: Date): Promise<boolean> {
    return this.write(() => this.accounts.revokeApiToken(userId, id, now));
  }
  async touchApiToken(id: string, now: Date): Promise<void> {
    return this.write(() => this.accounts.touchApiToken(id, now));
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    return this.write(() => this.accounts.appendAudit(entry));
  }
  async listAudit(
    userId: string,
    options: { limit: number; cursor?: string | null },
  ): Promise<Page<AuditEntry>> {
    return this.run(() => this.accounts.listAudit(userId, options));
  }

  async getNode(ownerId: string, id: string): Promise<TreeNode | null> {
    return this.run(() => this.tree.getNode(ownerId, id));
  }
  async findChild(ownerId: string, parentId: string | null, name: string): Promise<TreeNode | null> {
    return this.run(() =>
      this.children.get(JSON.stringify([ownerId, parentId, name]), () =>
        frozen(this.tree.findChild(ownerId, parentId, name)),
      ),
    );
  }
  async findPath(ownerId: string, parentId: string | null, names: readonly string[]): Promise<TreeNode[]> {
    // The remembered list is shared: each caller gets its own copy (of the frozen nodes).
    return this.run(() => [
      ...this.paths.get(JSON.stringify([ownerId, parentId, ...names]), () =>
        Object.freeze(this.walkPath(ownerId, parentId, names)),
      ),
    ]);
  }
  private walkPath(ownerId: string, parentId: string | null, names: readonly string[]): TreeNode[] {
    const nodes: TreeNode[] = [];
    let at = parentId;
    for (const name of names) {
      const node = this.tree.findChild(ownerId, at, name);
      if (!node) break;
      nodes.push(Object.freeze(node));
      if (node.kind !== 'folder') break;
      at = node.id;
    }
    return nodes;
  }
  async listChildren(
    ownerId: string,
    parentId: string | null,
    options?: ListOptions,
  ): Promise<Page<TreeNode>> {
    return this.run(() => this.tree.listChildren(ownerId, parentId, options));
  }
  async createFolder(ownerId: string, parentId: string | null, name: string): Promise<TreeNode> {
    return this.write(() => this.tree.createFolder(ownerId, parentId, name));
  }
  async commitFile(input: CommitFileInput): Promise<CommitFileResult> {
    return this.write(() => this.tree.commitFile(input));
  }
  async listRevisions(ownerId: string, fileId: string): Promise<FileRevision[]> {
    return this.run(() => this.tree.listRevisions(ownerId, fileId));
  }
  async moveNode(ownerId: string, id: string, parentId: string | null, name: string): Promise<TreeNode> {
    return this.write(() => this.tree.moveNode(ownerId, id, parentId, name));
  }
  async trashNode(ownerId: string, id: string, now: Date): Promise<TreeNode> {
    return this.write(() => this.trash.trashNode(ownerId, id, now));
  }
  async restoreNode(ownerId: string, id: string): Promise<TreeNode> {
    return this.write(() => this.trash.restoreNode(ownerId, id));
  }
  async purgeNode(ownerId: string, id: string): Promise<{ droppedBlobs: string[] }> {
    return this.write(() => this.trash.purgeNode(ownerId, id));
  }
  async listTrashedBefore(before: Date, limit: number): Promise<TreeNode[]> {
    return this.run(() => this.trash.listTrashedBefore(before, limit));
  }
  async isBlobReferenced(sha256: string): Promise<boolean> {
    return this.run(() => this.tree.isBlobReferenced(sha256));
  }
  async findFileBySha256(ownerId: string, sha256: string): Promise<TreeNode | null> {
    return this.run(() => this.tree.findFileBySha256(ownerId, sha256));
  }
  async putTranscode(record: TranscodeRecord): Promise<void> {
    return this.write(() => transcodes.putTranscode(this.db, record));
  }
  async getTranscode(sha256: string): Promise<TranscodeRecord | null> {
    return this.run(() => transcodes.getTranscode(this.db, sha256));
  }
  async deleteTranscode(sha256: string): Promise<TranscodeRecord | null> {
    return this.write(() => transcodes.deleteTranscode(this.db, sha256));
  }
  async keepBlob(holder: string, sha256: string, until: Date): Promise<void> {
    return this.write(() => keepBlob(this.db, holder, sha256, until));
  }
  async listExpiredBlobKeeps(now: Date, limit: number): Promise<BlobKeep[]> {
    return this.run(() => listExpiredBlobKeeps(this.db, now, limit));
  }
  async dropBlobKeep(holder: string, sha256: string): Promise<void> {
    return this.write(() => dropBlobKeep(this.db, holder, sha256));
  }
  async holdBlobs(holder: string, sha256s: readonly string[], now: Date, until: Date): Promise<boolean> {
    return this.run(() => this.blobHolds.hold(holder, sha256s, now, until));
  }
  async claimBlobDeletion(holder: string, sha256: string, now: Date, until: Date): Promise<boolean> {
    return this.run(() => this.blobHolds.claimDeletion(holder, sha256, now, until));
  }
  async releaseBlobs(holder: string, now: Date): Promise<void> {
    this.run(() => this.blobHolds.release(holder, now));
  }

  async listChanges(ownerId: string, cursor: number, limit: number): Promise<Change[]> {
    return this.run(() => listChanges(this.db, ownerId, cursor, limit));
  }
  async latestChangeSeq(ownerId: string): Promise<number> {
    return this.run(() => latestChangeSeq(this.db, ownerId));
  }
  async appendChange(
    ownerId: string,
    kind: ChangeKind,
    nodeId: string | null,
    data: Record<string, unknown>,
  ): Promise<Change> {
    return this.write(() =>
      this.db
        .transaction(() => appendChangeTx(this.db, ownerId, kind, nodeId, data, this.clock.now().getTime()))
        .immediate(),
    );
  }

  async listNotifications(
    ownerId: string,
    options: { unreadOnly?: boolean; limit: number; cursor?: string | null },
  ): Promise<Page<Notification>> {
    return this.run(() => listNotifications(this.db, ownerId, options));
  }
  async markNotificationsRead(ownerId: string, seqs: readonly number[] | 'all', now: Date): Promise<number> {
    return this.write(() => markNotificationsRead(this.db, ownerId, seqs, now.getTime()));
  }

  async createUpload(input: NewUploadSession): Promise<UploadSession> {
    return this.write(() => this.transfers.createUpload(input));
  }
  async getUpload(uploaderId: string, id: string): Promise<UploadSession | null> {
    return this.run(() => this.transfers.getUpload(uploaderId, id));
  }
  async getUploadById(id: string): Promise<UploadSession | null> {
    return this.run(() => this.transfers.getUploadById(id));
  }
  async advanceUpload(id: string, from: number, to: number): Promise<UploadSession | null> {
    return this.write(() => this.transfers.advanceUpload(id, from, to));
  }
  async finishUpload(id: string, job: NewOutboxEntry): Promise<UploadSession | null> {
    return this.write(() => this.transfers.finishUpload(id, job));
  }
  async createUploads(inputs: readonly NewUploadSession[]): Promise<UploadSession[]> {
    return this.write(() => this.transfers.createUploads(inputs));
  }
  async finishUploads(ids: readonly string[], job: NewOutboxEntry): Promise<UploadSession[]> {
    return this.write(() => this.transfers.finishUploads(ids, job));
  }
  async listBatchUploads(uploaderId: string, batchId: string): Promise<UploadSession[]> {
    return this.run(() => this.transfers.listBatchUploads(uploaderId, batchId));
  }
  async countBatchPending(uploaderId: string, batchId: string): Promise<number | null> {
    return this.run(() => this.transfers.countBatchPending(uploaderId, batchId));
  }
  /**
   * One IMMEDIATE transaction, every item in one savepoint first; only when one of them
   * meets a final error is that rolled back and the batch done again with a savepoint per
   * item (so the failed one leaves nothing). Why: a savepoint per item cost ~0.1 ms to
   * release (SQLite, WAL, on the 2-core VM), more than the item's own ten statements, and
   * it grew with the transaction: 1,000 files committed in 90–400 ms, most of it in
   * `RELEASE`.
   */
  async commitUploads(items: readonly CommitUploadInput[]): Promise<CommitUploadOutcome[]> {
    return this.write(() =>
      this.db
        .transaction((): CommitUploadOutcome[] => {
          try {
            return this.db.transaction(() =>
              items.map((item) =>
                this.commitUpload(item, (input) => this.tree.commitFileInTransaction(input)),
              ),
            )();
          } catch (err) {
            if (!(err instanceof FinalCommitError)) throw err;
          }
          return items.map((item) => {
            try {
              return this.commitUpload(item, (input) => this.tree.commitFile(input));
            } catch (err) {
              if (!(err instanceof FinalCommitError)) throw err;
              return this.failUpload(item, err.code, err.message);
            }
          });
        })
        .immediate(),
    );
  }

  /** One item of `commitUploads`: the revision, the upload `ready`, the audit entry. */
  private commitUpload(
    item: CommitUploadInput,
    commit: (input: CommitFileInput) => CommitFileResult,
  ): CommitUploadOutcome {
    let result: CommitFileResult;
    try {
      result = commit(item.file);
    } catch (err) {
      // Rolls the whole first attempt back (see commitUploads); rethrown as it is otherwise.
      const code = finalCommitError(err);
      if (code !== null) throw new FinalCommitError(code, err instanceof Error ? err.message : code);
      throw err;
    }
    this.transfers.markUpload(item.uploadId, 'ready', {
      fileId: result.node.id,
      revision: result.revision.revision,
      error: null,
    });
    if (!result.duplicate) {
      this.accounts.appendAudit({
        ...item.audit,
        details: { ...item.audit.details, fileId: result.node.id, revision: result.revision.revision },
      });
    }
    return { ok: true, result };
  }

  private failUpload(item: CommitUploadInput, code: string, message: string): CommitUploadOutcome {
    this.transfers.markUpload(item.uploadId, 'failed', { error: code });
    this.accounts.appendAudit({
      ...item.audit,
      action: 'file.upload_failed',
      details: { uploadId: item.uploadId, ownerId: item.file.ownerId, error: code, message },
    });
    return { ok: false, code, message };
  }
  async setUploadStatus(
    id: string,
    status: UploadStatus,
    fields?: { error?: string | null; fileId?: string | null; revision?: number | null; sha256?: string },
  ): Promise<UploadSession | null> {
    return this.write(() => this.transfers.setUploadStatus(id, status, fields));
  }
  async listExpiredUploads(now: Date, limit: number): Promise<UploadSession[]> {
    return this.run(() => this.transfers.listExpiredUploads(now, limit));
  }
  async addOutbox(job: NewOutboxEntry): Promise<OutboxEntry> {
    return this.write(() => this.transfers.addOutbox(job));
  }
  async listOutbox(limit: number): Promise<OutboxEntry[]> {
    return this.run(() => this.transfers.listOutbox(limit));
  }
  async deleteOutbox(id: string): Promise<void> {
    return this.write(() => this.transfers.deleteOutbox(id));
  }

  async createShare(input: NewShare): Promise<Share> {
    return this.write(() => this.transfers.createShare(input));
  }
  async getShare(ownerId: string, id: string): Promise<Share | null> {
    return this.run(() => this.transfers.getShare(ownerId, id));
  }
  async getShareByTokenHash(tokenHash: string): Promise<Share | null> {
    return this.run(() => this.transfers.getShareByTokenHash(tokenHash));
  }
  async listShares(ownerId: string): Promise<Share[]> {
    return this.run(() => this.transfers.listShares(ownerId));
  }
  async listSharesWithUser(granteeId: string): Promise<Share[]> {
    return this.run(() => this.transfers.listSharesWithUser(granteeId));
  }
  async revokeShare(ownerId: string, id: string, now: Date): Promise<boolean> {
    return this.write(() => this.transfers.revokeShare(ownerId, id, now));
  }
  async recordShareDownload(id: string): Promise<Share | null> {
    return this.write(() => this.transfers.recordShareDownload(id));
  }
  async markShareOpened(id: string, now: Date): Promise<boolean> {
    return this.write(() => this.transfers.markShareOpened(id, now));
  }

  async ping(): Promise<void> {
    this.run(() => this.db.prepare('SELECT 1').get());
  }

  /** Stops serving calls, once the writes already handed in are committed; the database stays open (its opener closes it). */
  async close(): Promise<void> {
    if (!this.closed && this.db.open) this.writes.flush();
    this.closed = true;
  }

  /**
   * A write: runs in the next group commit (see `GroupCommit`), resolves once committed.
   * Blob holds and claims run at once instead: they commit without an fsync of their own
   * (`SqliteBlobHolds`), which a group's transaction cannot.
   */
  private write<T>(body: () => T): Promise<T> {
    if (this.closed || !this.db.open) throw new UnavailableError('The metadata store is closed.');
    return this.writes.run(() => this.run(body));
  }

  /** Runs a synchronous body; refuses after close() and when the database is closed. */
  private run<T>(body: () => T): T {
    if (this.closed || !this.db.open) throw new UnavailableError('The metadata store is closed.');
    return body();
  }
}

/** A final error of one `commitUploads` item (`FINAL_COMMIT_ERRORS`), with its code. */
class FinalCommitError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
