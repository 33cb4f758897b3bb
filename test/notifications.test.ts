import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { TestApp, TestUser } from './helpers/app.js';
import { shareApp, user } from './share-fixtures.js';
import { notify } from '../server/shares/notify.js';

describe('notifications', () => {
  let t: TestApp;
  let me: TestUser;

  beforeEach(async () => {
    t = await shareApp();
    me = await user(t);
  });
  afterEach(async () => {
    await t.close();
  });

  it('pages newest first, filters unread, and marks read by ids or all', async () => {
    for (let i = 1; i <= 5; i++) await notify(t.deps, me.id, 'test.event', { i });
    // zip.ready as the download worker writes it: a bare notify change.
    await t.deps.metadata.appendChange(me.id, 'notify', null, { type: 'zip.ready', jobId: 'job-1' });

    const first = await request(t.app).get('/api/v1/notifications').query({ limit: 4 }).set(me.headers);
    expect(first.status).toBe(200);
    expect(first.body.items.map((n: { type: string }) => n.type)).toEqual([
      'zip.ready',
      'test.event',
      'test.event',
      'test.event',
    ]);
    const second = await request(t.app)
      .get('/api/v1/notifications')
      .query({ limit: 4, cursor: first.body.nextCursor as string })
      .set(me.headers);
    expect(second.body.items.map((n: { data: { i: number } }) => n.data.i)).toEqual([2, 1]);
    expect(second.body.nextCursor).toBeNull();

    const ids = [first.body.items[0].id as number, first.body.items[1].id as number];
    const marked = await request(t.app).post('/api/v1/notifications/read').set(me.headers).send({ ids });
    expect(marked.body).toEqual({ marked: 2 });
    const unread = await request(t.app).get('/api/v1/notifications').query({ unread: '1' }).set(me.headers);
    expect(unread.body.items).toHaveLength(4);
    expect(unread.body.items.every((n: { readAt: string | null }) => n.readAt === null)).toBe(true);

    const all = await request(t.app).post('/api/v1/notifications/read').set(me.headers).send({ all: true });
    expect(all.body).toEqual({ marked: 4 });
    const none = await request(t.app).get('/api/v1/notifications').query({ unread: '1' }).set(me.headers);
    expect(none.body.items).toEqual([]);
  });

  it('delivers notifications as notify events of the change feed, waking a long-poll', async () => {
    const cursor = (await request(t.app).get('/api/v1/changes/latest').set(me.headers)).body.cursor as number;
    const poll = request(t.app)
      .get('/api/v1/changes')
      .query({ cursor: String(cursor), wait: '10' })
      .set(me.headers);
    const answered = poll.then((res) => res);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await notify(t.deps, me.id, 'share.received', { name: 'Team' });
    const res = await answered;
    expect(res.body.changes).toEqual([
      expect.objectContaining({ kind: 'notify', data: { name: 'Team', type: 'share.received' } }),
    ]);
  });

  it("never shows one user's notifications to another and rejects a malformed body", async () => {
    const other = await user(t);
    await notify(t.deps, other.id, 'test.private', {});
    const mine = await request(t.app).get('/api/v1/notifications').set(me.headers);
    expect(mine.body.items).toEqual([]);
    const mark = await request(t.app).post('/api/v1/notifications/read').set(me.headers).send({ all: true });
    expect(mark.body).toEqual({ marked: 0 });
    expect(
      (await request(t.app).post('/api/v1/notifications/read').set(me.headers).send({ ids: [] })).status,
    ).toBe(400);
    expect((await request(t.app).get('/api/v1/notifications')).status).toBe(401);
  });
});
