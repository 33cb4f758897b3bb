/**
 * `MongoMetadataStore`: the MetadataStore on MongoDB 7 via mongoose, for the distributed
 * setup. It needs a replica set (a single-node one in compose) because every method that
 * changes several documents runs in one transaction. It owns its connection
 * (`mongoose.createConnection`, never the global singleton) and closes it in `close()`.
 *
 * Filters are sanitised (`sanitizeFilter`): a value that is an object with `$` keys is
 * matched literally, so an id taken from a request can never become a query operator.
 */
import mongoose, { type Connection } from 'mongoose';
import { UnavailableError } from '../../../contract/errors.js';
import { systemClock, type Clock } from '../../domain/clock.js';
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
import { MongoAccounts } from './mongo-accounts.js';
import { toTranscode, translateMongoError } from './mongo-mappers.js';
import { listNotifications, markNotificationsRead } from './mongo-feed.js';
import { defineModels, type MetadataModels, type RunTx, type TranscodeDoc } from './mongo-models.js';
import { finalCommitError } from './shared.js';
import { MongoTransfers } from './mongo-transfers.js';
import { MongoBlobHolds } from './mongo-blob-holds.js';
import { MongoTrash } from './mongo-trash.js';
import { MongoTree } from './mongo-tree.js';

export class MongoMetadataStore implements MetadataStore {
  private readonly accounts: MongoAccounts;
  private readonly tree: MongoTree;
  private readonly trash: MongoTrash;
  private readonly transfers: MongoTransfers;
  private readonly blobHolds: MongoBlobHolds;
  private readonly models: MetadataModels;

  private constructor(
    private readonly conn: Connection,
    models: MetadataModels,
    clock: Clock,
  ) {
    const tx: RunTx = (fn) => conn.transaction(fn);
    this.models = models;
    this.accounts = new MongoAccounts(models, tx, clock);
    this.tree = new MongoTree(models, tx, clock);
    this.trash = new MongoTrash(models, tx, clock, this.tree);
    this.transfers = new MongoTransfers(models, tx, clock);
    this.blobHolds = new MongoBlobHolds(models, tx, this.tree);
  }

  /**
   * Connects, registers the models and builds their indexes (the unique rules must exist
   * before the first write). Throws `UnavailableError` when the server cannot be reached.
   */
  static async connect(
    uri: string,
    options: { clock?: Clock; dbName?: string } = {},
  ): Promise<MongoMetadataStore> {
    const conn = mongoose.createConnection(uri, {
      ...(options.dbName === undefined ? {} : { dbName: options.dbName }),
      sanitizeFilter: true,
      autoIndex: false,
      serverSelectionTimeoutMS: 10_000,
    });
    try {
      await conn.asPromise();
      const models = defineModels(conn);
      for (const model of Object.values(models)) {
        // Collections must exist before a transaction writes to them; indexes carry the unique rules.
        await model.createCollection();
        await model.syncIndexes();
      }
      return new MongoMetadataStore(conn, models, options.clock ?? systemClock);
    } catch (err) {
      await conn.close().catch(() => undefined);
      throw new UnavailableError('Cannot connect to MongoDB.', err);
    }
  }

  async createUser(input: NewUser): Promise<User> {
    return this.call(() => this.accounts.createUser(input));
  }
  async getUserById(id: string): Promise<User | null> {
    return this.call(() => this.accounts.getUserById(id));
  }
  async getUserByEmail(email: string): Promise<User | null> {
    return this.call(() => this.accounts.getUserByEmail(email));
  }
  async updateUser(id: string, patch: UserPatch): Promise<User> {
    return this.call(() => this.accounts.updateUser(id, patch));
  }

  async createRefreshSession(input: NewRefreshSession): Promise<RefreshSession> {
    return this.call(() => this.accounts.createRefreshSession(input));
  }
  async rotateRefreshSession(
    tokenHash: string,
    next: { tokenHash: string; expiresAt: Date },
    now: Date,
  ): Promise<RotateResult> {
    return this.call(() => this.accounts.rotateRefreshSession(tokenHash, next, now));
  }
  async getRefreshSessionByHash(tokenHash: string): Promise<RefreshSession | null> {
    return this.call(() => this.accounts.getRefreshSessionByHash(tokenHash));
  }
  async isSessionFamilyActive(familyId: string, now: Date): Promise<boolean> {
    return this.call(() => this.accounts.isSessionFamilyActive(familyId, now));
  }
  async revokeSessionFamily(familyId: string, now: Date): Promise<void> {
    return this.call(() => this.accounts.revokeSessionFamily(familyId, now));
  }
  async revokeAllSessions(userId: string, now: Date): Promise<void> {
    return this.call(() => this.accounts.revokeAllSessions(userId, now));
  }

  async createApiToken(input: NewApiToken): Promise<ApiToken> {
    return this.call(() => this.accounts.createApiToken(input));
  }
  async listApiTokens(userId: string): Promise<ApiToken[]> {
    return this.call(() => this.accounts.listApiTokens(userId));
  }
  async getApiTokenByHash(tokenHash: string): Promise<ApiToken | null> {
    return this.call(() => this.accounts.getApiTokenByHash(tokenHash));
  }
  async revokeApiToken(userId: string, id: string, now: Date): Promise<boolean> {
    return this.call(() => this.accounts.revokeApiToken(userId, id, now));
  }
  async touchApiToken(id: string, now: Date): Promise<void> {
    return this.call(() => this.accounts.touchApiToken(id, now));
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    return this.call(() => this.accounts.appendAudit(entry));
  }
  async listAudit(
    userId: string,
    options: { limit: number; cursor?: string | null },
  ): Promise<Page<AuditEntry>> {
    return this.call(() => this.accounts.listAudit(userId, options));
  }

  async getNode(ownerId: string, id: string): Promise<TreeNode | null> {
    return this.call(() => this.tree.getNode(ownerId, id));
  }
  async findChild(ownerId: string, parentId: string | null, name: string): Promise<TreeNode | null> {
    return this.call(() => this.tree.findChild(ownerId, parentId, name));
  }
  async findPath(ownerId: string, parentId: string | null, names: readonly string[]): Promise<TreeNode[]> {
    return this.call(async () => {
      const nodes: TreeNode[] = [];
      let at = parentId;
      for (const name of names) {
        const node = await this.tree.findChild(ownerId, at, name);
        if (!node) break;
        nodes.push(node);
        if (node.kind !== 'folder') break;
        at = node.id;
      }
      return nodes;
    });
  }
  async listChildren(
    ownerId: string,
    parentId: string | null,
    options?: ListOptions,
  ): Promise<Page<TreeNode>> {
    return this.call(() => this.tree.listChildren(ownerId, parentId, options));
  }
  async createFolder(ownerId: string, parentId: string | null, name: string): Promise<TreeNode> {
    return this.call(() => this.tree.createFolder(ownerId, parentId, name));
  }
  async commitFile(input: CommitFileInput): Promise<CommitFileResult> {
    return this.call(() => this.tree.commitFile(input));
  }
  async listRevisions(ownerId: string, fileId: string): Promise<FileRevision[]> {
    return this.call(() => this.tree.listRevisions(ownerId, fileId));
  }
  async moveNode(ownerId: string, id: string, parentId: string | null, name: string): Promise<TreeNode> {
    return this.call(() => this.tree.moveNode(ownerId, id, parentId, name));
  }
  async trashNode(ownerId: string, id: string, now: Date): Promise<TreeNode> {
    return this.call(() => this.trash.trashNode(ownerId, id, now));
  }
  async restoreNode(ownerId: string, id: string): Promise<TreeNode> {
    return this.call(() => this.trash.restoreNode(ownerId, id));
  }
  async purgeNode(ownerId: string, id: string): Promise<{ droppedBlobs: string[] }> {
    return this.call(() => this.trash.purgeNode(ownerId, id));
  }
  async listTrashedBefore(before: Date, limit: number): Promise<TreeNode[]> {
    return this.call(() => this.trash.listTrashedBefore(before, limit));
  }
  async isBlobReferenced(sha256: string): Promise<boolean> {
    return this.call(() => this.tree.isBlobReferenced(sha256));
  }
  async holdBlobs(holder: string, sha256s: readonly string[], now: Date, until: Date): Promise<boolean> {
    return this.call(() => this.blobHolds.hold(holder, sha256s, now, until));
  }
  async claimBlobDeletion(holder: string, sha256: string, now: Date, until: Date): Promise<boolean> {
    return this.call(() => this.blobHolds.claimDeletion(holder, sha256, now, until));
  }
  async releaseBlobs(holder: string, now: Date): Promise<void> {
    return this.call(() => this.blobHolds.release(holder, now));
  }
  async findFileBySha256(ownerId: string, sha256: string): Promise<TreeNode | null> {
    return this.call(() => this.tree.findFileBySha256(ownerId, sha256));
  }

  async putTranscode(record: TranscodeRecord): Promise<void> {
    const { sha256, ...rest } = record;
    await this.call(() =>
      this.models.transcodes.updateOne({ _id: sha256 }, { $set: rest }, { upsert: true }).exec(),
    );
  }
  async getTranscode(sha256: string): Promise<TranscodeRecord | null> {
    const doc = await this.call(() => this.models.transcodes.findById(sha256).lean<TranscodeDoc>().exec());
    return doc ? toTranscode(doc) : null;
  }
  async keepBlob(holder: string, sha256: string, until: Date): Promise<void> {
    return this.call(() => this.blobHolds.keep(holder, sha256, until));
  }
  async listExpiredBlobKeeps(now: Date, limit: number): Promise<BlobKeep[]> {
    return this.call(() => this.blobHolds.listExpiredKeeps(now, limit));
  }
  async dropBlobKeep(holder: string, sha256: string): Promise<void> {
    return this.call(() => this.blobHolds.dropKeep(holder, sha256));
  }
  async deleteTranscode(sha256: string): Promise<TranscodeRecord | null> {
    const doc = await this.call(() =>
      this.models.transcodes.findOneAndDelete({ _id: sha256 }).lean<TranscodeDoc>().exec(),
    );
    return doc ? toTranscode(doc) : null;
  }

  async listChanges(ownerId: string, cursor: number, limit: number): Promise<Change[]> {
    return this.call(() => this.tree.listChanges(ownerId, cursor, limit));
  }
  async latestChangeSeq(ownerId: string): Promise<number> {
    return this.call(() => this.tree.latestChangeSeq(ownerId));
  }
  async appendChange(
    ownerId: string,
    kind: ChangeKind,
    nodeId: string | null,
    data: Record<string, unknown>,
  ): Promise<Change> {
    return this.call(() => this.tree.appendChange(ownerId, kind, nodeId, data));
  }
  async listNotifications(
    ownerId: string,
    options: { unreadOnly?: boolean; limit: number; cursor?: string | null },
  ): Promise<Page<Notification>> {
    return this.call(() => listNotifications(this.models, ownerId, options));
  }
  async markNotificationsRead(ownerId: string, seqs: readonly number[] | 'all', now: Date): Promise<number> {
    return this.call(() => markNotificationsRead(this.models, ownerId, seqs, now));
  }

  async createUpload(input: NewUploadSession): Promise<UploadSession> {
    return this.call(() => this.transfers.createUpload(input));
  }
  async getUpload(uploaderId: string, id: string): Promise<UploadSession | null> {
    return this.call(() => this.transfers.getUpload(uploaderId, id));
  }
  async getUploadById(id: string): Promise<UploadSession | null> {
    return this.call(() => this.transfers.getUploadById(id));
  }
  async advanceUpload(id: string, from: number, to: number): Promise<UploadSession | null> {
    return this.call(() => this.transfers.advanceUpload(id, from, to));
  }
  async finishUpload(id: string, job: NewOutboxEntry): Promise<UploadSession | null> {
    return this.call(() => this.transfers.finishUpload(id, job));
  }
  async createUploads(inputs: readonly NewUploadSession[]): Promise<UploadSession[]> {
    return this.call(() => this.transfers.createUploads(inputs));
  }
  async finishUploads(ids: readonly string[], job: NewOutboxEntry): Promise<UploadSession[]> {
    return this.call(() => this.transfers.finishUploads(ids, job));
  }
  async listBatchUploads(uploaderId: string, batchId: string): Promise<UploadSession[]> {
    return this.call(() => this.transfers.listBatchUploads(uploaderId, batchId));
  }
  async countBatchPending(uploaderId: string, batchId: string): Promise<number | null> {
    return this.call(() => this.transfers.countBatchPending(uploaderId, batchId));
  }
  /**
   * Item by item, each commit its own transaction (MongoDB has no savepoints): not atomic
   * across items, but every step is idempotent by upload id, so a retried job finishes
   * what a crash left half done.
   */
  async commitUploads(items: readonly CommitUploadInput[]): Promise<CommitUploadOutcome[]> {
    return this.call(async () => {
      const outcomes: CommitUploadOutcome[] = [];
      for (const item of items) {
        let result: CommitFileResult;
        try {
          result = await this.tree.commitFile(item.file);
        } catch (err) {
          const code = finalCommitError(err);
          if (code === null) throw err;
          const message = err instanceof Error ? err.message : code;
          await this.transfers.setUploadStatus(item.uploadId, 'failed', { error: code });
          await this.accounts.appendAudit({
            ...item.audit,
            action: 'file.upload_failed',
            details: { uploadId: item.uploadId, ownerId: item.file.ownerId, error: code, message },
          });
          outcomes.push({ ok: false, code, message });
          continue;
        }
        if (!result.duplicate) {
          await this.accounts.appendAudit({
            ...item.audit,
            details: { ...item.audit.details, fileId: result.node.id, revision: result.revision.revision },
          });
        }
        await this.transfers.setUploadStatus(item.uploadId, 'ready', {
          fileId: result.node.id,
          revision: result.revision.revision,
          error: null,
        });
        outcomes.push({ ok: true, result });
      }
      return outcomes;
    });
  }
  async setUploadStatus(
    id: string,
    status: UploadStatus,
    fields?: { error?: string | null; fileId?: string | null; revision?: number | null; sha256?: string },
  ): Promise<UploadSession | null> {
    return this.call(() => this.transfers.setUploadStatus(id, status, fields));
  }
  async listExpiredUploads(now: Date, limit: number): Promise<UploadSession[]> {
    return this.call(() => this.transfers.listExpiredUploads(now, limit));
  }
  async addOutbox(job: NewOutboxEntry): Promise<OutboxEntry> {
    return this.call(() => this.transfers.addOutbox(job));
  }
  async listOutbox(limit: number): Promise<OutboxEntry[]> {
    return this.call(() => this.transfers.listOutbox(limit));
  }
  async deleteOutbox(id: string): Promise<void> {
    return this.call(() => this.transfers.deleteOutbox(id));
  }

  async createShare(input: NewShare): Promise<Share> {
    return this.call(() => this.transfers.createShare(input));
  }
  async getShare(ownerId: string, id: string): Promise<Share | null> {
    return this.call(() => this.transfers.getShare(ownerId, id));
  }
  async getShareByTokenHash(tokenHash: string): Promise<Share | null> {
    return this.call(() => this.transfers.getShareByTokenHash(tokenHash));
  }
  async listShares(ownerId: string): Promise<Share[]> {
    return this.call(() => this.transfers.listShares(ownerId));
  }
  async listSharesWithUser(granteeId: string): Promise<Share[]> {
    return this.call(() => this.transfers.listSharesWithUser(granteeId));
  }
  async revokeShare(ownerId: string, id: string, now: Date): Promise<boolean> {
    return this.call(() => this.transfers.revokeShare(ownerId, id, now));
  }
  async recordShareDownload(id: string): Promise<Share | null> {
    return this.call(() => this.transfers.recordShareDownload(id));
  }
  async markShareOpened(id: string, now: Date): Promise<boolean> {
    return this.call(() => this.transfers.markShareOpened(id, now));
  }

  async ping(): Promise<void> {
    const db = this.conn.db;
    if (!db) throw new UnavailableError('MongoDB is not connected.');
    await this.call(() => db.command({ ping: 1 }));
  }

  async close(): Promise<void> {
    await this.conn.close();
  }

  /** Runs `body`, translating driver errors (E11000, lost server) to the error table. */
  private async call<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      translateMongoError(err);
    }
  }
}
