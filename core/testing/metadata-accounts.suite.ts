/**
 * Conformance tests for the account half of a MetadataStore: users, refresh sessions,
 * API tokens and the audit log. Called by `metadataStoreSuite`.
 */
import { describe, it, expect } from 'vitest';
import { ConflictError } from '../../contract/errors.js';
import { expectCode, makeUser, sha, type SuiteContext } from './metadata-fixtures.js';

const HOUR = 3_600_000;

export function accountTests(ctx: SuiteContext): void {
  describe('users', () => {
    it('stores the email trimmed and lower-cased and finds it in any case', async () => {
      const user = await ctx.store.createUser({
        email: '  Alice@Example.TEST ',
        name: 'Alice',
        passwordHash: 'h',
        storageQuota: 100,
      });
      expect(user.email).toBe('alice@example.test');
      expect(user.tokenVersion).toBe(0);
      expect(user.storageUsed).toBe(0);
      expect((await ctx.store.getUserByEmail('ALICE@example.test'))?.id).toBe(user.id);
      expect((await ctx.store.getUserById(user.id))?.email).toBe('alice@example.test');
    });

    it('refuses a second account with the same email, differing only by case, as EMAIL_TAKEN', async () => {
      await ctx.store.createUser({
        email: 'bob@example.test',
        name: null,
        passwordHash: 'h',
        storageQuota: 1,
      });
      const err = await expectCode(
        ctx.store.createUser({ email: 'BOB@example.test', name: null, passwordHash: 'h', storageQuota: 1 }),
        'EMAIL_TAKEN',
      );
      expect(err).toBeInstanceOf(ConflictError);
      expect(err.cause).toBeDefined();
    });

    it('returns null for an unknown user and throws NotFound when updating one', async () => {
      expect(await ctx.store.getUserById('00000000-0000-4000-8000-000000000000')).toBeNull();
      expect(await ctx.store.getUserByEmail('nobody@example.test')).toBeNull();
      await expectCode(
        ctx.store.updateUser('00000000-0000-4000-8000-000000000000', { name: 'x' }),
        'NOT_FOUND',
      );
    });

    it('renames a user without touching the token version', async () => {
      const user = await makeUser(ctx.store);
      const updated = await ctx.store.updateUser(user.id, { name: 'Renamed' });
      expect(updated.name).toBe('Renamed');
      expect(updated.tokenVersion).toBe(0);
    });

    it('bumps tokenVersion and revokes every session when the password changes', async () => {
      const user = await makeUser(ctx.store);
      const expiresAt = new Date(Date.now() + HOUR);
      const a = await ctx.store.createRefreshSession({
        userId: user.id,
        tokenHash: sha('a'),
        expiresAt,
        ip: null,
        userAgent: null,
      });
      const b = await ctx.store.createRefreshSession({
        userId: user.id,
        tokenHash: sha('b'),
        expiresAt,
        ip: '::1',
        userAgent: 'ua',
      });
      const updated = await ctx.store.updateUser(user.id, { passwordHash: 'new-hash' });
      expect(updated.passwordHash).toBe('new-hash');
      expect(updated.tokenVersion).toBe(1);
      expect((await ctx.store.getUserById(user.id))?.tokenVersion).toBe(1);
      expect(await ctx.store.isSessionFamilyActive(a.familyId, new Date())).toBe(false);
      expect(await ctx.store.isSessionFamilyActive(b.familyId, new Date())).toBe(false);
      const rotated = await ctx.store.rotateRefreshSession(
        sha('a'),
        { tokenHash: sha('a2'), expiresAt },
        new Date(),
      );
      expect(rotated.kind).toBe('invalid');
    });
  });

  describe('refresh sessions', () => {
    it('rotates a token within its family and detects reuse of the old one', async () => {
      const user = await makeUser(ctx.store);
      const now = new Date();
      const expiresAt = new Date(now.getTime() + HOUR);
      const first = await ctx.store.createRefreshSession({
        userId: user.id,
        tokenHash: sha('t1'),
        expiresAt,
        ip: null,
        userAgent: null,
      });
      expect(await ctx.store.isSessionFamilyActive(first.familyId, now)).toBe(true);

      const rotated = await ctx.store.rotateRefreshSession(
        sha('t1'),
        { tokenHash: sha('t2'), expiresAt },
        now,
      );
      if (rotated.kind !== 'rotated') throw new Error(`expected rotated, got ${rotated.kind}`);
      expect(rotated.next.familyId).toBe(first.familyId);
      expect(rotated.next.userId).toBe(user.id);
      expect(rotated.previous.rotatedAt).not.toBeNull();
      expect((await ctx.store.getRefreshSessionByHash(sha('t2')))?.id).toBe(rotated.next.id);

      const reused = await ctx.store.rotateRefreshSession(
        sha('t1'),
        { tokenHash: sha('t3'), expiresAt },
        now,
      );
      expect(reused.kind).toBe('reused');
      expect(await ctx.store.isSessionFamilyActive(first.familyId, now)).toBe(false);
      expect((await ctx.store.getRefreshSessionByHash(sha('t2')))?.revokedAt).not.toBeNull();
      const afterReuse = await ctx.store.rotateRefreshSession(
        sha('t2'),
        { tokenHash: sha('t4'), expiresAt },
        now,
      );
      expect(afterReuse.kind).toBe('invalid');
      expect(await ctx.store.getRefreshSessionByHash(sha('t3'))).toBeNull();
    });

    it('treats unknown and expired tokens as invalid', async () => {
      const user = await makeUser(ctx.store);
      const now = new Date();
      await ctx.store.createRefreshSession({
        userId: user.id,
        tokenHash: sha('old'),
        expiresAt: new Date(now.getTime() - 1),
        ip: null,
        userAgent: null,
      });
      const next = { tokenHash: sha('n'), expiresAt: new Date(now.getTime() + HOUR) };
      expect((await ctx.store.rotateRefreshSession(sha('old'), next, now)).kind).toBe('invalid');
      expect((await ctx.store.rotateRefreshSession(sha('missing'), next, now)).kind).toBe('invalid');
    });

    it('keeps a family given by the caller and revokes it on logout', async () => {
      const user = await makeUser(ctx.store);
      const expiresAt = new Date(Date.now() + HOUR);
      const first = await ctx.store.createRefreshSession({
        userId: user.id,
        tokenHash: sha('f1'),
        expiresAt,
        ip: null,
        userAgent: null,
      });
      const second = await ctx.store.createRefreshSession({
        userId: user.id,
        familyId: first.familyId,
        tokenHash: sha('f2'),
        expiresAt,
        ip: null,
        userAgent: null,
      });
      expect(second.familyId).toBe(first.familyId);
      const other = await ctx.store.createRefreshSession({
        userId: user.id,
        tokenHash: sha('o'),
        expiresAt,
        ip: null,
        userAgent: null,
      });
      await ctx.store.revokeSessionFamily(first.familyId, new Date());
      expect(await ctx.store.isSessionFamilyActive(first.familyId, new Date())).toBe(false);
      expect(await ctx.store.isSessionFamilyActive(other.familyId, new Date())).toBe(true);
      await ctx.store.revokeAllSessions(user.id, new Date());
      expect(await ctx.store.isSessionFamilyActive(other.familyId, new Date())).toBe(false);
    });
  });

  describe('API tokens', () => {
    it('creates, lists, touches and revokes a token of its own user only', async () => {
      const user = await makeUser(ctx.store);
      const stranger = await makeUser(ctx.store, 'stranger');
      const token = await ctx.store.createApiToken({
        userId: user.id,
        name: 'ci',
        prefix: 'aio_3f9a1c',
        tokenHash: sha('api'),
        scopes: ['read', 'write'],
        expiresAt: null,
      });
      expect(token.scopes).toEqual(['read', 'write']);
      expect(token.lastUsedAt).toBeNull();
      expect((await ctx.store.listApiTokens(user.id)).map((t) => t.id)).toEqual([token.id]);
      expect(await ctx.store.listApiTokens(stranger.id)).toEqual([]);

      const usedAt = new Date(Date.UTC(2026, 1, 2));
      await ctx.store.touchApiToken(token.id, usedAt);
      expect((await ctx.store.getApiTokenByHash(sha('api')))?.lastUsedAt?.getTime()).toBe(usedAt.getTime());

      expect(await ctx.store.revokeApiToken(stranger.id, token.id, new Date())).toBe(false);
      expect(await ctx.store.revokeApiToken(user.id, token.id, new Date())).toBe(true);
      expect(await ctx.store.revokeApiToken(user.id, token.id, new Date())).toBe(false);
      expect((await ctx.store.getApiTokenByHash(sha('api')))?.revokedAt).not.toBeNull();
    });

    it('refuses a duplicate token hash with a ConflictError', async () => {
      const user = await makeUser(ctx.store);
      const input = {
        userId: user.id,
        name: 'a',
        prefix: 'aio_1',
        tokenHash: sha('dup'),
        scopes: ['read' as const],
        expiresAt: null,
      };
      await ctx.store.createApiToken(input);
      await expectCode(ctx.store.createApiToken({ ...input, name: 'b' }), 'CONFLICT');
    });
  });

  describe('audit log', () => {
    it('pages a user’s entries newest first without gaps or repeats', async () => {
      const user = await makeUser(ctx.store);
      const other = await makeUser(ctx.store, 'other');
      const base = Date.UTC(2026, 0, 1);
      for (let i = 0; i < 23; i++) {
        // Pairs share a timestamp, so the tie-break decides their order.
        await ctx.store.appendAudit({
          userId: user.id,
          action: 'auth.login',
          ip: '127.0.0.1',
          userAgent: null,
          details: { i },
          createdAt: new Date(base + Math.floor(i / 2) * 1000),
        });
      }
      await ctx.store.appendAudit({
        userId: other.id,
        action: 'auth.login',
        ip: null,
        userAgent: null,
        details: {},
      });

      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await ctx.store.listAudit(user.id, { limit: 10, cursor });
        seen.push(...page.items.map((e) => e.details.i as number));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== null && pages < 10);
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: 23 }, (_, k) => 22 - k));
    });
  });
}
