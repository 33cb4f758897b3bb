/**
 * Trash in MongoDB, with the same batch rule as SQLite: trashing marks the node and its
 * live subtree with `trashRoot` = the node, restore brings back exactly that batch, and
 * purge deletes the whole subtree with its revisions and shares. One transaction each.
 */
import type mongoose from 'mongoose';
import { ConflictError, NotFoundError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
import type { TreeNode } from '../../ports/metadata-store.js';
import { toNode, translateMongoError } from './mongo-mappers.js';
import { op, type MetadataModels, type NodeDoc, type RunTx } from './mongo-models.js';
import type { MongoTree } from './mongo-tree.js';
import { nodeSnapshot } from './shared.js';

type Session = mongoose.mongo.ClientSession;

export class MongoTrash {
  constructor(
    private readonly m: MetadataModels,
    private readonly tx: RunTx,
    private readonly clock: Clock,
    private readonly tree: MongoTree,
  ) {}

  /** Idempotent: a node already in the trash is returned unchanged. */
  async trashNode(ownerId: string, id: string, now: Date): Promise<TreeNode> {
    return this.tx(async (session) => {
      const doc = await this.tree.nodeDoc(ownerId, id, session);
      if (!doc) throw new NotFoundError('No such item.');
      if (!doc.live) return toNode(doc);
      // Descends only through live entries: a subfolder trashed earlier keeps its own batch.
      const ids = await this.descendants(session, ownerId, [id], { live: true });
      const set = { live: false, trashedAt: now, trashRoot: id, updatedAt: now };
      await this.m.nodes.updateMany({ _id: op({ $in: ids }) }, { $set: set }, { session });
      const node = toNode({ ...doc, ...set });
      await this.tree.appendChangeTx(session, ownerId, 'delete', id, nodeSnapshot(node), now);
      return node;
    });
  }

  /**
   * Restores the node and the part of its subtree trashed with it; into the root when
   * its parent is still in the trash. `NAME_CONFLICT` when the name was taken meanwhile.
   */
  async restoreNode(ownerId: string, id: string): Promise<TreeNode> {
    try {
      return await this.tx(async (session) => {
        const now = this.clock.now();
        const doc = await this.tree.nodeDoc(ownerId, id, session);
        if (!doc) throw new NotFoundError('No such item.');
        if (doc.live) return toNode(doc);
        let parentId = doc.parentId;
        if (parentId !== null) {
          const parent = await this.tree.nodeDoc(ownerId, parentId, session);
          if (!parent || !parent.live) parentId = null;
        }
        const set = {
          parentId,
          parentKey: parentId ?? '',
          live: true,
          trashedAt: null,
          trashRoot: null,
          updatedAt: now,
        };
        await this.m.nodes.updateOne({ _id: id }, { $set: set }, { session });
        const batch = await this.descendants(session, ownerId, [id], { trashRoot: doc.trashRoot });
        const children = batch.filter((b) => b !== id);
        if (children.length > 0) {
          await this.m.nodes.updateMany(
            { _id: op({ $in: children }) },
            { $set: { live: true, trashedAt: null, trashRoot: null, updatedAt: now } },
            { session },
          );
        }
        const node = toNode({ ...doc, ...set });
        await this.tree.appendChangeTx(session, ownerId, 'restore', id, nodeSnapshot(node), now);
        return node;
      });
    } catch (err) {
      translateMongoError(err, 'NAME_CONFLICT');
    }
  }

  /** Deletes a trashed subtree for good; `CONFLICT` for a node not in the trash. */
  async purgeNode(ownerId: string, id: string): Promise<{ droppedBlobs: string[] }> {
    return this.tx(async (session) => {
      const now = this.clock.now();
      const doc = await this.tree.nodeDoc(ownerId, id, session);
      if (!doc) throw new NotFoundError('No such item.');
      if (doc.live) throw new ConflictError('CONFLICT', 'Only items in the trash can be purged.');
      const ids = await this.descendants(session, ownerId, [id], {});
      const blobs = (await this.m.revisions
        .distinct('sha256', { fileId: op({ $in: ids }) })
        .session(session)) as string[];
      const files = await this.m.nodes
        .find({ _id: op({ $in: ids }), kind: 'file' }, { size: 1 }, { session })
        .lean<Pick<NodeDoc, 'size'>[]>();
      const bytes = files.reduce((sum, f) => sum + f.size, 0);
      await this.m.revisions.deleteMany({ fileId: op({ $in: ids }) }, { session });
      await this.m.shares.deleteMany({ nodeId: op({ $in: ids }) }, { session });
      await this.m.nodes.deleteMany({ _id: op({ $in: ids }) }, { session });
      await this.m.users.updateOne(
        { _id: ownerId },
        { $inc: { storageUsed: -bytes }, $set: { updatedAt: now } },
        { session },
      );
      await this.tree.appendChangeTx(
        session,
        ownerId,
        'purge',
        id,
        { name: doc.name, parentId: doc.parentId, kind: doc.kind },
        now,
      );
      return { droppedBlobs: [...blobs].sort() };
    });
  }

  /** Nodes trashed on their own (not with a parent) before `before`, oldest first, any owner. */
  async listTrashedBefore(before: Date, limit: number): Promise<TreeNode[]> {
    const docs = await this.m.nodes
      .find({ live: false, trashedAt: op({ $lt: before }), $expr: op({ $eq: ['$trashRoot', '$_id'] }) })
      .sort({ trashedAt: 1, _id: 1 })
      .limit(Math.max(1, Math.floor(limit)))
      .lean<NodeDoc[]>();
    return docs.map(toNode);
  }

  /** `roots` plus every descendant reached through children matching `where` (breadth first). */
  private async descendants(
    session: Session,
    ownerId: string,
    roots: string[],
    where: Record<string, unknown>,
  ): Promise<string[]> {
    const all = [...roots];
    let frontier = roots;
    while (frontier.length > 0) {
      const children = await this.m.nodes
        .find({ ownerId, parentId: op({ $in: frontier }), ...where }, { _id: 1 }, { session })
        .lean<{ _id: string }[]>();
      frontier = children.map((c) => c._id);
      all.push(...frontier);
    }
    return all;
  }
}
