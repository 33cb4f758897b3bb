import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import { binaryParser } from './fs-helpers.js';
import type { TestApp, TestUser } from './helpers/app.js';
import { putFile, shareApp, user } from './share-fixtures.js';
import { resolveWritableFolder } from '../server/shares/mounts.js';

describe('sharing with users', () => {
  let t: TestApp;
  let owner: TestUser;
  let friend: TestUser;
  let stranger: TestUser;

  beforeEach(async () => {
    t = await shareApp();
    owner = await user(t);
    friend = await user(t);
    stranger = await user(t);
    await putFile(t, owner, '/Team/plan.txt', 'the plan');
    await putFile(t, owner, '/Private/diary.txt', 'dear diary');
  });
  afterEach(async () => {
    await t.close();
  });

  async function grant(email: string, role: 'viewer' | 'editor', path = '/Team') {
    return request(t.app).post('/api/v1/shares/users').set(owner.headers).send({ path, email, role });
  }

  it('answers an unknown email exactly like a known one and creates nothing for it', async () => {
    const known = await grant(friend.email, 'viewer');
    const unknown = await grant('nobody-here@example.test', 'viewer');
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(202);
    expect(Object.keys(unknown.body)).toEqual(Object.keys(known.body));
    expect(unknown.body).toEqual({ ...known.body, email: 'nobody-here@example.test' });
    const list = await request(t.app).get('/api/v1/shares').set(owner.headers);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({
      type: 'user',
      grantee: { email: friend.email },
      role: 'viewer',
    });
  });

  it('lists /Shared as the mounts, then the own folder of that name at the path asked for', async () => {
    await grant(friend.email, 'viewer');
    const made = await request(t.app)
      .post('/api/v1/fs/mkdir')
      .set(friend.headers)
      .send({ path: '/shared/mine', parents: true });
    expect(made.status).toBe(201);
    // Every listing gives its entries under the folder path it was asked for (names are
    // unique ignoring case); the mounts keep their /Shared/<name>.
    for (const asked of ['/shared', '/Shared']) {
      const root = await request(t.app).get('/api/v1/fs/list').query({ path: asked }).set(friend.headers);
      expect(root.body.items.map((e: { path: string }) => e.path)).toEqual(['/Shared/Team', `${asked}/mine`]);
    }
  });

  it('shows a shared folder under /Shared to the recipient: list, stat and download by path and by id', async () => {
    await grant(friend.email, 'viewer');
    const withMe = await request(t.app).get('/api/v1/shares/with-me').set(friend.headers);
    expect(withMe.body.items).toEqual([
      expect.objectContaining({
        name: 'Team',
        path: '/Shared/Team',
        role: 'viewer',
        owner: { id: owner.id, email: owner.email },
      }),
    ]);
    const root = await request(t.app).get('/api/v1/fs/list').query({ path: '/Shared' }).set(friend.headers);
    expect(root.body.items.map((e: { path: string }) => e.path)).toEqual(['/Shared/Team']);
    const list = await request(t.app)
      .get('/api/v1/fs/list')
      .query({ path: '/Shared/Team' })
      .set(friend.headers);
    expect(list.body.items).toEqual([
      expect.objectContaining({ name: 'plan.txt', path: '/Shared/Team/plan.txt' }),
    ]);
    const stat = await request(t.app)
      .get('/api/v1/fs/stat')
      .query({ path: '/Shared/Team/plan.txt' })
      .set(friend.headers);
    expect(stat.status).toBe(200);
    const id = stat.body.id as string;
    const byId = await request(t.app).get(`/api/v1/files/${id}`).set(friend.headers);
    expect(byId.body).toMatchObject({ id, path: '/Shared/Team/plan.txt' });
    const bytes = await request(t.app)
      .get(`/api/v1/files/${id}/content`)
      .set(friend.headers)
      .buffer(true)
      .parse(binaryParser);
    expect((bytes.body as Buffer).toString()).toBe('the plan');
  });

  it('refuses every write of a viewer with 403', async () => {
    await grant(friend.email, 'viewer');
    const h = friend.headers;
    expect(
      (await request(t.app).post('/api/v1/fs/mkdir').set(h).send({ path: '/Shared/Team/new' })).status,
    ).toBe(403);
    expect(
      (await request(t.app).post('/api/v1/fs/mkdir').set(h).send({ path: '/Shared/Team/a/b', parents: true }))
        .status,
    ).toBe(403);
    expect(
      (
        await request(t.app)
          .post('/api/v1/fs/move')
          .set(h)
          .send({ from: '/Shared/Team/plan.txt', to: '/Shared/Team/p.txt' })
      ).status,
    ).toBe(403);
    expect(
      (await request(t.app).post('/api/v1/fs/delete').set(h).send({ path: '/Shared/Team/plan.txt' })).status,
    ).toBe(403);
    expect(
      (
        await request(t.app)
          .post('/api/v1/fs/copy')
          .set(h)
          .send({ from: '/Shared/Team/plan.txt', to: '/Shared/Team/c.txt' })
      ).status,
    ).toBe(403);
    await expect(resolveWritableFolder(t.deps, friend.id, '/Shared/Team')).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    const list = await request(t.app).get('/api/v1/fs/list').query({ path: '/Shared/Team' }).set(h);
    expect(list.body.items.map((e: { name: string }) => e.name)).toEqual(['plan.txt']);
  });

  it('lets an editor create, rename and delete inside, but not move the shared folder itself or out of it', async () => {
    await grant(friend.email, 'editor');
    const h = friend.headers;
    expect(
      (await request(t.app).post('/api/v1/fs/mkdir').set(h).send({ path: '/Shared/Team/notes' })).status,
    ).toBe(201);
    expect(
      (await request(t.app).post('/api/v1/fs/mkdir').set(h).send({ path: '/Shared/Team/x/y', parents: true }))
        .status,
    ).toBe(201);
    const moved = await request(t.app)
      .post('/api/v1/fs/move')
      .set(h)
      .send({ from: '/Shared/Team/plan.txt', to: '/Shared/Team/notes/plan-v2.txt' });
    expect(moved.status).toBe(200);
    expect(
      (await request(t.app).post('/api/v1/fs/delete').set(h).send({ path: '/Shared/Team/x' })).status,
    ).toBe(200);
    expect(
      (await request(t.app).post('/api/v1/fs/delete').set(h).send({ path: '/Shared/Team' })).status,
    ).toBe(403);
    expect(
      (await request(t.app).post('/api/v1/fs/move').set(h).send({ from: '/Shared/Team/notes', to: '/mine' }))
        .status,
    ).toBe(409);

    // The owner sees the editor's work in their own tree.
    const ownList = await request(t.app)
      .get('/api/v1/fs/list')
      .query({ path: '/Team/notes' })
      .set(owner.headers);
    expect(ownList.body.items.map((e: { name: string }) => e.name)).toEqual(['plan-v2.txt']);
    const target = await resolveWritableFolder(t.deps, friend.id, '/Shared/Team/notes');
    expect(target.ownerId).toBe(owner.id);
    expect(await resolveWritableFolder(t.deps, friend.id, '/')).toEqual({
      ownerId: friend.id,
      folderId: null,
    });
  });

  it('answers 404 to a stranger by path and by id, and to the recipient after the owner revokes', async () => {
    await grant(friend.email, 'editor');
    const stat = await request(t.app)
      .get('/api/v1/fs/stat')
      .query({ path: '/Shared/Team/plan.txt' })
      .set(friend.headers);
    const id = stat.body.id as string;
    const diary = await request(t.app)
      .get('/api/v1/fs/stat')
      .query({ path: '/Private/diary.txt' })
      .set(owner.headers);

    expect(
      (
        await request(t.app)
          .get('/api/v1/fs/stat')
          .query({ path: '/Shared/Team/plan.txt' })
          .set(stranger.headers)
      ).status,
    ).toBe(404);
    expect((await request(t.app).get(`/api/v1/files/${id}`).set(stranger.headers)).status).toBe(404);
    expect((await request(t.app).get(`/api/v1/files/${id}/content`).set(stranger.headers)).status).toBe(404);
    expect(
      (await request(t.app).post('/api/v1/fs/mkdir').set(stranger.headers).send({ path: '/Shared/Team/x' }))
        .status,
    ).toBe(404);
    // The recipient sees only inside the shared folder.
    expect(
      (
        await request(t.app)
          .get(`/api/v1/files/${diary.body.id as string}`)
          .set(friend.headers)
      ).status,
    ).toBe(404);

    const list = await request(t.app).get('/api/v1/shares').set(owner.headers);
    await request(t.app)
      .delete(`/api/v1/shares/${list.body.items[0].id as string}`)
      .set(owner.headers)
      .expect(204);
    expect(
      (
        await request(t.app)
          .get('/api/v1/fs/stat')
          .query({ path: '/Shared/Team/plan.txt' })
          .set(friend.headers)
      ).status,
    ).toBe(404);
    expect((await request(t.app).get(`/api/v1/files/${id}`).set(friend.headers)).status).toBe(404);
    expect((await request(t.app).get('/api/v1/shares/with-me').set(friend.headers)).body.items).toEqual([]);
  });

  it('puts changes inside the shared folder into the recipient feed, and notifies the share', async () => {
    await grant(friend.email, 'viewer');
    const latest = (await request(t.app).get('/api/v1/changes/latest').set(friend.headers)).body
      .cursor as number;
    await putFile(t, owner, '/Team/new.txt', 'fresh');
    await putFile(t, owner, '/Private/hidden.txt', 'nope');
    const feed = await request(t.app)
      .get('/api/v1/changes')
      .query({ cursor: String(latest) })
      .set(friend.headers);
    expect(feed.body.changes).toEqual([
      expect.objectContaining({
        kind: 'create',
        data: expect.objectContaining({
          name: 'new.txt',
          share: expect.objectContaining({ ownerId: owner.id }),
        }),
      }),
    ]);

    const all = await request(t.app).get('/api/v1/changes').query({ cursor: '0' }).set(friend.headers);
    expect(all.body.changes[0]).toMatchObject({
      kind: 'notify',
      data: { type: 'share.received', name: 'Team', path: '/Shared/Team', role: 'viewer' },
    });
    const notes = await request(t.app)
      .get('/api/v1/notifications')
      .query({ unread: '1' })
      .set(friend.headers);
    expect(notes.body.items).toEqual([expect.objectContaining({ type: 'share.received', readAt: null })]);
  });

  it('records grants and revocations in the audit log', async () => {
    await grant(friend.email, 'viewer');
    await grant('unknown@example.test', 'viewer');
    const list = await request(t.app).get('/api/v1/shares').set(owner.headers);
    await request(t.app)
      .delete(`/api/v1/shares/${list.body.items[0].id as string}`)
      .set(owner.headers)
      .expect(204);
    const audit = await t.deps.metadata.listAudit(owner.id, { limit: 10 });
    expect(audit.items.map((e) => e.action).reverse()).toEqual([
      'share.user_grant',
      'share.user_grant',
      'share.user_revoke',
    ]);
  });
});
