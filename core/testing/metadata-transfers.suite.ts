/**
 * Conformance tests for uploads, the outbox and shares of a MetadataStore: the races
 * that must have exactly one winner.
 */
import { randomUUID } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import type { MetadataStore, NewUploadSession, UploadSession } from '../ports/metadata-store.js';
import { commit, expectCode, makeUser, sha, type SuiteContext } from './metadata-fixtures.js';

function newUpload(
  ownerId: string,
  length: number,
  expiresAt = new Date(Date.now() + 3_600_000),
  uploaderId = ownerId,
): NewUploadSession {
  return {
    id: randomUUID(),
    ownerId,
    uploaderId,
    parentId: null,
    name: 'upload.bin',
    length,
    sha256: null,
    mtime: 1_700_000_000_000,
    baseRevision: null,
    metadata: { path: '/upload.bin' },
    expiresAt,
  };
}

async function received(store: MetadataStore, ownerId: string, length: number): Promise<UploadSession> {
  const upload = await store.createUpload(newUpload(ownerId, length));
  const advanced = await store.advanceUpload(upload.id, 0, length);
  if (!advanced) throw new Error('advanceUpload refused the first chunk');
  return advanced;
}

export function transferTests(ctx: SuiteContext): void {
  describe('uploads', () => {
    it('lets exactly one of two advanceUpload calls from the same offset win', async () => {
      const user = await makeUser(ctx.store);
      const upload = await ctx.store.createUpload(newUpload(user.id, 10));
      expect(upload.offset).toBe(0);
      expect(upload.status).toBe('receiving');
      const results = await Promise.all([
        ctx.store.advanceUpload(upload.id, 0, 4),
        ctx.store.advanceUpload(upload.id, 0, 6),
      ]);
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect((await ctx.store.getUploadById(upload.id))?.offset).toBe(winners[0]?.offset);
      expect(await ctx.store.advanceUpload(upload.id, winners[0]?.offset ?? 0, 11)).toBeNull();
    });

    it('finishes a complete upload once and writes exactly one outbox entry', async () => {
      const user = await makeUser(ctx.store);
      const partial = await ctx.store.createUpload(newUpload(user.id, 8));
      const job = {
        queue: 'file.upload',
        payload: { uploadId: partial.id },
        idempotencyKey: partial.id,
        priority: 0,
      };
      expect(await ctx.store.finishUpload(partial.id, job)).toBeNull();

      const upload = await received(ctx.store, user.id, 5);
      const key = `upload:${upload.id}`;
      const results = await Promise.all(
        [1, 2, 3].map(() =>
          ctx.store.finishUpload(upload.id, {
            queue: 'file.upload',
            payload: { uploadId: upload.id },
            idempotencyKey: key,
            priority: 1,
          }),
        ),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect((await ctx.store.getUploadById(upload.id))?.status).toBe('processing');
      const outbox = (await ctx.store.listOutbox(100)).filter((e) => e.idempotencyKey === key);
      expect(outbox).toHaveLength(1);
      expect(outbox[0]?.payload).toEqual({ uploadId: upload.id });
      await ctx.store.deleteOutbox(outbox[0]?.id ?? '');
      expect((await ctx.store.listOutbox(100)).some((e) => e.idempotencyKey === key)).toBe(false);
    });

    it('records the sha256 the worker computed, so a redelivered job can finish', async () => {
      const user = await makeUser(ctx.store);
      const upload = await received(ctx.store, user.id, 3);
      const sha = 'a'.repeat(64);
      const updated = await ctx.store.setUploadStatus(upload.id, 'processing', { sha256: sha });
      expect(updated).toMatchObject({ status: 'processing', sha256: sha });
      expect((await ctx.store.getUploadById(upload.id))?.sha256).toBe(sha);
    });

    it('sets the final status, hides uploads from other owners and lists expired ones', async () => {
      const user = await makeUser(ctx.store);
      const stranger = await makeUser(ctx.store, 'stranger');
      const upload = await received(ctx.store, user.id, 3);
      expect(await ctx.store.getUpload(stranger.id, upload.id)).toBeNull();
      const { node } = await commit(ctx.store, user.id, null, 'upload.bin', 'abc', { sourceId: upload.id });
      const done = await ctx.store.setUploadStatus(upload.id, 'ready', { fileId: node.id });
      expect(done).toMatchObject({ status: 'ready', fileId: node.id, error: null });
      expect(await ctx.store.setUploadStatus(randomUUID(), 'failed')).toBeNull();

      const stale = await ctx.store.createUpload(newUpload(user.id, 9, new Date(Date.now() - 1000)));
      const expired = await ctx.store.listExpiredUploads(new Date(), 10);
      expect(expired.map((u) => u.id)).toEqual([stale.id]);
    });

    it("shows an upload into another owner's tree to its uploader only", async () => {
      const owner = await makeUser(ctx.store, 'owner');
      const editor = await makeUser(ctx.store, 'editor');
      const own = await ctx.store.createUpload(newUpload(owner.id, 4));
      expect(own.uploaderId).toBe(owner.id);
      expect((await ctx.store.getUpload(owner.id, own.id))?.uploaderId).toBe(owner.id);

      const upload = await ctx.store.createUpload(newUpload(owner.id, 4, undefined, editor.id));
      expect(upload).toMatchObject({ ownerId: owner.id, uploaderId: editor.id });
      expect(await ctx.store.getUpload(editor.id, upload.id)).toMatchObject({
        id: upload.id,
        ownerId: owner.id,
        uploaderId: editor.id,
      });
      expect(await ctx.store.getUpload(owner.id, upload.id)).toBeNull();
      expect(await ctx.store.getUpload(editor.id, own.id)).toBeNull();
      // The worker's view and every state change keep both ids.
      expect(await ctx.store.getUploadById(upload.id)).toMatchObject({
        ownerId: owner.id,
        uploaderId: editor.id,
      });
      expect(await ctx.store.advanceUpload(upload.id, 0, 4)).toMatchObject({ uploaderId: editor.id });
      const finished = await ctx.store.finishUpload(upload.id, {
        queue: 'file.upload',
        payload: { uploadId: upload.id },
        idempotencyKey: upload.id,
        priority: 0,
      });
      expect(finished).toMatchObject({ status: 'processing', uploaderId: editor.id });
      expect(await ctx.store.setUploadStatus(upload.id, 'failed', { error: 'X' })).toMatchObject({
        ownerId: owner.id,
        uploaderId: editor.id,
      });
      const outbox = (await ctx.store.listOutbox(100)).filter((e) => e.idempotencyKey === upload.id);
      for (const entry of outbox) await ctx.store.deleteOutbox(entry.id);
    });

    it('creates a batch at once, finishes it with one outbox entry and lists it in order', async () => {
      const user = await makeUser(ctx.store);
      const stranger = await makeUser(ctx.store, 'stranger');
      const batchId = randomUUID();
      const inputs = [0, 1, 2].map((i) => ({
        ...newUpload(user.id, 3 + i),
        name: `f${i}.txt`,
        sha256: sha(`content ${i}`),
        batchId,
        batchIndex: i,
      }));
      const created = await ctx.store.createUploads(inputs.slice().reverse());
      expect(created.map((u) => u.status)).toEqual(['receiving', 'receiving', 'receiving']);
      const listed = await ctx.store.listBatchUploads(user.id, batchId);
      expect(listed.map((u) => u.name)).toEqual(['f0.txt', 'f1.txt', 'f2.txt']);
      expect(listed.map((u) => [u.batchId, u.batchIndex])).toEqual([
        [batchId, 0],
        [batchId, 1],
        [batchId, 2],
      ]);
      expect(await ctx.store.listBatchUploads(stranger.id, batchId)).toEqual([]);
      expect(await ctx.store.countBatchPending(user.id, batchId)).toBe(3);
      expect(await ctx.store.countBatchPending(stranger.id, batchId)).toBeNull();
      expect(await ctx.store.countBatchPending(user.id, randomUUID())).toBeNull();

      // A duplicate id makes the whole batch fail: nothing of it is created.
      const again = { ...newUpload(user.id, 1), batchId: randomUUID(), batchIndex: 0 };
      await expect(ctx.store.createUploads([again, inputs[0] as NewUploadSession])).rejects.toThrow();
      expect(await ctx.store.getUploadById(again.id)).toBeNull();

      const key = `batch:${batchId}`;
      const job = { queue: 'file.upload', payload: { batchId }, idempotencyKey: key, priority: 0 };
      await ctx.store.setUploadStatus(inputs[2]?.id as string, 'cancelled');
      const moved = await ctx.store.finishUploads(
        inputs.map((u) => u.id),
        job,
      );
      expect(moved.map((u) => [u.name, u.status, u.offset])).toEqual([
        ['f0.txt', 'processing', 3],
        ['f1.txt', 'processing', 4],
      ]);
      // The cancelled one is final; the two processing ones are not.
      expect(await ctx.store.countBatchPending(user.id, batchId)).toBe(2);
      await ctx.store.setUploadStatus(inputs[0]?.id as string, 'ready');
      await ctx.store.setUploadStatus(inputs[1]?.id as string, 'failed', { error: 'X' });
      expect(await ctx.store.countBatchPending(user.id, batchId)).toBe(0);
      // Nothing left to move: no second outbox entry.
      expect(
        await ctx.store.finishUploads(
          inputs.map((u) => u.id),
          job,
        ),
      ).toEqual([]);
      const outbox = (await ctx.store.listOutbox(100)).filter((e) => e.idempotencyKey === key);
      expect(outbox).toHaveLength(1);
      for (const entry of outbox) await ctx.store.deleteOutbox(entry.id);
    });

    it('commits a batch of uploads: refused items fail alone, a retry changes nothing', async () => {
      const user = await makeUser(ctx.store);
      const taken = await commit(ctx.store, user.id, null, 'taken.txt', 'old');
      const folder = await ctx.store.createFolder(user.id, null, 'dir.txt');
      const uploads = await ctx.store.createUploads(
        ['a.txt', 'taken.txt', 'dir.txt', 'b.txt'].map((name, i) => ({
          ...newUpload(user.id, 1),
          name,
          batchIndex: i,
          batchId: 'b1',
        })),
      );
      const items = uploads.map((u, i) => ({
        uploadId: u.id,
        file: {
          ownerId: user.id,
          parentId: null,
          name: u.name,
          sha256: sha(`new ${i}`),
          size: 5,
          mtime: null,
          mediaType: 'text/plain',
          sourceId: u.id,
          // taken.txt is at revision 1: a base of 0 (must not exist) is stale.
          baseRevision: u.name === 'taken.txt' ? 0 : undefined,
        },
        audit: {
          userId: user.id,
          action: 'file.upload',
          ip: null,
          userAgent: null,
          details: { uploadId: u.id },
        },
      }));
      const before = await ctx.store.latestChangeSeq(user.id);
      const outcomes = await ctx.store.commitUploads(items);
      expect(outcomes.map((o) => (o.ok ? 'ok' : o.code))).toEqual([
        'ok',
        'REVISION_CONFLICT',
        'NAME_CONFLICT',
        'ok',
      ]);
      expect((await ctx.store.latestChangeSeq(user.id)) - before).toBe(2);
      // Written once: nothing of an attempt the refused items undid is left behind.
      expect(outcomes.map((o) => o.ok && o.result.duplicate)).toEqual([false, false, false, false]);
      const statuses = await Promise.all(uploads.map((u) => ctx.store.getUploadById(u.id)));
      expect(statuses.map((u) => [u?.status, u?.error])).toEqual([
        ['ready', null],
        ['failed', 'REVISION_CONFLICT'],
        ['failed', 'NAME_CONFLICT'],
        ['ready', null],
      ]);
      const first = outcomes[0];
      expect(first?.ok && statuses[0]?.fileId === first.result.node.id).toBe(true);
      // A committed upload records the revision it made; a refused one none.
      expect(statuses.map((u) => u?.revision)).toEqual([
        first?.ok ? first.result.revision.revision : 'missing',
        null,
        null,
        outcomes[3]?.ok ? outcomes[3].result.revision.revision : 'missing',
      ]);
      expect((await ctx.store.getNode(user.id, taken.node.id))?.sha256).toBe(sha('old'));
      expect((await ctx.store.getNode(user.id, folder.id))?.kind).toBe('folder');

      // Redelivered: the committed items are duplicates, no new change, no new audit entry.
      const audit = (await ctx.store.listAudit(user.id, { limit: 100 })).items.length;
      const retry = await ctx.store.commitUploads([items[0], items[3]].filter((x) => x !== undefined));
      expect(retry.map((o) => o.ok && o.result.duplicate)).toEqual([true, true]);
      expect((await ctx.store.latestChangeSeq(user.id)) - before).toBe(2);
      expect((await ctx.store.listAudit(user.id, { limit: 100 })).items.length).toBe(audit);
    });
  });

  describe('shares', () => {
    it('never counts more downloads than maxDownloads under 20 concurrent calls', async () => {
      const user = await makeUser(ctx.store);
      const { node } = await commit(ctx.store, user.id, null, 'shared.txt', 'share me');
      const share = await ctx.store.createShare({
        ownerId: user.id,
        nodeId: node.id,
        tokenHash: sha('link'),
        granteeId: null,
        role: 'viewer',
        passwordHash: null,
        expiresAt: null,
        maxDownloads: 5,
      });
      const results = await Promise.all(
        Array.from({ length: 20 }, () => ctx.store.recordShareDownload(share.id)),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(5);
      expect((await ctx.store.getShareByTokenHash(sha('link')))?.downloads).toBe(5);
    });

    it('refuses downloads of a revoked share and hides shares from other owners', async () => {
      const user = await makeUser(ctx.store);
      const stranger = await makeUser(ctx.store, 'stranger');
      const folder = await ctx.store.createFolder(user.id, null, 'team');
      const share = await ctx.store.createShare({
        ownerId: user.id,
        nodeId: folder.id,
        tokenHash: null,
        granteeId: stranger.id,
        role: 'editor',
        passwordHash: null,
        expiresAt: null,
        maxDownloads: null,
      });
      expect((await ctx.store.listSharesWithUser(stranger.id)).map((s) => s.id)).toEqual([share.id]);
      expect((await ctx.store.listShares(user.id)).map((s) => s.id)).toEqual([share.id]);
      expect(await ctx.store.getShare(stranger.id, share.id)).toBeNull();
      expect(await ctx.store.revokeShare(stranger.id, share.id, new Date())).toBe(false);
      expect((await ctx.store.recordShareDownload(share.id))?.downloads).toBe(1);
      expect(await ctx.store.revokeShare(user.id, share.id, new Date())).toBe(true);
      expect(await ctx.store.recordShareDownload(share.id)).toBeNull();
      await expectCode(
        ctx.store.createShare({
          ownerId: stranger.id,
          nodeId: folder.id,
          tokenHash: null,
          granteeId: null,
          role: 'viewer',
          passwordHash: null,
          expiresAt: null,
          maxDownloads: null,
        }),
        'NOT_FOUND',
      );
    });
  });
}
