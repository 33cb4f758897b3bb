/**
 * Conformance tests for listing and the change feed of a MetadataStore: keyset paging
 * in every sort order and a gapless, ordered feed under concurrent writers.
 */
import { describe, it, expect } from 'vitest';
import { nameKey } from '../domain/names.js';
import type { ListOptions, TreeNode } from '../ports/metadata-store.js';
import { commit, expectCode, makeUser, tick, type SuiteContext } from './metadata-fixtures.js';

const WRITERS = 8;
const COMMITS_PER_WRITER = 12;

export function feedTests(ctx: SuiteContext): void {
  describe('listChildren', () => {
    async function pageAll(
      ownerId: string,
      parentId: string | null,
      options: ListOptions,
    ): Promise<TreeNode[]> {
      const out: TreeNode[] = [];
      let cursor: string | null = null;
      for (let guard = 0; guard < 50; guard++) {
        const page = await ctx.store.listChildren(ownerId, parentId, { ...options, limit: 3, cursor });
        expect(page.items.length).toBeLessThanOrEqual(3);
        out.push(...page.items);
        cursor = page.nextCursor;
        if (cursor === null) break;
      }
      return out;
    }

    it('pages every sort order in full, stable on ties, without repeats', async () => {
      const user = await makeUser(ctx.store);
      const folder = await ctx.store.createFolder(user.id, null, 'list');
      // Equal sizes and mtimes force the id tie-break; mixed case checks name folding.
      const specs = [
        { name: 'banana', content: 'xx', mtime: 5 },
        { name: 'Apple', content: 'xxxx', mtime: 9 },
        { name: 'cherry', content: 'xx', mtime: 5 },
        { name: 'date', content: 'x', mtime: 1 },
        { name: 'Elder', content: 'xxxxxx', mtime: 9 },
        { name: 'fig', content: 'xx', mtime: 7 },
        { name: 'grape', content: '', mtime: 3 },
      ];
      for (const s of specs)
        await commit(ctx.store, user.id, folder.id, s.name, s.content, { mtime: s.mtime });
      await ctx.store.createFolder(user.id, null, 'not-in-this-folder');

      const all = (await ctx.store.listChildren(user.id, folder.id, { limit: 100 })).items;
      expect(all).toHaveLength(specs.length);
      const byId = (a: TreeNode, b: TreeNode) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
      const keyOf = {
        name: (n: TreeNode) => nameKey(n.name),
        size: (n: TreeNode) => n.size,
        mtime: (n: TreeNode) => n.mtime ?? 0,
      };
      for (const sort of ['name', 'size', 'mtime'] as const) {
        for (const order of ['asc', 'desc'] as const) {
          const expected = [...all].sort((a, b) => {
            const ka = keyOf[sort](a);
            const kb = keyOf[sort](b);
            const c = ka < kb ? -1 : ka > kb ? 1 : byId(a, b);
            return order === 'asc' ? c : -c;
          });
          const got = await pageAll(user.id, folder.id, { sort, order });
          expect(
            got.map((n) => n.name),
            `${sort} ${order}`,
          ).toEqual(expected.map((n) => n.name));
        }
      }
      expect((await pageAll(user.id, folder.id, {})).map((n) => n.name)).toEqual([
        'Apple',
        'banana',
        'cherry',
        'date',
        'Elder',
        'fig',
        'grape',
      ]);
    });

    it('refuses a cursor made for another sort order and a forged cursor', async () => {
      const user = await makeUser(ctx.store);
      for (const name of ['a', 'b', 'c']) await ctx.store.createFolder(user.id, null, name);
      const page = await ctx.store.listChildren(user.id, null, { limit: 1, sort: 'name' });
      expect(page.nextCursor).not.toBeNull();
      await expectCode(
        ctx.store.listChildren(user.id, null, { cursor: page.nextCursor, sort: 'size' }),
        'BAD_REQUEST',
      );
      await expectCode(ctx.store.listChildren(user.id, null, { cursor: '{"$gt":""}' }), 'BAD_REQUEST');
    });
  });

  describe('change feed', () => {
    it('never skips or reorders an event under 8 concurrent writers and a polling reader', async () => {
      const user = await makeUser(ctx.store);
      const total = WRITERS * COMMITS_PER_WRITER;
      let writersDone = false;
      const writers = Array.from({ length: WRITERS }, async (_, w) => {
        const folder = await ctx.store.createFolder(user.id, null, `writer-${w}`);
        for (let i = 0; i < COMMITS_PER_WRITER - 1; i++) {
          await commit(ctx.store, user.id, folder.id, `file-${i % 3}.txt`, `w${w}-c${i}`);
          if (i % 2 === 0) await tick();
        }
      });
      const seen: number[] = [];
      const reader = (async () => {
        let cursor = 0;
        for (;;) {
          const finished = writersDone;
          const batch = await ctx.store.listChanges(user.id, cursor, 7);
          for (const change of batch) {
            expect(change.seq, 'the feed skipped or reordered a change').toBe(cursor + 1);
            expect(change.ownerId).toBe(user.id);
            seen.push(change.seq);
            cursor = change.seq;
          }
          if (finished && batch.length === 0) return;
          if (batch.length === 0) await tick();
        }
      })();
      await Promise.all(writers);
      writersDone = true;
      await reader;
      expect(seen).toEqual(Array.from({ length: total }, (_, k) => k + 1));
      expect(await ctx.store.latestChangeSeq(user.id)).toBe(total);
    });

    it('appends notifications to the same sequence', async () => {
      const user = await makeUser(ctx.store);
      await ctx.store.createFolder(user.id, null, 'a');
      const note = await ctx.store.appendChange(user.id, 'notify', null, { message: 'hello' });
      expect(note.seq).toBe(2);
      expect((await ctx.store.listChanges(user.id, 1, 10)).map((c) => c.kind)).toEqual(['notify']);
      expect(await ctx.store.latestChangeSeq(user.id)).toBe(2);
    });
  });
}
