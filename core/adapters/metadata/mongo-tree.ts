/**
 * The file tree and change feed in MongoDB. Each mutation is one transaction that also
 * bumps the owner's `changeSeq` and inserts the change: concurrent writers conflict on
 * the user document, so MongoDB serialises them and a reader never sees seq N+1 before
 * seq N has committed.
 */
import type mongoose from 'mongoose';
import { uuidv7 } from '../../domain/ids.js';
import { ConflictError, NotFoundError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
import { nameKey } from '../../domain/names.js';
import type {
  Change,
  ChangeKind,
  CommitFileInput,
  CommitFileResult,
  FileRevision,
  ListOptions,
  Page,
  TreeNode,
} from '../../ports/metadata-store.js';
import { grantsCovering } from './mongo-feed.js';
import { toChange, toNode, toRevision, translateMongoError } from './mongo-mappers.js';
import {
  op,
  type ChangeDoc,
  type MetadataModels,
  type NodeDoc,
  type RevisionDoc,
  type RunTx,
} from './mongo-models.js';
import {
  DEFAULT_KEEP_REVISIONS,
  decodeChildCursor,
  encodeChildCursor,
  nodeSnapshot,
  pageLimit,
  sortKeyOf,
} from './shared.js';

type Session = mongoose.mongo.ClientSession;

const SORT_FIELD = { name: 'nameKey', size: 'size', mtime: 'mtimeKey' } as const;

export class MongoTree {
  constructor(
    private readonly m: MetadataModels,
    private readonly tx: RunTx,
    private readonly clock: Clock,
  ) {}

  /**
   * Appends a change inside `session`'s transaction, and a copy to the feed of every
   * user the node is shared with (see `MetadataStore.appendChange`). Throws
   * `NotFoundError` for an unknown owner.
   */
  async appendChangeTx(
    session: Session,
    ownerId: string,
    kind: ChangeKind,
    nodeId: string | null,
    data: Record<string, unknown>,
    now: Date,
  ): Promise<Change> {
    const change = await this.insertChange(session, ownerId, kind, nodeId, data, now);
    if (kind !== 'notify' && nodeId !== null) {
      const from = (data.from as { parentId?: unknown } | undefined)?.parentId;
      const grants = await grantsCovering(this.m, session, ownerId, [
        nodeId,
        typeof from === 'string' ? from : null,
      ]);
      for (const grant of grants) {
        const copy = { ...data, share: { id: grant.id, ownerId } };
        await this.insertChange(session, grant.granteeId, kind, nodeId, copy, now);
      }
    }
    return change;
  }

  private async insertChange(
    session: Session,
    ownerId: string,
    kind: ChangeKind,
    nodeId: string | null,
    data: Record<string, unknown>,
    now: Date,
  ): Promise<Change> {
    const user = await this.m.users
      .findOneAndUpdate({ _id: ownerId }, { $inc: { changeSeq: 1 } }, { session, returnDocument: 'after' })
      .lean();
    if (!user) throw new NotFoundError('No such user.');
    const doc: ChangeDoc = {
      _id: `${ownerId}:${user.changeSeq}`,
      ownerId,
      seq: user.changeSeq,
      kind,
      nodeId,
      data,
      createdAt: now,
      readAt: null,
    };
    await this.m.changes.create([doc], { session });
    return toChange(doc);
  }

  async appendChange(
    ownerId: string,
    kind: ChangeKind,
    nodeId: string | null,
    data: Record<string, unknown>,
  ): Promise<Change> {
    return this.tx((session) => this.appendChangeTx(session, ownerId, kind, nodeId, data, this.clock.now()));
  }

  async listChanges(ownerId: string, cursor: number, limit: number): Promise<Change[]> {
    const docs = await this.m.changes
      .find({ ownerId, seq: op({ $gt: Math.max(0, Math.floor(cursor)) }) })
      .sort({ seq: 1 })
      .limit(Math.max(1, Math.floor(limit)))
      .lean<ChangeDoc[]>();
    return docs.map(toChange);
  }

  async latestChangeSeq(ownerId: string): Promise<number> {
    const user = await this.m.users.findOne({ _id: ownerId }, { changeSeq: 1 }).lean();
    return user?.changeSeq ?? 0;
  }

  async getNode(ownerId: string, id: string): Promise<TreeNode | null> {
    const doc = await this.nodeDoc(ownerId, id);
    return doc ? toNode(doc) : null;
  }

  async findChild(ownerId: string, parentId: string | null, name: string): Promise<TreeNode | null> {
    const doc = await this.m.nodes
      .findOne({ ownerId, parentKey: parentId ?? '', nameKey: nameKey(name), live: true })
      .lean<NodeDoc>();
    return doc ? toNode(doc) : null;
  }

  /** Keyset pagination over (sort key, _id). Throws `NotFoundError` when `parentId` is not a folder of the owner. */
  async listChildren(
    ownerId: string,
    parentId: string | null,
    options: ListOptions = {},
  ): Promise<Page<TreeNode>> {
    const sort = options.sort ?? 'name';
    const order = options.order ?? 'asc';
    const limit = pageLimit(options.limit);
    if (parentId !== null) {
      const parent = await this.nodeDoc(ownerId, parentId);
      if (!parent || parent.kind !== 'folder') throw new NotFoundError('No such folder.');
    }
    const field = SORT_FIELD[sort];
    const filter: Record<string, unknown> = { ownerId, parentKey: parentId ?? '' };
    if (!options.includeTrashed) filter.live = true;
    if (options.cursor) {
      const c = decodeChildCursor(options.cursor, sort, order);
      const cmp = order === 'asc' ? '$gt' : '$lt';
      filter.$or = [{ [field]: op({ [cmp]: c.key }) }, { [field]: c.key, _id: op({ [cmp]: c.id }) }];
    }
    const dir = order === 'asc' ? 1 : -1;
    const docs = await this.m.nodes
      .find(filter)
      .sort({ [field]: dir, _id: dir })
      .limit(limit + 1)
      .lean<NodeDoc[]>();
    const items = docs.slice(0, limit).map(toNode);
    const last = items.at(-1);
    return {
      items,
      nextCursor:
        docs.length > limit && last
          ? encodeChildCursor({ sort, order, key: sortKeyOf(last, sort, nameKey), id: last.id })
          : null,
    };
  }

  async createFolder(ownerId: string, parentId: string | null, name: string): Promise<TreeNode> {
    try {
      return await this.tx(async (session) => {
        const now = this.clock.now();
        await this.requireFolder(session, ownerId, parentId);
        const doc: NodeDoc = { ...blankNode(ownerId, parentId, name.normalize('NFC'), now), kind: 'folder' };
        await this.m.nodes.create([doc], { session });
        const node = toNode(doc);
        await this.appendChangeTx(session, ownerId, 'create', node.id, nodeSnapshot(node), now);
        return node;
      });
    } catch (err) {
      translateMongoError(err, 'NAME_CONFLICT');
    }
  }

  async commitFile(input: CommitFileInput): Promise<CommitFileResult> {
    try {
      return await this.tx((session) => this.commitFileTx(session, input));
    } catch (err) {
      translateMongoError(err, 'NAME_CONFLICT');
    }
  }

  async listRevisions(ownerId: string, fileId: string): Promise<FileRevision[]> {
    if (!(await this.nodeDoc(ownerId, fileId))) throw new NotFoundError('No such file.');
    const docs = await this.m.revisions.find({ fileId }).sort({ revision: -1 }).lean<RevisionDoc[]>();
    return docs.map(toRevision);
  }

  async moveNode(ownerId: string, id: string, parentId: string | null, name: string): Promise<TreeNode> {
    try {
      return await this.tx(async (session) => {
        const now = this.clock.now();
        const doc = await this.nodeDoc(ownerId, id, session);
        if (!doc || !doc.live) throw new NotFoundError('No such item.');
        await this.requireFolder(session, ownerId, parentId);
        if (
          doc.kind === 'folder' &&
          parentId !== null &&
          (await this.isSelfOrDescendant(session, id, parentId))
        ) {
          throw new ConflictError(
            'CONFLICT',
            'A folder cannot be moved into itself or one of its subfolders.',
          );
        }
        const clean = name.normalize('NFC');
        const set = {
          parentId,
          parentKey: parentId ?? '',
          name: clean,
          nameKey: nameKey(clean),
          updatedAt: now,
        };
        await this.m.nodes.updateOne({ _id: id }, { $set: set }, { session });
        const node = toNode({ ...doc, ...set });
        const data = { ...nodeSnapshot(node), from: { parentId: doc.parentId, name: doc.name } };
        await this.appendChangeTx(session, ownerId, 'move', id, data, now);
        return node;
      });
    } catch (err) {
      translateMongoError(err, 'NAME_CONFLICT');
    }
  }

  /** A revision's content, a done transcode's poster or preview, or kept until after `now` (see the port). */
  async isBlobReferenced(sha256: string, session?: Session, now: Date = this.clock.now()): Promise<boolean> {
    if ((await this.m.revisions.findOne({ sha256 }, { _id: 1 }, { session }).lean()) !== null) return true;
    const kept = await this.m.blobKeeps
      .findOne({ sha256, expiresAt: op({ $gt: now }) }, { _id: 1 }, { session })
      .lean();
    if (kept !== null) return true;
    const derived = await this.m.transcodes
      .findOne(
        { status: 'done', $or: [{ posterSha256: sha256 }, { previewSha256: sha256 }] },
        { _id: 1 },
        { session },
      )
      .lean();
    return derived !== null;
  }

  /** Prefers a live file over one in the trash; both keep the blob alive. */
  async findFileBySha256(ownerId: string, sha256: string): Promise<TreeNode | null> {
    const doc = await this.m.nodes
      .findOne({ ownerId, sha256, kind: 'file', status: 'ready' })
      .sort({ live: -1, updatedAt: -1 })
      .lean<NodeDoc>();
    return doc ? toNode(doc) : null;
  }

  /** The owner's node (trashed or not), or null for a missing or foreign id. */
  async nodeDoc(ownerId: string, id: string, session?: Session): Promise<NodeDoc | null> {
    return this.m.nodes.findOne({ _id: id, ownerId }, null, { session }).lean<NodeDoc>();
  }

  /** Throws `NotFoundError` unless `parentId` is the root or a live folder of the owner. */
  async requireFolder(session: Session, ownerId: string, parentId: string | null): Promise<void> {
    if (parentId === null) return;
    const parent = await this.nodeDoc(ownerId, parentId, session);
    if (!parent || !parent.live || parent.kind !== 'folder') throw new NotFoundError('No such folder.');
  }

  private async commitFileTx(session: Session, input: CommitFileInput): Promise<CommitFileResult> {
    const now = this.clock.now();
    const keep = Math.max(1, Math.floor(input.keepRevisions ?? DEFAULT_KEEP_REVISIONS));
    // Looked up across the owner's files, so a retry finds its revision after a rename or move.
    const earlier = await this.m.revisions
      .findOne({ ownerId: input.ownerId, sourceId: input.sourceId }, null, { session })
      .lean<RevisionDoc>();
    if (earlier) {
      const node = await this.nodeDoc(input.ownerId, earlier.fileId, session);
      if (node)
        return { node: toNode(node), revision: toRevision(earlier), duplicate: true, droppedBlobs: [] };
    }
    await this.requireFolder(session, input.ownerId, input.parentId);
    const name = input.name.normalize('NFC');
    const existing = await this.m.nodes
      .findOne(
        { ownerId: input.ownerId, parentKey: input.parentId ?? '', nameKey: nameKey(name), live: true },
        null,
        {
          session,
        },
      )
      .lean<NodeDoc>();
    if (existing?.kind === 'folder')
      throw new ConflictError('NAME_CONFLICT', 'A folder with that name exists.');
    const current = existing?.revision ?? 0;
    if (input.baseRevision !== undefined && input.baseRevision !== current) {
      throw new ConflictError(
        'REVISION_CONFLICT',
        `The file is at revision ${current}, not ${input.baseRevision}.`,
      );
    }
    const fields = {
      size: input.size,
      sha256: input.sha256,
      mediaType: input.mediaType,
      mtime: input.mtime,
      mtimeKey: input.mtime ?? 0,
      status: 'ready' as const,
      updatedAt: now,
    };
    let doc: NodeDoc;
    if (existing) {
      doc = { ...existing, ...fields, revision: existing.revision + 1 };
      await this.m.nodes.updateOne(
        { _id: existing._id },
        { $set: { ...fields, revision: doc.revision } },
        { session },
      );
    } else {
      doc = { ...blankNode(input.ownerId, input.parentId, name, now), ...fields, kind: 'file', revision: 1 };
      await this.m.nodes.create([doc], { session });
    }
    const revision: RevisionDoc = {
      _id: `${doc._id}:${doc.revision}`,
      fileId: doc._id,
      ownerId: input.ownerId,
      revision: doc.revision,
      sha256: input.sha256,
      size: input.size,
      mtime: input.mtime,
      mediaType: input.mediaType,
      sourceId: input.sourceId,
      createdAt: now,
    };
    await this.m.revisions.create([revision], { session });
    const dropped = await this.m.revisions
      .find({ fileId: doc._id }, { revision: 1, sha256: 1 }, { session })
      .sort({ revision: -1 })
      .skip(keep)
      .lean<Pick<RevisionDoc, '_id' | 'revision' | 'sha256'>[]>();
    if (dropped.length > 0) {
      await this.m.revisions.deleteMany({ _id: op({ $in: dropped.map((d) => d._id) }) }, { session });
    }
    await this.m.users.updateOne(
      { _id: input.ownerId },
      { $inc: { storageUsed: input.size - (existing?.size ?? 0) }, $set: { updatedAt: now } },
      { session },
    );
    const node = toNode(doc);
    await this.appendChangeTx(
      session,
      input.ownerId,
      existing ? 'update' : 'create',
      node.id,
      nodeSnapshot(node),
      now,
    );
    return {
      node,
      revision: toRevision(revision),
      duplicate: false,
      droppedBlobs: [...new Set(dropped.map((d) => d.sha256))],
    };
  }

  private async isSelfOrDescendant(session: Session, id: string, candidate: string): Promise<boolean> {
    let current: string | null = candidate;
    // Bounded walk up to the root; a cycle cannot exist, the bound only guards against corrupt data.
    for (let depth = 0; current !== null && depth < 10_000; depth++) {
      if (current === id) return true;
      const parent: { parentId: string | null } | null = await this.m.nodes
        .findOne({ _id: current }, { parentId: 1 }, { session })
        .lean<{ parentId: string | null }>();
      current = parent?.parentId ?? null;
    }
    return false;
  }
}

function blankNode(ownerId: string, parentId: string | null, name: string, now: Date): NodeDoc {
  return {
    _id: uuidv7(),
    ownerId,
    parentId,
    parentKey: parentId ?? '',
    name,
    nameKey: nameKey(name),
    kind: 'folder',
    size: 0,
    sha256: null,
    mediaType: null,
    mtime: null,
    mtimeKey: 0,
    revision: 0,
    status: 'ready',
    live: true,
    trashedAt: null,
    trashRoot: null,
    createdAt: now,
    updatedAt: now,
  };
}
