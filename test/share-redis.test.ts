import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { requireService, type TestApp, type TestUser } from './helpers/app.js';
import { createLink, putFile, shareApp, user } from './share-fixtures.js';

const redisUrl = requireService('REDIS_URL');

describe.runIf(redisUrl)('share links across two API instances sharing Redis', () => {
  let a: TestApp;
  let b: TestApp;
  let owner: TestUser;

  beforeAll(async () => {
    // Counters are keyed by the (random) share id, so earlier runs cannot interfere.
    const env = { REDIS_URL: redisUrl ?? '' };
    a = await shareApp({ env });
    b = await shareApp({ env, dataDir: a.dataDir });
    owner = await user(a);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('stops a revoked link at the next request on the other instance', async () => {
    await putFile(a, owner, '/both.txt', 'both');
    const link = await createLink(a, owner, { path: '/both.txt' });
    expect((await request(b.app).get(link.path)).status).toBe(200);
    expect((await request(b.app).get(`${link.path}?dl=1`)).status).toBe(200);
    await request(a.app).delete(`/api/v1/shares/${link.id}`).set(owner.headers).expect(204);
    expect((await request(b.app).get(link.path)).status).toBe(404);
    expect((await request(b.app).get(`${link.path}?dl=1`)).status).toBe(404);
  });

  it('counts wrong passwords across instances: the sixth try is refused on either', async () => {
    await putFile(a, owner, '/pw.txt', 'pw');
    const link = await createLink(a, owner, { path: '/pw.txt', password: 'right password' });
    for (const app of [a, b, a, b, a]) {
      const res = await request(app.app).post(`${link.path}/auth`).type('form').send({ password: 'wrong!' });
      expect(res.status).toBe(401);
    }
    const sixth = await request(b.app)
      .post(`${link.path}/auth`)
      .type('form')
      .send({ password: 'right password' });
    expect(sixth.status).toBe(429);
  });
});
