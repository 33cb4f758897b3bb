/**
 * `GET /fs/list` reuses the body of an unchanged listing (see `sendListing` in
 * server/routes/fs.ts). It must stay what `res.json` gave: same bytes, Content-Type and
 * ETag semantics, the paths as the caller spelled them, and never an old body.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPage } from '../contract/schemas/files.js';
import { createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';

let f: FilesTestApp;
let user: TestUser;

beforeAll(async () => {
  f = await createFilesTestApp();
  user = await createTestUser(f.t);
  await putFile(f.t, user, '/Resp/a.txt', 'a');
  await putFile(f.t, user, '/Resp/b.txt', 'bb');
});
afterAll(async () => {
  await f?.t.close();
});

const list = (path: string, headers: Record<string, string> = {}) =>
  request(f.app)
    .get(`/api/v1/fs/list?path=${encodeURIComponent(path)}`)
    .set(user.headers)
    .set(headers);

describe('listing responses served again', () => {
  it('are compact JSON with the JSON content type and an ETag, the same each time', async () => {
    const first = await list('/Resp').expect(200);
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.text).toBe(JSON.stringify(first.body));
    expect(Number(first.headers['content-length'])).toBe(Buffer.byteLength(first.text));
    expect(first.headers.etag).toMatch(/^W\/"/);
    const second = await list('/Resp').expect(200);
    expect(second.text).toBe(first.text);
    expect(second.headers.etag).toBe(first.headers.etag);
    expect((first.body as EntryPage).items.map((e) => e.path)).toEqual(['/Resp/a.txt', '/Resp/b.txt']);
  });

  it('answer 304 to If-None-Match with the current ETag', async () => {
    const first = await list('/Resp').expect(200);
    const again = await list('/Resp', { 'If-None-Match': first.headers.etag as string }).expect(304);
    expect(again.text).toBe('');
  });

  it('give the paths as this request spelled the folder', async () => {
    await list('/Resp').expect(200);
    const lower = await list('/resp').expect(200);
    expect((lower.body as EntryPage).items.map((e) => e.path)).toEqual(['/resp/a.txt', '/resp/b.txt']);
    const upper = await list('/Resp').expect(200);
    expect((upper.body as EntryPage).items.map((e) => e.path)).toEqual(['/Resp/a.txt', '/Resp/b.txt']);
  });

  it('change with the folder at once, ETag included', async () => {
    const before = await list('/Resp').expect(200);
    await putFile(f.t, user, '/Resp/c.txt', 'ccc');
    const after = await list('/Resp').expect(200);
    expect((after.body as EntryPage).items.map((e) => e.name)).toEqual(['a.txt', 'b.txt', 'c.txt']);
    expect(after.headers.etag).not.toBe(before.headers.etag);
    await list('/Resp', { 'If-None-Match': before.headers.etag as string }).expect(200);
  });
});
