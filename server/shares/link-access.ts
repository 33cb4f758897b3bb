/**
 * Access checks of public links, re-read from the store on every request (so a revoke
 * takes effect at the next request on every API instance).
 *
 * Unknown, malformed or revoked token, or an item that is gone: `NOT_FOUND`. Expired:
 * `GONE`. A node addressed inside a shared folder must be a live descendant of it.
 */
import type { Request } from 'express';
import { AppError, NotFoundError } from '../../contract/errors.js';
import type { Share, TreeNode } from '../../core/ports/metadata-store.js';
import { hashSecret } from '../auth/secrets.js';
import type { AppDeps } from '../deps.js';
import { cookieValue, LINK_TOKEN, PROOF_COOKIE, verifyProof } from './link-token.js';

export interface OpenLink {
  token: string;
  share: Share;
  /** The shared file or folder. */
  node: TreeNode;
}

type Deps = Pick<AppDeps, 'metadata' | 'clock' | 'jwtSecret'>;

export async function openLink(deps: Deps, token: string): Promise<OpenLink> {
  if (!LINK_TOKEN.test(token)) throw new NotFoundError('No such link.');
  const share = await deps.metadata.getShareByTokenHash(hashSecret(token));
  if (share === null || share.tokenHash === null || share.revokedAt !== null)
    throw new NotFoundError('No such link.');
  if (share.expiresAt !== null && share.expiresAt <= deps.clock.now())
    throw new AppError('GONE', 'This link has expired.');
  const node = await deps.metadata.getNode(share.ownerId, share.nodeId);
  if (node === null || node.trashedAt !== null) throw new NotFoundError('No such link.');
  return { token, share, node };
}

/** True when the link needs no password or the request carries a valid proof cookie. */
export function hasAccess(deps: Deps, req: Request, link: OpenLink): boolean {
  if (link.share.passwordHash === null) return true;
  return verifyProof(
    deps.jwtSecret,
    link.share,
    cookieValue(req.headers.cookie, PROOF_COOKIE),
    deps.clock.now(),
  );
}

export function isExhausted(share: Share): boolean {
  return share.maxDownloads !== null && share.downloads >= share.maxDownloads;
}

/** A live node inside the shared folder (the folder itself included); `NOT_FOUND` otherwise. */
export async function nodeInside(deps: Deps, link: OpenLink, nodeId: string): Promise<TreeNode> {
  if (link.node.kind !== 'folder' || !/^[A-Za-z0-9_-]{1,128}$/u.test(nodeId)) throw new NotFoundError();
  const node = await deps.metadata.getNode(link.share.ownerId, nodeId);
  if (node === null || node.trashedAt !== null) throw new NotFoundError();
  let current: TreeNode | null = node;
  for (let depth = 0; current !== null && depth < 1000; depth++) {
    if (current.id === link.node.id) return node;
    current =
      current.parentId === null ? null : await deps.metadata.getNode(link.share.ownerId, current.parentId);
  }
  throw new NotFoundError();
}

/** Counts one download atomically; `GONE` when the limit is reached (or the link just ended). */
export async function countDownload(deps: Deps, link: OpenLink): Promise<Share> {
  const counted = await deps.metadata.recordShareDownload(link.share.id);
  if (counted === null) throw new AppError('GONE', 'This link has reached its download limit.');
  return counted;
}
