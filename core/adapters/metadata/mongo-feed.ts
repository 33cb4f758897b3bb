/**
 * The parts of the MongoDB change feed that sharing adds: which user shares cover a
 * node (their grantees get a copy of its changes), and notifications — the `notify`
 * changes of a feed with their `readAt` marker.
 */
import type mongoose from 'mongoose';
import type { Notification, Page } from '../../ports/metadata-store.js';
import { op, type ChangeDoc, type MetadataModels } from './mongo-models.js';
import { pageLimit } from './shared.js';

type Session = mongoose.mongo.ClientSession;

/** Unrevoked user shares of `ownerId` whose folder is one of `nodeIds` or an ancestor; one per grantee. */
export async function grantsCovering(
  m: MetadataModels,
  session: Session,
  ownerId: string,
  nodeIds: readonly (string | null)[],
): Promise<{ id: string; granteeId: string }[]> {
  const shares = await m.shares
    .find({ ownerId, granteeId: op({ $ne: null }), revokedAt: null }, { _id: 1, granteeId: 1, nodeId: 1 })
    .sort({ createdAt: 1, _id: 1 })
    .session(session)
    .lean<{ _id: string; granteeId: string; nodeId: string }[]>();
  if (shares.length === 0) return [];
  const ancestors = new Set<string>();
  for (const start of nodeIds) {
    let id: string | null = start;
    for (let depth = 0; id !== null && depth < 1000 && !ancestors.has(id); depth++) {
      ancestors.add(id);
      const doc: { parentId: string | null } | null = await m.nodes
        .findOne({ _id: id, ownerId }, { parentId: 1 })
        .session(session)
        .lean<{ parentId: string | null }>();
      id = doc?.parentId ?? null;
    }
  }
  const grants = new Map<string, { id: string; granteeId: string }>();
  for (const share of shares) {
    if (ancestors.has(share.nodeId) && !grants.has(share.granteeId))
      grants.set(share.granteeId, { id: share._id, granteeId: share.granteeId });
  }
  return [...grants.values()];
}

/** Newest first; the cursor is the last seq of the previous page. */
export async function listNotifications(
  m: MetadataModels,
  ownerId: string,
  options: { unreadOnly?: boolean; limit: number; cursor?: string | null },
): Promise<Page<Notification>> {
  const limit = pageLimit(options.limit);
  const filter: Record<string, unknown> = { ownerId, kind: 'notify' };
  if (options.cursor && /^\d{1,15}$/.test(options.cursor)) filter.seq = op({ $lt: Number(options.cursor) });
  if (options.unreadOnly) filter.readAt = null;
  const docs = await m.changes
    .find(filter)
    .sort({ seq: -1 })
    .limit(limit + 1)
    .lean<ChangeDoc[]>();
  const items = docs.slice(0, limit).map((doc): Notification => ({
    seq: doc.seq,
    type: typeof doc.data.type === 'string' ? doc.data.type : 'unknown',
    data: doc.data,
    createdAt: doc.createdAt,
    readAt: doc.readAt ?? null,
  }));
  return { items, nextCursor: docs.length > limit ? String(items.at(-1)?.seq) : null };
}

export async function markNotificationsRead(
  m: MetadataModels,
  ownerId: string,
  seqs: readonly number[] | 'all',
  now: Date,
): Promise<number> {
  const filter: Record<string, unknown> = { ownerId, kind: 'notify', readAt: null };
  if (seqs !== 'all') filter.seq = op({ $in: [...seqs] });
  const result = await m.changes.updateMany(filter, { $set: { readAt: now } });
  return result.modifiedCount;
}
