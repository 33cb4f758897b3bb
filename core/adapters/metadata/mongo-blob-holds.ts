/**
 * Blob holds and deletion claims in MongoDB (`blob_holds`): see `holdBlobs` in the port.
 * Each call is one transaction that first bumps the blob's `blob_locks` document, so a
 * hold and a claim on the same blob always write the same document and cannot both
 * commit on a snapshot that misses the other (write skew); the loser is retried by the
 * driver's transaction loop and then sees the winner.
 */
import type mongoose from 'mongoose';
import { op, type MetadataModels, type RunTx } from './mongo-models.js';

type Session = mongoose.mongo.ClientSession;

export class MongoBlobHolds {
  constructor(
    private readonly m: MetadataModels,
    private readonly tx: RunTx,
  ) {}

  async hold(holder: string, sha256s: readonly string[], now: Date, until: Date): Promise<boolean> {
    const unique = [...new Set(sha256s)];
    return this.tx(async (session) => {
      for (const sha256 of unique) await this.lock(sha256, session);
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
      for (const sha256 of unique) {
        const _id = `${sha256}:${holder}`;
        const current = await this.m.blobHolds.findById(_id, null, { session }).lean();
        const expiresAt =
          current && current.kind === 'hold' && current.expiresAt > until ? current.expiresAt : until;
        await this.m.blobHolds.updateOne(
          { _id },
          { $set: { sha256, holder, kind: 'hold', expiresAt } },
          { upsert: true, session },
        );
      }
      return true;
    });
  }

  async claimDeletion(holder: string, sha256: string, now: Date, until: Date): Promise<boolean> {
    return this.tx(async (session) => {
      await this.lock(sha256, session);
      if ((await this.m.revisions.findOne({ sha256 }, { _id: 1 }, { session }).lean()) !== null) return false;
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

  private async lock(sha256: string, session: Session): Promise<void> {
    await this.m.blobLocks.updateOne({ _id: sha256 }, { $inc: { version: 1 } }, { upsert: true, session });
  }
}
