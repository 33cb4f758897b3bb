import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Entry, EntryPage, RevisionBody } from '../contract/schemas/files.js';
import { ManualClock } from '../core/domain/clock.js';
import { binaryParser, createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';

let f: FilesTestApp;
let user: TestUser;
const clock = new ManualClock(Date.UTC(2026, 2, 1));

beforeAll(async () => {
  f = await createFilesTestApp({ clock });
  user = await createTestUser(f.t);
});
afterAll(async () => {
  await f?.t.close();
});

const get = (url: string, u: TestUser = user) => request(f.app).get(url).set(u.headers);
const post = (url: string, body: object = {}, u: TestUser = user) =>
  request(f.app).post(url).set(u.headers).send(body);
const del = (url: string, u: TestUser = user) => request(f.app).delete(url).set(u.headers);

async function trashItems(u: TestUser = user): Promise<Entry[]> {
  return ((await get('/api/v1/trash?limit=100', u).expect(200)).body as EntryPage).items;
}

describe('trash', () => {
  it('lists what was deleted with its old path, restores it in place, and purges for good', async () => {
    await putFile(f.t, user, '/t1/docs/a.txt', 'aaa');
    await putFile(f.t, user, '/t1/docs/b.txt', 'bbb');
    const folder = await post('/api/v1/fs/delete', { path: '/t1/docs' }).expect(200);
    const items = await trashItems();
    // The folder was trashed with its content: only the folder is listed.
    expect(items.filter((e) => e.path.startsWith('/t1')).map((e) => e.path)).toEqual(['/t1/docs']);
    await get('/api/v1/fs/stat?path=/t1/docs/a.txt').expect(404);

    const restored = await post(`/api/v1/trash/${folder.body.id}/restore`).expect(200);
    expect(restored.body).toMatchObject({ path: '/t1/docs', trashedAt: null });
    await get('/api/v1/fs/stat?path=/t1/docs/b.txt').expect(200);
    expect((await trashItems()).some((e) => e.id === folder.body.id)).toBe(false);
  });

  it('keeps an item trashed earlier on its own in the trash when its folder is restored', async () => {
    await putFile(f.t, user, '/t2/keep.txt', 'k');
    const early = await post('/api/v1/fs/delete', { path: '/t2/keep.txt' }).expect(200);
    clock.advance(1000);
    const dir = await post('/api/v1/fs/delete', { path: '/t2' }).expect(200);
    const paths = (await trashItems()).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/t2', '/t2/keep.txt']));
    await post(`/api/v1/trash/${dir.body.id}/restore`).expect(200);
    await get('/api/v1/fs/stat?path=/t2/keep.txt').expect(404);
    expect((await trashItems()).map((e) => e.id)).toContain(early.body.id);
  });

  it('refuses to restore over a name taken meanwhile with 409', async () => {
    await putFile(f.t, user, '/t3/x.txt', 'old');
    const old = await post('/api/v1/fs/delete', { path: '/t3/x.txt' }).expect(200);
    await putFile(f.t, user, '/t3/X.TXT', 'new');
    const res = await post(`/api/v1/trash/${old.body.id}/restore`).expect(409);
    expect(res.body.error.code).toBe('NAME_CONFLICT');
  });

  it('purges a trashed file, frees its bytes and deletes the blob nothing else uses', async () => {
    const node = await putFile(f.t, user, '/t4/only-here.bin', 'unique content for purge test');
    const sha = node.sha256 as string;
    const used = (await f.t.deps.metadata.getUserById(user.id))?.storageUsed ?? 0;
    await del(`/api/v1/trash/${node.id}`).expect(409); // not in the trash
    await post('/api/v1/fs/delete', { path: '/t4/only-here.bin' }).expect(200);
    await del(`/api/v1/trash/${node.id}`).expect(204);
    expect(await f.t.deps.blobs.stat(sha)).toBeNull();
    expect((await f.t.deps.metadata.getUserById(user.id))?.storageUsed).toBe(used - 29);
    await get(`/api/v1/files/${node.id}`).expect(404);
  });

  it('keeps a blob that another file still references when purging', async () => {
    const a = await putFile(f.t, user, '/t5/a.bin', 'shared content');
    await post('/api/v1/fs/copy', { from: '/t5/a.bin', to: '/t5/b.bin' }).expect(201);
    await post('/api/v1/fs/delete', { path: '/t5/a.bin' }).expect(200);
    await del(`/api/v1/trash/${a.id}`).expect(204);
    expect(await f.t.deps.blobs.stat(a.sha256 as string)).not.toBeNull();
    const b = await get('/api/v1/fs/stat?path=/t5/b.bin').expect(200);
    const content = await get(`/api/v1/files/${b.body.id}/content`).parse(binaryParser).expect(200);
    expect((content.body as Buffer).toString()).toBe('shared content');
  });
});

describe('versions', () => {
  it('lists revisions newest first and restores an old one as a new revision', async () => {
    const v1 = await putFile(f.t, user, '/v/notes.txt', 'version one', { mtime: 1 });
    await putFile(f.t, user, '/v/notes.txt', 'version two!', { mtime: 2 });
    const list = await get(`/api/v1/files/${v1.id}/versions`).expect(200);
    const items = list.body.items as RevisionBody[];
    expect(items.map((r) => [r.revision, r.size, r.current])).toEqual([
      [2, 12, true],
      [1, 11, false],
    ]);
    const restored = await post(`/api/v1/files/${v1.id}/versions/1/restore`).expect(201);
    expect(restored.body).toMatchObject({
      id: v1.id,
      revision: 3,
      sha256: v1.sha256,
      size: 11,
      path: '/v/notes.txt',
    });
    const content = await get(`/api/v1/files/${v1.id}/content`).parse(binaryParser).expect(200);
    expect((content.body as Buffer).toString()).toBe('version one');
    await post(`/api/v1/files/${v1.id}/versions/9/restore`).expect(404);
    await post(`/api/v1/files/${v1.id}/versions/zero/restore`).expect(400);
  });

  it('keeps the last 10 revisions', async () => {
    let id = '';
    for (let i = 1; i <= 12; i++) id = (await putFile(f.t, user, '/v/many.txt', `content ${i}`)).id;
    const items = (await get(`/api/v1/files/${id}/versions`).expect(200)).body.items as RevisionBody[];
    expect(items.map((r) => r.revision)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
  });
});

describe("another user's ids", () => {
  it('answer 404 on every id route and change nothing', async () => {
    const other = await createTestUser(f.t);
    const file = await putFile(f.t, user, '/own/secret.txt', 'mine');
    await putFile(f.t, user, '/own/secret.txt', 'mine v2');
    const trashed = await putFile(f.t, user, '/own/trashed.txt', 'in trash');
    await post('/api/v1/fs/delete', { path: '/own/trashed.txt' }).expect(200);
    const seq = await f.t.deps.metadata.latestChangeSeq(user.id);

    const attempts = [
      get(`/api/v1/files/${file.id}`, other),
      get(`/api/v1/files/${file.id}/content`, other),
      request(f.app).head(`/api/v1/files/${file.id}/content`).set(other.headers),
      get(`/api/v1/files/${file.id}/versions`, other),
      post(`/api/v1/files/${file.id}/versions/1/restore`, {}, other),
      post(`/api/v1/files/${file.id}/link`, {}, other),
      post(`/api/v1/trash/${trashed.id}/restore`, {}, other),
      del(`/api/v1/trash/${trashed.id}`, other),
    ];
    for (const attempt of attempts) expect((await attempt).status).toBe(404);

    expect(await f.t.deps.metadata.latestChangeSeq(user.id)).toBe(seq);
    expect((await f.t.deps.metadata.getNode(user.id, file.id))?.revision).toBe(2);
    expect((await f.t.deps.metadata.getNode(user.id, trashed.id))?.trashedAt).not.toBeNull();
    expect(await trashItems(other)).toEqual([]);
    const otherList = await get('/api/v1/fs/list', other).expect(200);
    expect((otherList.body as EntryPage).items).toEqual([]);
  });
});
