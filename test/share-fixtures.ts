/**
 * Fixtures of the sharing suites: a real app (real adapters, temp dir), users, files
 * committed the way the upload worker does it, and link creation through the API.
 */
import request from 'supertest';
import { createHash } from 'node:crypto';
import {
  createTestApp,
  createTestUser,
  type TestApp,
  type TestAppOptions,
  type TestUser,
} from './helpers/app.js';
import { putFile } from './fs-helpers.js';

export { putFile };

export interface Link {
  id: string;
  token: string;
  url: string;
  /** `/s/<token>` */
  path: string;
}

export async function shareApp(options: TestAppOptions = {}): Promise<TestApp> {
  return createTestApp(options);
}

export async function user(t: TestApp): Promise<TestUser> {
  return createTestUser(t);
}

export async function createLink(t: TestApp, owner: TestUser, body: Record<string, unknown>): Promise<Link> {
  const res = await request(t.app).post('/api/v1/shares').set(owner.headers).send(body);
  if (res.status !== 201) throw new Error(`share create answered ${res.status}: ${JSON.stringify(res.body)}`);
  const { id, token, url } = res.body as { id: string; token: string; url: string };
  return { id, token, url, path: `/s/${token}` };
}

/** The proof cookie (`name=value`) a right password earns. */
export async function unlock(t: TestApp, link: Link, password: string): Promise<string> {
  const res = await request(t.app).post(`${link.path}/auth`).type('form').send({ password });
  if (res.status !== 303) throw new Error(`unlock answered ${res.status}`);
  const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '';
  return cookie.split(';')[0] ?? '';
}

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}
