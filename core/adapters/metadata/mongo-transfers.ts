/**
 * Upload sessions, the job outbox and shares in MongoDB. The races (offset CAS, finishing
 * an upload, counting a download) are single conditional `findOneAndUpdate`s; finishing
 * also writes the outbox entry in the same transaction.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
import type {
  NewOutboxEntry,
  NewShare,
  NewUploadSession,
  OutboxEntry,
  Share,
  UploadSession,
  UploadStatus,
} from '../../ports/metadata-store.js';
import { toOutbox, toShare, toUpload, translateMongoError } from './mongo-mappers.js';
import {
  op,
  orderedId,
  type MetadataModels,
  type OutboxDoc,
  type RunTx,
  type ShareDoc,
  type UploadDoc,
} from './mongo-models.js';

export class MongoTransfers {
  constructor(
    private readonly m: MetadataModels,
    private readonly tx: RunTx,
    private readonly clock: Clock,
  ) {}

  async createUpload(input: NewUploadSession): Promise<UploadSession> {
    const doc = this.uploadDoc(input, this.clock.now());
    try {
      await this.m.uploads.create(doc);
    } catch (err) {
      translateMongoError(err);
    }
    return toUpload(doc);
  }

  async createUploads(inputs: readonly NewUploadSession[]): Promise<UploadSession[]> {
    const now = this.clock.now();
    const docs = inputs.map((input) => this.uploadDoc(input, now));
    try {
      await this.tx(async (session) => {
        await this.m.uploads.insertMany(docs, { session, ordered: true });
      });
    } catch (err) {
      translateMongoError(err);
    }
    return docs.map(toUpload);
  }

  async finishUploads(ids: readonly string[], job: NewOutboxEntry): Promise<UploadSession[]> {
    return this.tx(async (session) => {
      const now = this.clock.now();
      const moved: UploadSession[] = [];
      for (const id of ids) {
        const found = await this.m.uploads
          .findOne({ _id: id, status: 'receiving' }, null, { session })
          .lean<UploadDoc>();
        if (!found) continue;
        const doc = await this.m.uploads
          .findOneAndUpdate(
            { _id: id, status: 'receiving' },
            { $set: { status: 'processing', offset: found.length, updatedAt: now } },
            { session, returnDocument: 'after' },
          )
          .lean<UploadDoc>();
        if (doc) moved.push(toUpload(doc));
      }
      if (moved.length > 0) await this.m.outbox.create([outboxDoc(job, now)], { session });
      return moved;
    });
  }

  async listBatchUploads(uploaderId: string, batchId: string): Promise<UploadSession[]> {
    const docs = await this.m.uploads
      .find({ batchId, uploaderId })
      .sort({ batchIndex: 1 })
      .lean<UploadDoc[]>();
    return docs.map(toUpload);
  }

  async countBatchPending(uploaderId: string, batchId: string): Promise<number | null> {
    const [total, pending] = await Promise.all([
      this.m.uploads.countDocuments({ batchId, uploaderId }),
      this.m.uploads.countDocuments({ batchId, uploaderId, status: { $in: ['receiving', 'processing'] } }),
    ]);
    return total === 0 ? null : pending;
  }

  private uploadDoc(input: NewUploadSession, now: Date): UploadDoc {
    return {
      _id: input.id,
      ownerId: input.ownerId,
      uploaderId: input.uploaderId,
      parentId: input.parentId,
      name: input.name,
      length: input.length,
      offset: 0,
      sha256: input.sha256,
      mtime: input.mtime,
      baseRevision: input.baseRevision,
      metadata: { ...input.metadata },
      status: 'receiving',
      error: null,
      fileId: null,
      batchId: input.batchId ?? null,
      batchIndex: input.batchIndex ?? null,
      createdAt: now,
      updatedAt: now,
      expiresAt: input.expiresAt,
    };
  }

  async getUpload(uploaderId: string, id: string): Promise<UploadSession | null> {
    // Documents from before `uploaderId` existed were uploaded by their owner.
    const doc = await this.m.uploads
      .findOne({
        _id: id,
        $or: [{ uploaderId }, { uploaderId: op({ $exists: false }), ownerId: uploaderId }],
      })
      .lean<UploadDoc>();
    return doc ? toUpload(doc) : null;
  }

  async getUploadById(id: string): Promise<UploadSession | null> {
    const doc = await this.m.uploads.findOne({ _id: id }).lean<UploadDoc>();
    return doc ? toUpload(doc) : null;
  }

  async advanceUpload(id: string, from: number, to: number): Promise<UploadSession | null> {
    if (to < from) return null;
    const doc = await this.m.uploads
      .findOneAndUpdate(
        { _id: id, offset: from, status: 'receiving', length: op({ $gte: to }) },
        { $set: { offset: to, updatedAt: this.clock.now() } },
        { returnDocument: 'after' },
      )
      .lean<UploadDoc>();
    return doc ? toUpload(doc) : null;
  }

  async finishUpload(id: string, job: NewOutboxEntry): Promise<UploadSession | null> {
    return this.tx(async (session) => {
      const now = this.clock.now();
      const doc = await this.m.uploads
        .findOneAndUpdate(
          { _id: id, status: 'receiving', $expr: op({ $eq: ['$offset', '$length'] }) },
          { $set: { status: 'processing', updatedAt: now } },
          { session, returnDocument: 'after' },
        )
        .lean<UploadDoc>();
      if (!doc) return null;
      await this.m.outbox.create([outboxDoc(job, now)], { session });
      return toUpload(doc);
    });
  }

  async setUploadStatus(
    id: string,
    status: UploadStatus,
    fields: { error?: string | null; fileId?: string | null; revision?: number | null; sha256?: string } = {},
  ): Promise<UploadSession | null> {
    const set: Partial<UploadDoc> = { status, updatedAt: this.clock.now() };
    if (fields.error !== undefined) set.error = fields.error;
    if (fields.fileId !== undefined) set.fileId = fields.fileId;
    if (fields.revision !== undefined) set.revision = fields.revision;
    if (fields.sha256 !== undefined) set.sha256 = fields.sha256;
    const doc = await this.m.uploads
      .findOneAndUpdate({ _id: id }, { $set: set }, { returnDocument: 'after' })
      .lean<UploadDoc>();
    return doc ? toUpload(doc) : null;
  }

  async listExpiredUploads(now: Date, limit: number): Promise<UploadSession[]> {
    const docs = await this.m.uploads
      .find({ status: 'receiving', expiresAt: op({ $lt: now }) })
      .sort({ expiresAt: 1, _id: 1 })
      .limit(Math.max(1, Math.floor(limit)))
      .lean<UploadDoc[]>();
    return docs.map(toUpload);
  }

  async addOutbox(job: NewOutboxEntry): Promise<OutboxEntry> {
    const doc = outboxDoc(job, this.clock.now());
    await this.m.outbox.create(doc);
    return toOutbox(doc);
  }

  async listOutbox(limit: number): Promise<OutboxEntry[]> {
    const docs = await this.m.outbox
      .find({})
      .sort({ createdAt: 1, _id: 1 })
      .limit(Math.max(1, Math.floor(limit)))
      .lean<OutboxDoc[]>();
    return docs.map(toOutbox);
  }

  async deleteOutbox(id: string): Promise<void> {
    await this.m.outbox.deleteOne({ _id: id });
  }

  /** Throws `NotFoundError` when the node is not the owner's. */
  async createShare(input: NewShare): Promise<Share> {
    const node = await this.m.nodes.exists({ _id: input.nodeId, ownerId: input.ownerId });
    if (!node) throw new NotFoundError('No such item.');
    const doc: ShareDoc = {
      _id: randomUUID(),
      ownerId: input.ownerId,
      nodeId: input.nodeId,
      tokenHash: input.tokenHash,
      granteeId: input.granteeId,
      role: input.role,
      passwordHash: input.passwordHash,
      expiresAt: input.expiresAt,
      maxDownloads: input.maxDownloads,
      downloads: 0,
      revokedAt: null,
      createdAt: this.clock.now(),
    };
    try {
      await this.m.shares.create(doc);
    } catch (err) {
      translateMongoError(err);
    }
    return toShare(doc);
  }

  async getShare(ownerId: string, id: string): Promise<Share | null> {
    const doc = await this.m.shares.findOne({ _id: id, ownerId }).lean<ShareDoc>();
    return doc ? toShare(doc) : null;
  }

  async getShareByTokenHash(tokenHash: string): Promise<Share | null> {
    const doc = await this.m.shares.findOne({ tokenHash }).lean<ShareDoc>();
    return doc ? toShare(doc) : null;
  }

  async listShares(ownerId: string): Promise<Share[]> {
    const docs = await this.m.shares.find({ ownerId }).sort({ createdAt: -1, _id: 1 }).lean<ShareDoc[]>();
    return docs.map(toShare);
  }

  async listSharesWithUser(granteeId: string): Promise<Share[]> {
    const docs = await this.m.shares
      .find({ granteeId, revokedAt: null })
      .sort({ createdAt: -1, _id: 1 })
      .lean<ShareDoc[]>();
    return docs.map(toShare);
  }

  async revokeShare(ownerId: string, id: string, now: Date): Promise<boolean> {
    const result = await this.m.shares.updateOne(
      { _id: id, ownerId, revokedAt: null },
      { $set: { revokedAt: now } },
    );
    return result.modifiedCount > 0;
  }

  /** One conditional update: refused when revoked, expired or at `maxDownloads`. */
  async recordShareDownload(id: string): Promise<Share | null> {
    const now = this.clock.now();
    const doc = await this.m.shares
      .findOneAndUpdate(
        {
          _id: id,
          revokedAt: null,
          $and: [
            { $or: [{ expiresAt: null }, { expiresAt: op({ $gt: now }) }] },
            { $or: [{ maxDownloads: null }, { $expr: op({ $lt: ['$downloads', '$maxDownloads'] }) }] },
          ],
        },
        { $inc: { downloads: 1 } },
        { returnDocument: 'after' },
      )
      .lean<ShareDoc>();
    return doc ? toShare(doc) : null;
  }
  async markShareOpened(id: string, now: Date): Promise<boolean> {
    const result = await this.m.shares.updateOne({ _id: id, openedAt: null }, { $set: { openedAt: now } });
    return result.modifiedCount > 0;
  }
}

function outboxDoc(job: NewOutboxEntry, now: Date): OutboxDoc {
  return {
    _id: orderedId(),
    queue: job.queue,
    payload: job.payload,
    idempotencyKey: job.idempotencyKey,
    priority: job.priority,
    createdAt: now,
  };
}
