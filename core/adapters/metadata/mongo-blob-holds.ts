/**
 * Blob holds and deletion claims in MongoDB (`blob_holds`): see `holdBlobs` in the port.
 * Each call is one transaction that first bumps the blob's `blob_locks` document, so a
 * hold and a claim on the same blob always write the same document and cannot both
 * commit on a snapshot that misses the other (write skew); the loser is retried by the
 * driver's transaction loop and then sees the winner.
 */
import type mongoose from 'mongoose';
import type { BlobKeep } from '../../ports/metadata-store.js';
import { op, type BlobKeepDoc, type MetadataModels, type RunTx } from './mongo-models.js';
import type { MongoTree } from './mongo-tree.js';

type Session = mongoose.mongo.ClientSession;

export class MongoBlobHolds {
  constructor(
    private readonly m: MetadataModels,
    private readonly tx: RunTx,
    private readonly tree: MongoTree,
  ) {}

  async hold(holder: string, sha256s: readonly string[], now: Date, until: Date): Promise<boolean> {
    const unique = [...new Set(sha256s)].sort();
    if (unique.length === 0) return true;
    return this.tx(async (session) => {
      await this.lock(unique, session);
      const claimed = await this.m.blobHolds
        .findOne(
          {
            sha256: op({ $in: unique }),
            kind: 'delete',
            holder: op({ $ne: holder }),
            expiresAt: op({ $gt: now }),
          },
          { _id: 1 },
          { session },
        )
        .lean();
      if (claimed !== null) return false;
      // One round trip for the whole batch; `$max` keeps a later expiry already held.
      await this.m.blobHolds.bulkWrite(
        unique.map((sha256) => ({
          updateOne: {
            filter: { _id: `${sha256}:${holder}` },
            update: { $set: { sha256, holder, kind: 'hold' as const }, $max: { expiresAt: until } },
            upsert: true,
          },
        })),
        { session, ordered: false },
      );
      return true;
    });
  }

  async claimDeletion(holder: string, sha256: string, now: Date, until: Date): Promise<boolean> {
    return this.tx(async (session) => {
      await this.lock([sha256], session);
      if (await this.tree.isBlobReferenced(sha256, session, now)) return false;
      const held = await this.m.blobHolds
        .findOne(
          { sha256, holder: op({ $ne: holder }), expiresAt: op({ $gt: now }) },
          { _id: 1 },
          { session },
        )
        .lean();
      if (held !== null) return false;
      await this.m.blobHolds.updateOne(
        { _id: `${sha256}:${holder}` },
        { $set: { sha256, holder, kind: 'delete', expiresAt: until } },
        { upsert: true, session },
      );
      return true;
    });
  }

  async release(holder: string, now: Date): Promise<void> {
    await this.m.blobHolds.deleteMany({ holder });
    await this.m.blobHolds.deleteMany({ expiresAt: op({ $lte: now }) });
  }

  /** See `keepBlob` in the port; `$max` keeps a later expiry already set. */
  async keep(holder: string, sha256: string, until: Date): Promise<void> {
    await this.m.blobKeeps.updateOne(
      { _id: `${sha256}:${holder}` },
      { $set: { sha256, holder }, $max: { expiresAt: until } },
      { upsert: true },
    );
  }

  async listExpiredKeeps(now: Date, limit: number): Promise<BlobKeep[]> {
    const docs = await this.m.blobKeeps
      .find({ expiresAt: op({ $lte: now }) })
      .sort({ expiresAt: 1 })
      .limit(limit)
      .lean<BlobKeepDoc[]>();
    return docs.map((d) => ({ holder: d.holder, sha256: d.sha256, until: d.expiresAt }));
  }

  async dropKeep(holder: string, sha256: string): Promise<void> {
    await this.m.blobKeeps.deleteOne({ _id: `${sha256}:${holder}` });
  }

  private async lock(sha256s: readonly string[], session: Session): Promise<void> {
    await this.m.blobLocks.bulkWrite(
      sha256s.map((_id) => ({
        updateOne: { filter: { _id }, update: { $inc: { version: 1 } }, upsert: true },
      })),
      { session, ordered: true },
    );
  }
}
