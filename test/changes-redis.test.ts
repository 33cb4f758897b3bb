import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangesResponse } from '../contract/schemas/files.js';
import { changesChannel } from '../core/changes.js';
import { createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, requireService } from './helpers/app.js';

const redisUrl = requireService('REDIS_URL');

describe.runIf(redisUrl !== undefined)('change feed across two API instances over Redis', () => {
  let a: FilesTestApp;
  let b: FilesTestApp;
  let admin: Redis;

  beforeAll(async () => {
    a = await createFilesTestApp({ env: { REDIS_URL: redisUrl as string } });
    b = await createFilesTestApp({ env: { REDIS_URL: redisUrl as string }, dataDir: a.t.dataDir });
    admin = new Redis(redisUrl as string);
  });
  afterAll(async () => {
    admin?.disconnect();
    await b?.t.close();
    await a?.t.close();
  });

  it('wakes a long-poll on one instance within 200 ms of a commit on the other', async () => {
    const user = await createTestUser(a.t);
    const poll = request(a.app)
      .get('/api/v1/changes?cursor=0&wait=20')
      .set(user.headers)
      .then((res) => ({ res, at: performance.now() }));
    await new Promise((r) => setTimeout(r, 300));
    const committedAt = performance.now();
    const node = await putFile(b.t, user, '/from-b.txt', 'written by instance b');
    const { res, at } = await poll;
    expect((res.body as ChangesResponse).changes.map((c) => c.nodeId)).toEqual([node.id]);
    expect(at - committedAt).toBeLessThan(200);
  });

  it('releases the subscription when the client disconnects', async () => {
    const user = await createTestUser(a.t);
    const channel = changesChannel(user.id);
    const subscribers = async () => Number((await admin.pubsub('NUMSUB', channel))[1]);
    const server = a.app.listen(0);
    try {
      const { port } = server.address() as AddressInfo;
      const req = http.get({ port, path: '/api/v1/changes?cursor=0&wait=30', headers: user.headers });
      req.on('error', () => undefined);
      const deadline = Date.now() + 3000;
      while ((await subscribers()) === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(await subscribers()).toBe(1);
      req.destroy();
      const gone = Date.now() + 3000;
      while ((await subscribers()) > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
      expect(await subscribers()).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
