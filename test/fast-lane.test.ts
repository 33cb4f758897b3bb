/**
 * The fast lane (`server/fast-lane.ts`): `GET /api/v1/fs/list` answered without Express
 * must be indistinguishable from the Express route — same status, headers in the same
 * order, same bytes, same access-log line and metric — and every request that is not a
 * plain 200 listing must reach Express untouched. Each case is sent to the app twice,
 * with the lane and without (`createApp(deps, { fastLane: false })`, same store), and
 * the lane that answered is read off the request: Express gives it its own prototype.
 */
import http from 'node:http';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPage } from '../contract/schemas/files.js';
import { createApp } from '../server/app.js';
import type { AppDeps } from '../server/deps.js';
import { putFile } from './fs-helpers.js';
import { createTestApp, createTestUser, type TestApp, type TestUser } from './helpers/app.js';

type Lane = 'fast' | 'express';

let t: TestApp;
let owner: TestUser;
let friend: TestUser;
let readToken: string;
let writeToken: string;

/** A listener over `app` that records which lane answered each request. */
function recording(app: http.RequestListener): { listener: http.RequestListener; lanes: Lane[] } {
  const lanes: Lane[] = [];
  const listener: http.RequestListener = (req, res) => {
    res.on('finish', () =>
      lanes.push(Object.getPrototypeOf(req) === http.IncomingMessage.prototype ? 'fast' : 'express'),
    );
    app(req, res);
  };
  return { listener, lanes };
}

let withLane: ReturnType<typeof recording>;
let withoutLane: ReturnType<typeof recording>;

async function apiToken(scopes: string[]): Promise<string> {
  const res = await request(t.app)
    .post('/api/v1/tokens')
    .set(owner.headers)
    .send({ name: scopes.join('+'), scopes })
    .expect(201);
  return (res.body as { token: string }).token;
}

beforeAll(async () => {
  t = await createTestApp();
  owner = await createTestUser(t);
  friend = await createTestUser(t);
  await putFile(t, owner, '/Docs/a.txt', 'a');
  await putFile(t, owner, '/Docs/b.txt', 'bbbb');
  await putFile(t, owner, '/Docs/c.txt', 'cc');
  await putFile(t, owner, '/Docs/Deep/d.txt', 'd');
  await putFile(t, owner, '/Team/plan.md', '# plan');
  await request(t.app)
    .post('/api/v1/shares/users')
    .set(owner.headers)
    .send({ path: '/Team', email: friend.email, role: 'viewer' })
    .expect(202);
  readToken = await apiToken(['read']);
  writeToken = await apiToken(['write']);
  withLane = recording(t.app);
  withoutLane = recording(createApp(t.deps, { fastLane: false }).app);
});
afterAll(async () => {
  await t?.close();
});

interface Sent {
  status: number;
  text: string;
  /** Raw header pairs in the order sent, without the two that differ per response. */
  headers: string[];
}

interface Case {
  name: string;
  method?: 'get' | 'head' | 'post';
  url: string;
  headers?: () => Record<string, string>;
}

async function send(listener: http.RequestListener, c: Case): Promise<Sent> {
  const res = await request(listener)
    [c.method ?? 'get'](c.url)
    .set(c.headers?.() ?? {})
    .buffer(true)
    .parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (chunk: string) => (text += chunk));
      r.on('end', () => done(null, text));
    });
  // superagent keeps the Node response, whose rawHeaders keep the order sent.
  const raw = (res as unknown as { res: http.IncomingMessage }).res.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!/^(date|x-request-id)$/i.test(name)) headers.push(`${name}: ${raw[i + 1]}`);
  }
  return { status: res.status, text: res.body as string, headers };
}

/** Sends `c` to both apps; they must answer alike. Returns the answer and the lane that took it. */
async function both(c: Case): Promise<{ sent: Sent; lane: Lane }> {
  const fast = await send(withLane.listener, c);
  const plain = await send(withoutLane.listener, c);
  expect(fast, c.name).toEqual(plain);
  expect(withoutLane.lanes.at(-1)).toBe('express');
  return { sent: fast, lane: withLane.lanes.at(-1) as Lane };
}

const as = (u: () => TestUser) => () => u().headers;
const bearer = (token: () => string) => () => ({ Authorization: `Bearer ${token()}` });

describe('the fast lane', () => {
  const fastCases: Case[] = [
    { name: 'the root, no query', url: '/api/v1/fs/list', headers: as(() => owner) },
    { name: 'a folder', url: '/api/v1/fs/list?path=%2FDocs', headers: as(() => owner) },
    { name: 'another spelling of it', url: '/api/v1/fs/list?path=/docs/', headers: as(() => owner) },
    { name: 'a page', url: '/api/v1/fs/list?path=/Docs&limit=2', headers: as(() => owner) },
    {
      name: 'sorted',
      url: '/api/v1/fs/list?path=/Docs&sort=size&order=desc',
      headers: as(() => owner),
    },
    { name: 'a nested folder', url: '/api/v1/fs/list?path=/Docs/Deep', headers: as(() => owner) },
    {
      name: 'an API token with scope read',
      url: '/api/v1/fs/list?path=/Docs',
      headers: bearer(() => readToken),
    },
    {
      name: 'a folder shared with the caller',
      url: '/api/v1/fs/list?path=/Shared/Team',
      headers: as(() => friend),
    },
  ];
  for (const c of fastCases) {
    it(`answers ${c.name} exactly as Express does`, async () => {
      const { sent, lane } = await both(c);
      expect(sent.status).toBe(200);
      expect(lane).toBe('fast');
    });
  }

  it('pages on with the cursor it handed out', async () => {
    const first = await both({
      name: 'page 1',
      url: '/api/v1/fs/list?path=/Docs&limit=2',
      headers: as(() => owner),
    });
    const { nextCursor, items } = JSON.parse(first.sent.text) as EntryPage;
    expect(items.map((e) => e.name)).toEqual(['a.txt', 'b.txt']);
    expect(nextCursor).not.toBeNull();
    const second = await both({
      name: 'page 2',
      url: `/api/v1/fs/list?path=/Docs&limit=2&cursor=${encodeURIComponent(nextCursor as string)}`,
      headers: as(() => owner),
    });
    expect(second.lane).toBe('fast');
    expect((JSON.parse(second.sent.text) as EntryPage).items.map((e) => e.name)).toEqual(['c.txt', 'Deep']);
  });

  const expressCases: Array<Case & { status: number }> = [
    { name: 'a missing folder', url: '/api/v1/fs/list?path=/Missing', headers: as(() => owner), status: 404 },
    { name: 'a file', url: '/api/v1/fs/list?path=/Docs/a.txt', headers: as(() => owner), status: 409 },
    { name: 'a bad name', url: '/api/v1/fs/list?path=/Docs/..', headers: as(() => owner), status: 400 },
    { name: 'a bad limit', url: '/api/v1/fs/list?path=/Docs&limit=0', headers: as(() => owner), status: 400 },
    {
      name: 'an unknown parameter',
      url: '/api/v1/fs/list?path=/Docs&x=1',
      headers: as(() => owner),
      status: 400,
    },
    {
      name: 'a repeated parameter',
      url: '/api/v1/fs/list?path=/Docs&path=/',
      headers: as(() => owner),
      status: 400,
    },
    { name: 'no token', url: '/api/v1/fs/list?path=/Docs', status: 401 },
    {
      name: 'a forged token',
      url: '/api/v1/fs/list?path=/Docs',
      headers: () => ({ Authorization: 'Bearer not-a-real-token-at-all' }),
      status: 401,
    },
    {
      name: 'a token without scope read',
      url: '/api/v1/fs/list?path=/Docs',
      headers: bearer(() => writeToken),
      status: 403,
    },
    { name: '/Shared itself', url: '/api/v1/fs/list?path=/Shared', headers: as(() => friend), status: 200 },
    {
      name: 'a HEAD',
      method: 'head',
      url: '/api/v1/fs/list?path=/Docs',
      headers: as(() => owner),
      status: 200,
    },
    { name: 'a trailing slash', url: '/api/v1/fs/list/?path=/Docs', headers: as(() => owner), status: 200 },
    {
      name: 'the path in capitals',
      url: '/API/V1/FS/LIST?path=/Docs',
      headers: as(() => owner),
      status: 200,
    },
    { name: 'a longer path', url: '/api/v1/fs/listing?path=/Docs', headers: as(() => owner), status: 404 },
    {
      name: 'a request with a body',
      method: 'post',
      url: '/api/v1/fs/list?path=/Docs',
      headers: as(() => owner),
      status: 404,
    },
  ];
  for (const c of expressCases) {
    it(`leaves ${c.name} to Express (${c.status})`, async () => {
      const { sent, lane } = await both(c);
      expect(sent.status).toBe(c.status);
      expect(lane).toBe('express');
    });
  }

  it('leaves conditional requests to Express, which answers 304', async () => {
    const { sent } = await both({
      name: 'plain',
      url: '/api/v1/fs/list?path=/Docs',
      headers: as(() => owner),
    });
    const etag = sent.headers.find((h) => h.startsWith('ETag: '))?.slice(6) as string;
    expect(etag).toMatch(/^W\//);
    const again = await both({
      name: 'if-none-match',
      url: '/api/v1/fs/list?path=/Docs',
      headers: () => ({ ...owner.headers, 'If-None-Match': etag }),
    });
    expect(again.sent.status).toBe(304);
    expect(again.lane).toBe('express');
  });

  it('sees a change at once, and a revoked session at once', async () => {
    const url = '/api/v1/fs/list?path=/Docs/Deep';
    const before = await both({ name: 'before', url, headers: as(() => owner) });
    await putFile(t, owner, '/Docs/Deep/e.txt', 'e');
    const after = await both({ name: 'after', url, headers: as(() => owner) });
    expect(after.lane).toBe('fast');
    expect(after.sent.text).not.toBe(before.sent.text);
    expect((JSON.parse(after.sent.text) as EntryPage).items.map((e) => e.name)).toEqual(['d.txt', 'e.txt']);

    const leaving = await createTestUser(t);
    await putFile(t, leaving, '/Mine/x.txt', 'x');
    const mine = { name: 'mine', url: '/api/v1/fs/list?path=/Mine', headers: as(() => leaving) };
    expect((await both(mine)).lane).toBe('fast');
    await request(t.app).post('/api/v1/auth/logout').set(leaving.headers).expect(204);
    const revoked = await both(mine);
    expect(revoked.sent.status).toBe(401);
    expect(revoked.lane).toBe('express');
  });

  it('writes the same access-log line and metric as the Express route', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const deps: AppDeps = { ...t.deps, logger };
    const count = async (): Promise<number> => {
      const metric = await deps.metrics.httpDuration.get();
      return metric.values
        .filter(
          (v) =>
            v.metricName === 'aio_http_request_duration_seconds_count' &&
            v.labels.route === '/api/v1/fs/list' &&
            v.labels.status === '200',
        )
        .reduce((sum, v) => sum + v.value, 0);
    };
    const fast = recording(createApp(deps).app);
    const plain = recording(createApp(deps, { fastLane: false }).app);
    const before = await count();
    const url = '/api/v1/fs/list?path=/Docs';
    await request(fast.listener).get(url).set(owner.headers).set('X-Request-Id', 'rid-fast').expect(200);
    await request(plain.listener).get(url).set(owner.headers).set('X-Request-Id', 'rid-plain').expect(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fast.lanes).toEqual(['fast']);
    expect(await count()).toBe(before + 2);
    expect(lines).toHaveLength(2);
    const shape = (line: Record<string, unknown>) => ({
      ...line,
      time: 0,
      responseTime: 0,
      req: { ...(line.req as object), id: '' },
    });
    expect(lines[0]).toMatchObject({
      req: { id: 'rid-fast', method: 'GET', url: '/api/v1/fs/list?path=%2FDocs' },
      res: { statusCode: 200 },
      msg: 'request completed',
    });
    expect(shape(lines[0] as Record<string, unknown>)).toEqual(shape(lines[1] as Record<string, unknown>));
  });

  it('hands a failing store to Express, which answers as without the lane', async () => {
    const broken = await createTestApp();
    const someone = await createTestUser(broken);
    const fast = recording(broken.app);
    const plain = recording(createApp(broken.deps, { fastLane: false }).app);
    await broken.close();
    const c: Case = { name: 'closed store', url: '/api/v1/fs/list?path=/', headers: as(() => someone) };
    const viaLane = await send(fast.listener, c);
    expect(viaLane.status).toBeGreaterThanOrEqual(500);
    expect(viaLane).toEqual(await send(plain.listener, c));
    expect(fast.lanes).toEqual(['express']);
  });
});
