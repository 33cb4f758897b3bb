/**
 * How shares look in responses (`contract/schemas/shares.ts`): never a token or a hash.
 */
import type { NotificationBody, ShareBody } from '../../contract/schemas/shares.js';
import type { Notification, Share } from '../../core/ports/metadata-store.js';
import { pathOf } from '../../core/tree.js';
import type { AppDeps } from '../deps.js';

export function shareState(share: Share, now: Date): ShareBody['state'] {
  if (share.revokedAt !== null) return 'revoked';
  if (share.expiresAt !== null && share.expiresAt <= now) return 'expired';
  if (share.maxDownloads !== null && share.downloads >= share.maxDownloads) return 'exhausted';
  return 'active';
}

export async function shareView(deps: Pick<AppDeps, 'metadata' | 'clock'>, share: Share): Promise<ShareBody> {
  const node = await deps.metadata.getNode(share.ownerId, share.nodeId);
  const grantee = share.granteeId === null ? null : await deps.metadata.getUserById(share.granteeId);
  return {
    id: share.id,
    type: share.tokenHash === null ? 'user' : 'link',
    nodeId: share.nodeId,
    path: node && node.trashedAt === null ? await pathOf(deps.metadata, share.ownerId, node) : null,
    kind: node?.kind ?? null,
    role: share.role,
    grantee: grantee ? { id: grantee.id, email: grantee.email } : null,
    hasPassword: share.passwordHash !== null,
    expiresAt: share.expiresAt?.toISOString() ?? null,
    maxDownloads: share.maxDownloads,
    downloads: share.downloads,
    revokedAt: share.revokedAt?.toISOString() ?? null,
    createdAt: share.createdAt.toISOString(),
    state: shareState(share, deps.clock.now()),
  };
}

export function notificationView(n: Notification): NotificationBody {
  return {
    id: n.seq,
    type: n.type,
    data: n.data,
    createdAt: n.createdAt.toISOString(),
    readAt: n.readAt?.toISOString() ?? null,
  };
}
