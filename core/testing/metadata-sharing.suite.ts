/**
 * Conformance tests for what sharing needs of a MetadataStore: changes inside a folder
 * shared with a user reach that user's feed, notifications with a durable read marker,
 * and the once-only "first opened" mark of a share.
 */
import { describe, it, expect } from 'vitest';
import type { NewShare } from '../ports/metadata-store.js';
import { commit, makeUser, sha, type SuiteContext } from './metadata-fixtures.js';

function userShare(ownerId: string, nodeId: string, granteeId: string): NewShare {
  return {
    ownerId,
    nodeId,
    tokenHash: null,
    granteeId,
    role: 'viewer',
    passwordHash: null,
    expiresAt: null,
    maxDownloads: null,
  };
}

export function sharingTests(ctx: SuiteContext): void {
  describe('shared folders in the change feed', () => {
    it('copies changes inside a shared folder to the grantee feed, and only while shared', async () => {
      const owner = await makeUser(ctx.store, 'owner');
      const friend = await makeUser(ctx.store, 'friend');
      const team = await ctx.store.createFolder(owner.id, null, 'team');
      const docs = await ctx.store.createFolder(owner.id, team.id, 'docs');
      const share = await ctx.store.createShare(userShare(owner.id, team.id, friend.id));

      const { node } = await commit(ctx.store, owner.id, docs.id, 'a.txt', 'inside');
      await commit(ctx.store, owner.id, null, 'private.txt', 'outside');
      const seen = await ctx.store.listChanges(friend.id, 0, 10);
      expect(seen.map((c) => [c.kind, c.nodeId])).toEqual([['create', node.id]]);
      expect(seen[0]?.data).toMatchObject({ name: 'a.txt', share: { id: share.id, ownerId: owner.id } });

      // Moving out of the folder still tells the grantee (the old parent was shared).
      await ctx.store.moveNode(owner.id, node.id, null, 'a.txt');
      expect((await ctx.store.listChanges(friend.id, 1, 10)).map((c) => c.kind)).toEqual(['move']);

      await ctx.store.revokeShare(owner.id, share.id, new Date());
      await commit(ctx.store, owner.id, docs.id, 'b.txt', 'after revoke');
      expect(await ctx.store.latestChangeSeq(friend.id)).toBe(2);
    });
  });

  describe('notifications', () => {
    it('lists notify changes newest first, pages them, and keeps the read marker', async () => {
      const user = await makeUser(ctx.store);
      await ctx.store.createFolder(user.id, null, 'not a notification');
      const notes = [];
      for (let i = 0; i < 3; i++)
        notes.push(await ctx.store.appendChange(user.id, 'notify', null, { type: 'test', i }));

      const first = await ctx.store.listNotifications(user.id, { limit: 2 });
      expect(first.items.map((n) => n.seq)).toEqual([notes[2]?.seq, notes[1]?.seq]);
      expect(first.items[0]).toMatchObject({ type: 'test', data: { i: 2 }, readAt: null });
      const second = await ctx.store.listNotifications(user.id, { limit: 2, cursor: first.nextCursor });
      expect(second.items.map((n) => n.seq)).toEqual([notes[0]?.seq]);
      expect(second.nextCursor).toBeNull();

      const now = new Date(Date.UTC(2026, 1, 1));
      expect(await ctx.store.markNotificationsRead(user.id, [notes[1]?.seq ?? 0], now)).toBe(1);
      const unread = await ctx.store.listNotifications(user.id, { limit: 10, unreadOnly: true });
      expect(unread.items.map((n) => n.seq)).toEqual([notes[2]?.seq, notes[0]?.seq]);
      const other = await makeUser(ctx.store, 'other');
      expect(await ctx.store.markNotificationsRead(other.id, 'all', now)).toBe(0);
      expect(await ctx.store.markNotificationsRead(user.id, 'all', now)).toBe(2);
      const all = await ctx.store.listNotifications(user.id, { limit: 10 });
      expect(all.items.every((n) => n.readAt?.getTime() === now.getTime())).toBe(true);
    });
  });

  describe('first opening of a share', () => {
    it('is recorded by exactly one of concurrent callers', async () => {
      const user = await makeUser(ctx.store);
      const { node } = await commit(ctx.store, user.id, null, 'f.txt', 'x');
      const share = await ctx.store.createShare({
        ...userShare(user.id, node.id, user.id),
        granteeId: null,
        tokenHash: sha('open-me'),
      });
      const results = await Promise.all(
        Array.from({ length: 5 }, () => ctx.store.markShareOpened(share.id, new Date())),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await ctx.store.markShareOpened(share.id, new Date())).toBe(false);
    });
  });
}
