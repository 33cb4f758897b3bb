import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeBody, ChangesResponse } from '../contract/schemas/files.js';
import { announceChange } from '../core/changes.js';
import { createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';

let f: FilesTestApp;

beforeAll(async () => {
  f = await createFilesTestApp();
});
afterAll(async () => {
  await f?.t.close();
});

const feed = (u: TestUser, query: string) => request(f.app).get(`/api/v1/changes?${query}`).set(u.headers);

/** Commits a file straight through the store (as the worker does) without announcing it. */
async function commitQuietly(u: TestUser, name: string): Promise<number> {
  const { blobs, metadata } = f.t.deps;
  const { sha256, size } = await blobs.put(
    (async function* () {
      yield Buffer.from(name);
    })(),
  );
  await metadata.commitFile({
    ownerId: u.id,
    parentId: null,
    name,
    sha256,
    size,
    mtime: null,
    mediaType: null,
    sourceId: randomUUID(),
  });
  return metadata.latestChangeSeq(u.id);
}

describe('GET /changes', () => {
  it('starts from now when the cursor is omitted or latest', async () => {
    const user = await createTestUser(f.t);
    await putFile(f.t, user, '/a.txt', 'a');
    await putFile(f.t, user, '/b.txt', 'b');
    const omitted = await feed(user, '').expect(200);
    expect(omitted.body).toEqual({ changes: [], cursor: 2, hasMore: false });
    const latest = await feed(user, 'cursor=latest&wait=30').expect(200);
    expect(latest.body.cursor).toBe(2);
    const route = await request(f.app).get('/api/v1/changes/latest').set(user.headers).expect(200);
    expect(route.body).toEqual({ cursor: 2 });
  });

  it('pages through the feed in order with hasMore and the last seq as cursor', async () => {
    const user = await createTestUser(f.t);
    await putFile(f.t, user, '/d/one.txt', '1'); // creates /d (1) and one.txt (2)
    await putFile(f.t, user, '/d/one.txt', 'one'); // update (3)
    await request(f.app)
      .post('/api/v1/fs/move')
      .set(user.headers)
      .send({ from: '/d/one.txt', to: '/d/uno.txt' });
    await request(f.app).post('/api/v1/fs/delete').set(user.headers).send({ path: '/d' });

    const first = await feed(user, 'cursor=0&limit=3').expect(200);
    const body = first.body as ChangesResponse;
    expect(body.changes.map((c) => [c.seq, c.kind])).toEqual([
      [1, 'create'],
      [2, 'create'],
      [3, 'update'],
    ]);
    expect(body.cursor).toBe(3);
    expect(body.hasMore).toBe(true);
    expect(body.changes[1]?.data).toMatchObject({ name: 'one.txt', kind: 'file', revision: 1 });

    const rest = (await feed(user, 'cursor=3&limit=3').expect(200)).body as ChangesResponse;
    expect(rest.changes.map((c) => [c.seq, c.kind])).toEqual([
      [4, 'move'],
      [5, 'delete'],
    ]);
    expect(rest).toMatchObject({ cursor: 5, hasMore: false });
    const none = (await feed(user, 'cursor=5').expect(200)).body as ChangesResponse;
    expect(none).toEqual({ changes: [], cursor: 5, hasMore: false });
  });

  it('answers 410 CURSOR_EXPIRED for a cursor past the newest change', async () => {
    const user = await createTestUser(f.t);
    await putFile(f.t, user, '/x', 'x');
    const res = await feed(user, 'cursor=2').expect(410);
    expect(res.body.error.code).toBe('CURSOR_EXPIRED');
    await feed(user, 'cursor=-1').expect(400);
    await feed(user, 'cursor=').expect(400);
    await feed(user, 'wait=61&cursor=0').expect(400);
  });

  it('shows each user only their own changes', async () => {
    const alice = await createTestUser(f.t);
    const bob = await createTestUser(f.t);
    await putFile(f.t, alice, '/alice-only', 'a');
    const res = (await feed(bob, 'cursor=0').expect(200)).body as ChangesResponse;
    expect(res.changes).toEqual([]);
    await request(f.app).get('/api/v1/changes?cursor=0').expect(401);
  });
});

describe('long-poll', () => {
  it('returns within 200 ms of a commit made through the store and announced', async () => {
    const user = await createTestUser(f.t);
    const cursor = await f.t.deps.metadata.latestChangeSeq(user.id);
    const started = performance.now();
    const poll = feed(user, `cursor=${cursor}&wait=20`).then((res) => ({ res, at: performance.now() }));
    await new Promise((r) => setTimeout(r, 400));
    const committedAt = performance.now();
    const seq = await commitQuietly(user, 'late.txt');
    await announceChange(f.t.deps.cache, user.id, seq);
    const { res, at } = await poll;
    expect(res.status).toBe(200);
    expect((res.body as ChangesResponse).changes.map((c) => c.seq)).toEqual([seq]);
    expect(committedAt - started).toBeGreaterThanOrEqual(390); // it really waited
    expect(at - committedAt).toBeLessThan(200);
  });

  it('wakes a waiting reader once POST /fs/mkdirs has made its folders, with all of them', async () => {
    const user = await createTestUser(f.t);
    const cursor = await f.t.deps.metadata.latestChangeSeq(user.id);
    const poll = feed(user, `cursor=${cursor}&wait=20`).then((res) => ({ res, at: performance.now() }));
    await new Promise((r) => setTimeout(r, 300));
    const paths = ['/md/a', '/md/b', '/md/a/c'];
    const startedAt = performance.now();
    await request(f.app).post('/api/v1/fs/mkdirs').set(user.headers).send({ paths }).expect(200);
    const { res, at } = await poll;
    const names = (res.body as ChangesResponse).changes.map((c) => c.data.name);
    expect(names.sort()).toEqual(['a', 'b', 'c', 'md']);
    // Announced: well before the re-read about every second would have found them.
    expect(at - startedAt).toBeLessThan(500);
  });

  it('still finds an unannounced commit by re-reading about every second', async () => {
    const user = await createTestUser(f.t);
    const poll = feed(user, 'cursor=0&wait=20').then((res) => ({ res, at: performance.now() }));
    await new Promise((r) => setTimeout(r, 200));
    const committedAt = performance.now();
    await commitQuietly(user, 'silent.txt');
    const { res, at } = await poll;
    expect((res.body as ChangesResponse).changes).toHaveLength(1);
    expect(at - committedAt).toBeLessThan(1500);
  });

  it('answers with an empty list after wait seconds when nothing happens', async () => {
    const user = await createTestUser(f.t);
    const started = performance.now();
    const res = await feed(user, 'cursor=0&wait=1').expect(200);
    const took = performance.now() - started;
    expect(res.body).toEqual({ changes: [], cursor: 0, hasMore: false });
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2500);
  });

  it('never lets a polling reader skip or reorder events while 8 writers commit in parallel', async () => {
    const user = await createTestUser(f.t);
    const writers = 8;
    const perWriter = 12;
    const total = writers * perWriter;
    const seen: ChangeBody[] = [];
    const reader = (async () => {
      let cursor = 0;
      while (seen.length < total) {
        const res = await feed(user, `cursor=${cursor}&limit=7&wait=5`);
        expect(res.status).toBe(200);
        const body = res.body as ChangesResponse;
        seen.push(...body.changes);
        cursor = body.cursor;
      }
    })();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          // Half the writers go through the store (the worker's path), half through the API.
          if (w % 2 === 0) await putFile(f.t, user, `/w${w}-${i}.txt`, `${w}:${i}`);
          else
            await request(f.app)
              .post('/api/v1/fs/mkdir')
              .set(user.headers)
              .send({ path: `/w${w}-${i}` })
              .expect(201);
        }
      }),
    );
    await reader;
    expect(seen.map((c) => c.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (let w = 0; w < writers; w++) {
      const names = seen.map((c) => c.data.name).filter((n) => String(n).startsWith(`w${w}-`));
      expect(names).toEqual(
        Array.from({ length: perWriter }, (_, i) => `w${w}-${i}${w % 2 === 0 ? '.txt' : ''}`),
      );
    }
  });
});
