/**
 * Conformance tests for the file tree of a MetadataStore: names, commits, revisions,
 * moves, trash and ownership. Called by `metadataStoreSuite`.
 */
import { randomUUID } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { ConflictError } from '../../contract/errors.js';
import { commit, expectCode, makeUser, sha, type SuiteContext } from './metadata-fixtures.js';

export function treeTests(ctx: SuiteContext): void {
  describe('names', () => {
    it('refuses a sibling whose name differs only by case with one NAME_CONFLICT', async () => {
      const user = await makeUser(ctx.store);
      await ctx.store.createFolder(user.id, null, 'Photos');
      const err = await expectCode(ctx.store.createFolder(user.id, null, 'pHOTOS'), 'NAME_CONFLICT');
      expect(err).toBeInstanceOf(ConflictError);
      await expectCode(commit(ctx.store, user.id, null, 'PHOTOS', 'x'), 'NAME_CONFLICT');
    });

    it('lets exactly one of two concurrent creations of the same name win', async () => {
      const user = await makeUser(ctx.store);
      const results = await Promise.allSettled([
        ctx.store.createFolder(user.id, null, 'Straße'),
        ctx.store.createFolder(user.id, null, 'STRASSE'),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.filter((r) => r.status === 'rejected');
      expect(rejected).toHaveLength(1);
      expect((rejected[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'NAME_CONFLICT' });
    });

    it('allows the same name in another folder and for another owner', async () => {
      const user = await makeUser(ctx.store);
      const other = await makeUser(ctx.store, 'other');
      const docs = await ctx.store.createFolder(user.id, null, 'docs');
      await ctx.store.createFolder(user.id, docs.id, 'docs');
      await ctx.store.createFolder(other.id, null, 'docs');
      expect((await ctx.store.findChild(user.id, null, 'DOCS'))?.id).toBe(docs.id);
    });

    it('refuses a move onto a taken name and into the folder’s own subtree', async () => {
      const user = await makeUser(ctx.store);
      const a = await ctx.store.createFolder(user.id, null, 'a');
      const b = await ctx.store.createFolder(user.id, a.id, 'b');
      await ctx.store.createFolder(user.id, null, 'c');
      await expectCode(ctx.store.moveNode(user.id, a.id, null, 'C'), 'NAME_CONFLICT');
      await expectCode(ctx.store.moveNode(user.id, a.id, b.id, 'a'), 'CONFLICT');
      await expectCode(ctx.store.moveNode(user.id, a.id, a.id, 'a'), 'CONFLICT');
      const renamed = await ctx.store.moveNode(user.id, a.id, null, 'A');
      expect(renamed.name).toBe('A');
      const moved = await ctx.store.moveNode(user.id, b.id, null, 'b');
      expect(moved.parentId).toBeNull();
    });
  });

  describe('findPath', () => {
    it('walks a path folder by folder, case-insensitively, and stops where it ends', async () => {
      const user = await makeUser(ctx.store);
      const other = await makeUser(ctx.store, 'other');
      const a = await ctx.store.createFolder(user.id, null, 'a');
      const b = await ctx.store.createFolder(user.id, a.id, 'B');
      const file = (await commit(ctx.store, user.id, b.id, 'f.txt', 'x')).node;
      const ids = async (parentId: string | null, names: string[], owner = user.id) =>
        (await ctx.store.findPath(owner, parentId, names)).map((n) => n.id);
      expect(await ids(null, ['A', 'b', 'F.TXT'])).toEqual([a.id, b.id, file.id]);
      expect(await ids(a.id, ['b'])).toEqual([b.id]);
      expect(await ids(null, [])).toEqual([]);
      // Ends at the first missing name, and after a file.
      expect(await ids(null, ['a', 'nope', 'f.txt'])).toEqual([a.id]);
      expect(await ids(null, ['a', 'b', 'f.txt', 'below'])).toEqual([a.id, b.id, file.id]);
      // Another owner's tree, trashed nodes and a bogus parent are not walked.
      expect(await ids(null, ['a'], other.id)).toEqual([]);
      expect(await ids('', ['a'])).toEqual([]);
      await ctx.store.trashNode(user.id, b.id, new Date());
      expect(await ids(null, ['a', 'b', 'f.txt'])).toEqual([a.id]);
      // The answer is the caller's own list.
      const path = await ctx.store.findPath(user.id, null, ['a']);
      path.push(path[0] as (typeof path)[number]);
      expect(await ids(null, ['a'])).toEqual([a.id]);
    });
  });

  describe('commitFile', () => {
    it('creates revision 1, then updates with revision 2 and adjusts storageUsed by the size difference', async () => {
      const user = await makeUser(ctx.store);
      const first = await commit(ctx.store, user.id, null, 'a.txt', 'hello');
      expect(first.node.revision).toBe(1);
      expect(first.node.status).toBe('ready');
      expect(first.duplicate).toBe(false);
      const second = await commit(ctx.store, user.id, null, 'A.TXT', 'hello world');
      expect(second.node.id).toBe(first.node.id);
      expect(second.node.revision).toBe(2);
      expect(second.node.name).toBe('a.txt');
      expect((await ctx.store.getUserById(user.id))?.storageUsed).toBe(11);
      const changes = await ctx.store.listChanges(user.id, 0, 10);
      expect(changes.map((c) => c.kind)).toEqual(['create', 'update']);
      expect(changes[1]?.data).toMatchObject({
        name: 'a.txt',
        parentId: null,
        kind: 'file',
        revision: 2,
        size: 11,
      });
      expect(changes[1]?.data.sha256).toBe(sha('hello world'));
    });

    it('commits a sourceId once: a retry returns the first revision and changes nothing', async () => {
      const user = await makeUser(ctx.store);
      const sourceId = randomUUID();
      const first = await commit(ctx.store, user.id, null, 'a.txt', 'abc', { sourceId });
      const again = await commit(ctx.store, user.id, null, 'a.txt', 'abc', { sourceId });
      expect(again.duplicate).toBe(true);
      expect(again.revision.revision).toBe(first.revision.revision);
      expect(await ctx.store.listRevisions(user.id, first.node.id)).toHaveLength(1);
      expect((await ctx.store.getUserById(user.id))?.storageUsed).toBe(3);
      expect(await ctx.store.latestChangeSeq(user.id)).toBe(1);
    });

    it('returns 409 REVISION_CONFLICT when the base revision is stale', async () => {
      const user = await makeUser(ctx.store);
      await commit(ctx.store, user.id, null, 'new.txt', 'a', { baseRevision: 0 });
      await expectCode(
        commit(ctx.store, user.id, null, 'new.txt', 'b', { baseRevision: 0 }),
        'REVISION_CONFLICT',
      );
      await commit(ctx.store, user.id, null, 'new.txt', 'c', { baseRevision: 1 });
      await expectCode(
        commit(ctx.store, user.id, null, 'new.txt', 'd', { baseRevision: 1 }),
        'REVISION_CONFLICT',
      );
      await expectCode(
        commit(ctx.store, user.id, null, 'absent.txt', 'e', { baseRevision: 3 }),
        'REVISION_CONFLICT',
      );
      const last = await commit(ctx.store, user.id, null, 'new.txt', 'f');
      expect(last.node.revision).toBe(3);
    });

    it('keeps only keepRevisions revisions and reports the dropped blobs', async () => {
      const user = await makeUser(ctx.store);
      let fileId = '';
      const dropped: string[] = [];
      for (const content of ['v1', 'v2', 'v3', 'v4']) {
        const result = await commit(ctx.store, user.id, null, 'doc.txt', content, { keepRevisions: 2 });
        fileId = result.node.id;
        dropped.push(...result.droppedBlobs);
      }
      const revisions = await ctx.store.listRevisions(user.id, fileId);
      expect(revisions.map((r) => r.revision).sort()).toEqual([3, 4]);
      expect(dropped.sort()).toEqual([sha('v1'), sha('v2')].sort());
      expect(await ctx.store.isBlobReferenced(sha('v1'))).toBe(false);
      expect(await ctx.store.isBlobReferenced(sha('v3'))).toBe(true);
    });

    it('finds a ready file by its current sha256, only for its owner', async () => {
      const user = await makeUser(ctx.store);
      const other = await makeUser(ctx.store, 'other');
      const { node } = await commit(ctx.store, user.id, null, 'x.bin', 'payload');
      expect((await ctx.store.findFileBySha256(user.id, sha('payload')))?.id).toBe(node.id);
      expect(await ctx.store.findFileBySha256(other.id, sha('payload'))).toBeNull();
    });
  });

  describe('trash', () => {
    it('trashes, restores and purges a whole subtree', async () => {
      const user = await makeUser(ctx.store);
      const top = await ctx.store.createFolder(user.id, null, 'top');
      const sub = await ctx.store.createFolder(user.id, top.id, 'sub');
      const file = (await commit(ctx.store, user.id, sub.id, 'f.txt', 'deep')).node;
      const early = (await commit(ctx.store, user.id, top.id, 'early.txt', 'gone before')).node;
      await ctx.store.trashNode(user.id, early.id, new Date(Date.UTC(2026, 0, 1)));

      const trashed = await ctx.store.trashNode(user.id, top.id, new Date(Date.UTC(2026, 0, 2)));
      expect(trashed.trashedAt).not.toBeNull();
      expect(await ctx.store.findChild(user.id, null, 'top')).toBeNull();
      expect(await ctx.store.findChild(user.id, sub.id, 'f.txt')).toBeNull();
      expect((await ctx.store.getNode(user.id, file.id))?.trashedAt).not.toBeNull();
      expect((await ctx.store.listChildren(user.id, null)).items).toEqual([]);
      expect(
        (await ctx.store.listChildren(user.id, null, { includeTrashed: true })).items.map((n) => n.id),
      ).toEqual([top.id]);
      await expectCode(ctx.store.createFolder(user.id, top.id, 'inside'), 'NOT_FOUND');

      // The name is free while the folder is in the trash; restoring then conflicts.
      const squatter = await ctx.store.createFolder(user.id, null, 'TOP');
      await expectCode(ctx.store.restoreNode(user.id, top.id), 'NAME_CONFLICT');
      await ctx.store.moveNode(user.id, squatter.id, null, 'elsewhere');
      const restored = await ctx.store.restoreNode(user.id, top.id);
      expect(restored.trashedAt).toBeNull();
      expect((await ctx.store.findChild(user.id, sub.id, 'f.txt'))?.id).toBe(file.id);
      // Trashed on its own before: it stays in the trash.
      expect((await ctx.store.getNode(user.id, early.id))?.trashedAt).not.toBeNull();

      await expectCode(ctx.store.purgeNode(user.id, top.id), 'CONFLICT');
      await ctx.store.trashNode(user.id, top.id, new Date(Date.UTC(2026, 0, 3)));
      const before = (await ctx.store.getUserById(user.id))?.storageUsed ?? -1;
      const { droppedBlobs } = await ctx.store.purgeNode(user.id, top.id);
      expect(droppedBlobs.sort()).toEqual([sha('deep'), sha('gone before')].sort());
      expect(await ctx.store.getNode(user.id, top.id)).toBeNull();
      expect(await ctx.store.getNode(user.id, file.id)).toBeNull();
      expect(await ctx.store.getNode(user.id, early.id)).toBeNull();
      expect(await ctx.store.isBlobReferenced(sha('deep'))).toBe(false);
      expect((await ctx.store.getUserById(user.id))?.storageUsed).toBe(before - 4 - 11);
      const kinds = (await ctx.store.listChanges(user.id, 0, 100)).map((c) => c.kind);
      expect(kinds.slice(-4)).toEqual(['move', 'restore', 'delete', 'purge']);
    });

    it('lists nodes trashed on their own before a date, oldest first', async () => {
      const user = await makeUser(ctx.store);
      const a = await ctx.store.createFolder(user.id, null, 'a');
      await ctx.store.createFolder(user.id, a.id, 'inner');
      const b = await ctx.store.createFolder(user.id, null, 'b');
      const c = await ctx.store.createFolder(user.id, null, 'c');
      await ctx.store.trashNode(user.id, b.id, new Date(Date.UTC(2025, 5, 2)));
      await ctx.store.trashNode(user.id, a.id, new Date(Date.UTC(2025, 5, 1)));
      await ctx.store.trashNode(user.id, c.id, new Date(Date.UTC(2026, 5, 1)));
      const old = await ctx.store.listTrashedBefore(new Date(Date.UTC(2026, 0, 1)), 10);
      expect(old.map((n) => n.id)).toEqual([a.id, b.id]);
    });
  });

  describe('ownership', () => {
    it('lets a foreign owner see nothing: null, NotFound or an empty result', async () => {
      const owner = await makeUser(ctx.store);
      const stranger = await makeUser(ctx.store, 'stranger');
      const folder = await ctx.store.createFolder(owner.id, null, 'private');
      const file = (await commit(ctx.store, owner.id, folder.id, 'secret.txt', 's3cret')).node;

      expect(await ctx.store.getNode(stranger.id, file.id)).toBeNull();
      expect(await ctx.store.findChild(stranger.id, folder.id, 'secret.txt')).toBeNull();
      await expectCode(ctx.store.listChildren(stranger.id, folder.id), 'NOT_FOUND');
      await expectCode(ctx.store.listRevisions(stranger.id, file.id), 'NOT_FOUND');
      await expectCode(ctx.store.createFolder(stranger.id, folder.id, 'x'), 'NOT_FOUND');
      await expectCode(commit(ctx.store, stranger.id, folder.id, 'x.txt', 'x'), 'NOT_FOUND');
      await expectCode(ctx.store.moveNode(stranger.id, file.id, null, 'mine.txt'), 'NOT_FOUND');
      await expectCode(ctx.store.trashNode(stranger.id, file.id, new Date()), 'NOT_FOUND');
      await expectCode(ctx.store.restoreNode(stranger.id, file.id), 'NOT_FOUND');
      await expectCode(ctx.store.purgeNode(stranger.id, file.id), 'NOT_FOUND');
      expect(await ctx.store.listChanges(stranger.id, 0, 10)).toEqual([]);
      expect((await ctx.store.getNode(owner.id, file.id))?.trashedAt).toBeNull();
    });
  });

  describe('blob holds and deletion claims', () => {
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
    const unique = (label: string) => sha(`${label}-${randomUUID()}`);

    it('claims an unreferenced, unheld blob once; a second claimer and a holder are refused until release', async () => {
      const blob = unique('free');
      expect(await ctx.store.claimBlobDeletion('d1', blob, at(0), at(60_000))).toBe(true);
      expect(await ctx.store.claimBlobDeletion('d2', blob, at(1), at(60_000))).toBe(false);
      expect(await ctx.store.holdBlobs('h1', [unique('other'), blob], at(2), at(900_000))).toBe(false);
      // Refused as a whole: the other blob of that call is not held either.
      await ctx.store.releaseBlobs('d1', at(3));
      expect(await ctx.store.holdBlobs('h1', [blob], at(4), at(900_000))).toBe(true);
      await ctx.store.releaseBlobs('h1', at(5));
      expect(await ctx.store.claimBlobDeletion('d2', blob, at(6), at(60_000))).toBe(true);
      await ctx.store.releaseBlobs('d2', at(7));
    });

    it('refuses to claim a held blob, and a referenced one, whoever holds or references it', async () => {
      const held = unique('held');
      const other = unique('other');
      expect(await ctx.store.holdBlobs('h1', [held, other], at(0), at(900_000))).toBe(true);
      expect(await ctx.store.holdBlobs('h2', [held], at(1), at(900_000))).toBe(true);
      expect(await ctx.store.claimBlobDeletion('d1', held, at(2), at(60_000))).toBe(false);
      await ctx.store.releaseBlobs('h1', at(3));
      // h2 still holds it; the other blob of h1 is free now.
      expect(await ctx.store.claimBlobDeletion('d1', held, at(4), at(60_000))).toBe(false);
      expect(await ctx.store.claimBlobDeletion('d1', other, at(5), at(60_000))).toBe(true);
      await ctx.store.releaseBlobs('h2', at(6));
      expect(await ctx.store.claimBlobDeletion('d1', held, at(7), at(60_000))).toBe(true);
      await ctx.store.releaseBlobs('d1', at(8));

      const user = await makeUser(ctx.store);
      const content = `referenced-${randomUUID()}`;
      await commit(ctx.store, user.id, null, `${content}.txt`, content);
      expect(await ctx.store.claimBlobDeletion('d2', sha(content), at(9), at(60_000))).toBe(false);
    });

    it('lets holds and claims expire, and a later hold extend an earlier one', async () => {
      const blob = unique('expiring');
      expect(await ctx.store.claimBlobDeletion('d1', blob, at(0), at(1_000))).toBe(true);
      expect(await ctx.store.holdBlobs('h1', [blob], at(999), at(10_000))).toBe(false);
      // The claimer died: at its expiry the blob can be held again.
      expect(await ctx.store.holdBlobs('h1', [blob], at(1_000), at(10_000))).toBe(true);
      expect(await ctx.store.holdBlobs('h1', [blob], at(2_000), at(5_000))).toBe(true);
      expect(await ctx.store.claimBlobDeletion('d2', blob, at(9_999), at(70_000))).toBe(false);
      expect(await ctx.store.claimBlobDeletion('d2', blob, at(10_000), at(70_000))).toBe(true);
      // Releasing anything drops what expired: h1's hold is gone, d2's claim is not.
      await ctx.store.releaseBlobs('nobody', at(10_001));
      expect(await ctx.store.holdBlobs('h3', [blob], at(10_002), at(20_000))).toBe(false);
      await ctx.store.releaseBlobs('d2', at(10_003));
      expect(await ctx.store.holdBlobs('h3', [blob], at(10_004), at(20_000))).toBe(true);
      await ctx.store.releaseBlobs('h3', at(10_005));
    });

    it('lets exactly one of a concurrent hold and claim of the same blob win', async () => {
      for (let i = 0; i < 5; i++) {
        const blob = unique(`race-${i}`);
        const [held, claimed] = await Promise.all([
          ctx.store.holdBlobs(`h${i}`, [blob], at(0), at(900_000)),
          ctx.store.claimBlobDeletion(`d${i}`, blob, at(0), at(60_000)),
        ]);
        expect(held !== claimed).toBe(true);
        await ctx.store.releaseBlobs(`h${i}`, at(1));
        await ctx.store.releaseBlobs(`d${i}`, at(1));
      }
    });
  });

  describe('blob keeps', () => {
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
    const unique = (label: string) => sha(`${label}-${randomUUID()}`);

    it('keeps a blob from deletion claims until its time, then lists it for the sweep', async () => {
      const zip = unique('zip');
      const holder = `zip:${randomUUID()}`;
      await ctx.store.keepBlob(holder, zip, at(10_000));
      // A second keep with an earlier time does not shorten it.
      await ctx.store.keepBlob(holder, zip, at(5_000));
      expect(await ctx.store.claimBlobDeletion('d1', zip, at(9_999), at(60_000))).toBe(false);
      expect(await ctx.store.listExpiredBlobKeeps(at(9_999), 1_000)).not.toContainEqual(
        expect.objectContaining({ sha256: zip }),
      );
      const expired = await ctx.store.listExpiredBlobKeeps(at(10_000), 1_000);
      expect(expired).toContainEqual({ holder, sha256: zip, until: at(10_000) });
      expect(await ctx.store.claimBlobDeletion('d1', zip, at(10_000), at(60_000))).toBe(true);
      await ctx.store.releaseBlobs('d1', at(10_001));
      await ctx.store.dropBlobKeep(holder, zip);
      expect(await ctx.store.listExpiredBlobKeeps(at(10_000), 1_000)).not.toContainEqual(
        expect.objectContaining({ sha256: zip }),
      );
    });

    it('counts an unexpired keep as a reference, whoever else keeps the blob', async () => {
      const zip = unique('zip');
      const soon = new Date(Date.now() + 3_600_000);
      await ctx.store.keepBlob('zip:a', zip, soon);
      await ctx.store.keepBlob('zip:b', zip, soon);
      expect(await ctx.store.isBlobReferenced(zip)).toBe(true);
      await ctx.store.dropBlobKeep('zip:a', zip);
      expect(await ctx.store.isBlobReferenced(zip)).toBe(true);
      await ctx.store.dropBlobKeep('zip:b', zip);
      expect(await ctx.store.isBlobReferenced(zip)).toBe(false);
      await ctx.store.keepBlob('zip:c', zip, new Date(Date.now() - 1_000));
      expect(await ctx.store.isBlobReferenced(zip)).toBe(false);
      await ctx.store.dropBlobKeep('zip:c', zip);
    });
  });

  describe('transcode records', () => {
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
    const unique = (label: string) => sha(`${label}-${randomUUID()}`);

    it('keeps one record per source content: put replaces, get reads it back, delete returns it once', async () => {
      const source = unique('video');
      expect(await ctx.store.getTranscode(source)).toBeNull();
      const skipped = {
        sha256: source,
        status: 'skipped' as const,
        fileId: 'f1',
        posterSha256: null,
        previewSha256: null,
        reason: 'ffmpeg is not installed',
        updatedAt: at(1_000),
      };
      await ctx.store.putTranscode(skipped);
      expect(await ctx.store.getTranscode(source)).toEqual(skipped);
      const done = {
        ...skipped,
        status: 'done' as const,
        fileId: 'f2',
        posterSha256: unique('poster'),
        previewSha256: unique('preview'),
        reason: null,
        updatedAt: at(2_000),
      };
      await ctx.store.putTranscode(done);
      expect(await ctx.store.getTranscode(source)).toEqual(done);
      expect(await ctx.store.getTranscode(unique('other'))).toBeNull();
      expect(await ctx.store.deleteTranscode(source)).toEqual(done);
      expect(await ctx.store.deleteTranscode(source)).toBeNull();
      expect(await ctx.store.getTranscode(source)).toBeNull();
    });

    it("references a done record's poster and preview: no deletion claim on them until it goes", async () => {
      const source = unique('video');
      const poster = unique('poster');
      const preview = unique('preview');
      const record = {
        sha256: source,
        status: 'done' as const,
        fileId: 'f1',
        posterSha256: poster,
        previewSha256: preview,
        reason: null,
        updatedAt: at(0),
      };
      await ctx.store.putTranscode(record);
      expect(await ctx.store.isBlobReferenced(poster)).toBe(true);
      expect(await ctx.store.isBlobReferenced(preview)).toBe(true);
      // The source itself is referenced by revisions, not by its own record.
      expect(await ctx.store.isBlobReferenced(source)).toBe(false);
      expect(await ctx.store.claimBlobDeletion('d1', poster, at(1), at(60_000))).toBe(false);
      expect(await ctx.store.claimBlobDeletion('d1', preview, at(2), at(60_000))).toBe(false);
      // A failed attempt recorded later references nothing.
      await ctx.store.putTranscode({ ...record, status: 'failed', reason: 'broken', updatedAt: at(3) });
      expect(await ctx.store.isBlobReferenced(poster)).toBe(false);
      await ctx.store.putTranscode(record);
      await ctx.store.deleteTranscode(source);
      expect(await ctx.store.claimBlobDeletion('d1', poster, at(4), at(60_000))).toBe(true);
      expect(await ctx.store.claimBlobDeletion('d1', preview, at(5), at(60_000))).toBe(true);
      await ctx.store.releaseBlobs('d1', at(6));
    });
  });
}
