/**
 * `createApp` replays helmet's headers recorded once at start-up (`fixedHeaders` in
 * server/app.ts) instead of running helmet's chain per request. Responses must carry
 * exactly the headers helmet itself sets with the same options.
 */
import express from 'express';
import helmet from 'helmet';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECURITY_HEADERS, recordFixedHeaders } from '../server/app.js';
import { createTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;

beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

/** The options server/app.ts gives helmet. */
const OPTIONS = SECURITY_HEADERS;

async function helmetHeaders(): Promise<Record<string, string>> {
  const reference = express();
  reference.use(helmet(OPTIONS));
  reference.get('/', (_req, res) => {
    res.send('ok');
  });
  const res = await request(reference).get('/').expect(200);
  const plain = await request(express().get('/', (_req, r) => r.send('ok'))).get('/');
  return Object.fromEntries(
    Object.entries(res.headers as Record<string, string>).filter(([name]) => !(name in plain.headers)),
  );
}

describe('security headers', () => {
  it('are exactly those helmet sets, on API answers, errors and metrics alike (share pages set their own CSP)', async () => {
    const expected = await helmetHeaders();
    expect(Object.keys(expected).length).toBeGreaterThanOrEqual(10);
    for (const path of ['/api/v1/health', '/api/v1/auth/me', '/api/v1/nothing-here', '/metrics']) {
      const res = await request(t.app).get(path);
      for (const [name, value] of Object.entries(expected))
        expect([path, name, res.headers[name]]).toEqual([path, name, value]);
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('refuse at start-up to freeze a per-request value such as a CSP nonce', () => {
    const perRequest = helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          scriptSrc: [() => `'nonce-${Math.random().toString(36).slice(2)}'`],
        },
      },
    });
    expect(() => recordFixedHeaders(perRequest)).toThrow(/per-request/);
  });
});
