/**
 * The per-request logging of `createApp` (request ids, one access-log line per request,
 * secrets redacted, `req.log` built only when used) after pino-http was replaced by a
 * leaner middleware: the lines keep pino-http's shape.
 */
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../server/app.js';
import { createTestApp, createTestUser, type TestApp, type TestUser } from './helpers/app.js';

let t: TestApp;
let user: TestUser;

beforeAll(async () => {
  t = await createTestApp();
  user = await createTestUser(t);
});
afterAll(async () => {
  await t?.close();
});

function appLogging(level: string): {
  app: ReturnType<typeof createApp>['app'];
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { app: createApp({ ...t.deps, logger }).app, lines };
}

describe('request logging', () => {
  it('echoes a valid X-Request-Id and replaces a missing or invalid one with a UUID', async () => {
    const { app } = appLogging('silent');
    const given = await request(app).get('/api/v1/health').set('X-Request-Id', 'abc-123.X_y').expect(200);
    expect(given.headers['x-request-id']).toBe('abc-123.X_y');
    const bad = await request(app).get('/api/v1/health').set('X-Request-Id', 'no spaces allowed').expect(200);
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const none = await request(app).get('/api/v1/health').expect(200);
    expect(none.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(none.headers['x-request-id']).not.toBe(bad.headers['x-request-id']);
  });

  it('writes one line per request, as pino-http did, with the token of a URL redacted', async () => {
    const { app, lines } = appLogging('info');
    const res = await request(app).get('/api/v1/dl/secret-token?sig=abc&x=1').set('X-Request-Id', 'rid-1');
    await request(app).get('/api/v1/auth/me').set(user.headers).expect(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 30,
      req: { id: 'rid-1', method: 'GET', url: '/api/v1/dl/[redacted]?sig=redacted&x=1' },
      res: { statusCode: res.status },
      msg: 'request completed',
    });
    expect(typeof lines[0]?.responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('secret-token');
    expect(lines[1]).toMatchObject({
      req: { method: 'GET', url: '/api/v1/auth/me' },
      res: { statusCode: 200 },
    });
  });

  it('logs no line for health probes, nor below its level', async () => {
    const info = appLogging('info');
    await request(info.app).get('/api/v1/health').expect(200);
    const quiet = appLogging('warn');
    await request(quiet.app).get('/api/v1/nothing-here').expect(404);
    await new Promise((resolve) => setImmediate(resolve));
    expect(info.lines).toEqual([]);
    expect(quiet.lines).toEqual([]);
  });
});
