/**
 * `createApp` runs the JSON body parser only for requests with a body (`withBodyOnly` in
 * server/app.ts). Bodies sent with a Content-Length or chunked are parsed exactly as
 * before; a request without one never reaches the parser.
 */
import express, { type RequestHandler } from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withBodyOnly } from '../server/app.js';
import { createTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;

beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

/** An app whose parser counts its calls, echoing what it parsed. */
function echoApp(): { app: express.Express; calls: () => number } {
  let calls = 0;
  const json = express.json();
  const counted: RequestHandler = (req, res, next) => {
    calls += 1;
    json(req, res, next);
  };
  const app = express();
  app.use(withBodyOnly(counted));
  app.all('/echo', (req, res) => {
    res.json({ body: (req.body as unknown) ?? null });
  });
  return { app, calls: () => calls };
}

/** POSTs `chunks` with Transfer-Encoding: chunked (no Content-Length). */
async function postChunked(
  app: express.Express,
  chunks: string[],
): Promise<{ status: number; text: string }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      const req = http.request(
        {
          port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/echo',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      for (const chunk of chunks) req.write(chunk);
      req.end();
    });
  } finally {
    server.close();
  }
}

describe('JSON bodies', () => {
  it('are parsed when sent with a Content-Length or chunked, and requests without one skip the parser', async () => {
    const { app, calls } = echoApp();
    const sized = await request(app).post('/echo').send({ a: 1 }).expect(200);
    expect(sized.body).toEqual({ body: { a: 1 } });
    expect(calls()).toBe(1);
    const chunked = await postChunked(app, ['{"b":', '[1,2]}']);
    expect(chunked.status).toBe(200);
    expect(JSON.parse(chunked.text)).toEqual({ body: { b: [1, 2] } });
    expect(calls()).toBe(2);
    await request(app).get('/echo').expect(200, { body: null });
    await request(app).delete('/echo').expect(200, { body: null });
    expect(calls()).toBe(2);
  });

  it('still answer 400 with the API error when malformed, and GETs of the API work without one', async () => {
    const bad = await request(t.app)
      .post('/api/v1/auth/login')
      .set('content-type', 'application/json')
      .send('{"email": ');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: expect.any(String) as unknown } });
    await request(t.app).get('/api/v1/health').expect(200);
  });
});
