import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/domain/clock.js';
import type { TreeNode } from '../core/ports/metadata-store.js';
import { binaryParser, createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { expectFileClosedAfterAbort } from './helpers/abort.js';
import { createTestUser, type TestUser } from './helpers/app.js';

let f: FilesTestApp;
let user: TestUser;
let file: TreeNode;
const clock = new ManualClock(Date.now());
const CONTENT = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz', 'utf8'); // 36 bytes

beforeAll(async () => {
  f = await createFilesTestApp({ clock });
  user = await createTestUser(f.t);
  file = await putFile(f.t, user, '/dl/alphabet.txt', CONTENT, { mediaType: 'text/plain' });
});
afterAll(async () => {
  await f?.t.close();
});

const content = (id: string = file.id) =>
  request(f.app).get(`/api/v1/files/${id}/content`).set(user.headers).buffer(true).parse(binaryParser);

describe('GET /files/:id/content', () => {
  it('sends the whole file with validators and safe headers', async () => {
    const res = await content().expect(200);
    expect(res.body).toEqual(CONTENT);
    expect(res.headers['etag']).toBe(`"${file.sha256}"`);
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.headers['content-length']).toBe('36');
    expect(res.headers['content-type']).toBe('text/plain');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toMatch(/private/);
    expect(res.headers['content-disposition']).toBe(
      `attachment; filename="alphabet.txt"; filename*=UTF-8''alphabet.txt`,
    );
  });

  it('serves the first bytes of a range with 206 and Content-Range', async () => {
    const res = await content().set('Range', 'bytes=0-9').expect(206);
    expect(res.body.toString()).toBe('0123456789');
    expect(res.headers['content-range']).toBe('bytes 0-9/36');
    expect(res.headers['content-length']).toBe('10');
  });

  it('serves a suffix range and an open range', async () => {
    const suffix = await content().set('Range', 'bytes=-10').expect(206);
    expect(suffix.body.toString()).toBe('qrstuvwxyz');
    expect(suffix.headers['content-range']).toBe('bytes 26-35/36');
    const open = await content().set('Range', 'bytes=5-').expect(206);
    expect(open.body.toString()).toBe(CONTENT.subarray(5).toString());
    expect(open.headers['content-range']).toBe('bytes 5-35/36');
    const clamped = await content().set('Range', 'bytes=30-999').expect(206);
    expect(clamped.body.toString()).toBe('uvwxyz');
  });

  it('answers 416 with bytes */size for an unsatisfiable range', async () => {
    const res = await request(f.app)
      .get(`/api/v1/files/${file.id}/content`)
      .set(user.headers)
      .set('Range', 'bytes=36-')
      .expect(416);
    expect(res.headers['content-range']).toBe('bytes */36');
    expect(res.body.error.code).toBe('RANGE_NOT_SATISFIABLE');
    expect(res.headers['content-disposition']).toBeUndefined();
  });

  it('answers several ranges, or a malformed one, with the full content', async () => {
    const multi = await content().set('Range', 'bytes=0-1,5-6').expect(200);
    expect(multi.body).toEqual(CONTENT);
    const junk = await content().set('Range', 'lines=1-2').expect(200);
    expect(junk.body).toEqual(CONTENT);
  });

  it('answers 304 to a matching If-None-Match and 200 otherwise', async () => {
    const hit = await content().set('If-None-Match', `"${file.sha256}"`).expect(304);
    expect(hit.headers['etag']).toBe(`"${file.sha256}"`);
    expect(hit.body.length).toBe(0);
    await content().set('If-None-Match', `"other", W/"${file.sha256}"`).expect(304);
    await content().set('If-None-Match', '"other"').expect(200);
  });

  it('honours a range under If-Range only while the ETag still matches', async () => {
    const same = await content().set('Range', 'bytes=0-3').set('If-Range', `"${file.sha256}"`).expect(206);
    expect(same.body.toString()).toBe('0123');
    const changed = await content().set('Range', 'bytes=0-3').set('If-Range', '"stale"').expect(200);
    expect(changed.body).toEqual(CONTENT);
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await request(f.app).head(`/api/v1/files/${file.id}/content`).set(user.headers).expect(200);
    expect(res.headers['content-length']).toBe('36');
    expect(res.headers['etag']).toBe(`"${file.sha256}"`);
    const ranged = await request(f.app)
      .head(`/api/v1/files/${file.id}/content`)
      .set(user.headers)
      .set('Range', 'bytes=-4')
      .expect(206);
    expect(ranged.headers['content-range']).toBe('bytes 32-35/36');
  });

  it('names a non-ASCII file with an ASCII fallback and RFC 5987 filename*', async () => {
    const node = await putFile(f.t, user, '/dl/Résumé "2026" – 日本.pdf', 'pdf bytes', {
      mediaType: 'application/pdf',
    });
    const res = await content(node.id).expect(200);
    expect(res.headers['content-disposition']).toBe(
      `attachment; filename="R_sum_ _2026_ _ __.pdf"; ` +
        `filename*=UTF-8''R%C3%A9sum%C3%A9%20%222026%22%20%E2%80%93%20%E6%97%A5%E6%9C%AC.pdf`,
    );
    expect(res.headers['content-type']).toBe('application/pdf');
  });

  it('never sends HTML or SVG as such', async () => {
    for (const [name, type] of [
      ['page.html', 'text/html'],
      ['logo.svg', 'image/svg+xml'],
      ['x.xhtml', 'application/xhtml+xml; charset=utf-8'],
      ['bad.bin', 'text/plain\r\nX-Evil: 1'],
    ] as const) {
      const node = await putFile(f.t, user, `/dl/${name}`, '<script>alert(1)</script>', { mediaType: type });
      const res = await content(node.id).expect(200);
      expect(res.headers['content-type']).toBe('application/octet-stream');
      expect(res.headers['content-disposition']).toMatch(/^attachment;/);
      expect(res.headers['x-evil']).toBeUndefined();
    }
  });

  it('serves an empty file and a large one byte for byte', async () => {
    const empty = await putFile(f.t, user, '/dl/empty', Buffer.alloc(0));
    const res = await content(empty.id).expect(200);
    expect(res.body.length).toBe(0);
    await content(empty.id).set('Range', 'bytes=0-').expect(416);

    const big = randomBytes(3 * 1024 * 1024 + 7);
    const node = await putFile(f.t, user, '/dl/big.bin', big);
    const whole = await content(node.id).expect(200);
    expect(
      createHash('sha256')
        .update(whole.body as Buffer)
        .digest('hex'),
    ).toBe(node.sha256);
    const part = await content(node.id).set('Range', 'bytes=1048576-2097151').expect(206);
    expect((part.body as Buffer).equals(big.subarray(1048576, 2097152))).toBe(true);
  });

  it('answers 409 for a folder and 404 for a file in the trash', async () => {
    const folder = await f.t.deps.metadata.findChild(user.id, null, 'dl');
    await content(folder?.id).expect(409);
    const gone = await putFile(f.t, user, '/dl/trashed.txt', 'x');
    await f.t.deps.metadata.trashNode(user.id, gone.id, clock.now());
    await content(gone.id).expect(404);
  });

  it('closes the file when the client goes away mid-download', async () => {
    const node = await putFile(f.t, user, '/dl/huge.bin', randomBytes(24 * 1024 * 1024));
    const server = f.app.listen(0);
    try {
      const { port } = server.address() as AddressInfo;
      await expectFileClosedAfterAbort(port, `/api/v1/files/${node.id}/content`, user.headers, 200);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('signed download URLs', () => {
  it('hands out the same URL for a minute and serves it without a token, with ranges', async () => {
    const first = await request(f.app)
      .post(`/api/v1/files/${file.id}/link`)
      .set(user.headers)
      .send({})
      .expect(200);
    const url = new URL(first.body.url as string);
    expect(url.pathname).toMatch(/^\/api\/v1\/dl\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(first.body.expiresAt as string) - clock.now().getTime()).toBe(15 * 60_000);
    const again = await request(f.app)
      .post(`/api/v1/files/${file.id}/link`)
      .set(user.headers)
      .send({})
      .expect(200);
    expect(again.body.url).toBe(first.body.url);

    const res = await request(f.app).get(url.pathname).buffer(true).parse(binaryParser).expect(200);
    expect(res.body).toEqual(CONTENT);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="alphabet.txt"/);
    expect(res.headers['etag']).toBe(`"${file.sha256}"`);
    const part = await request(f.app)
      .get(url.pathname)
      .set('Range', 'bytes=-3')
      .parse(binaryParser)
      .expect(206);
    expect(part.body.toString()).toBe('xyz');
  });

  it('refuses a lifetime over 24 h and a forged token', async () => {
    await request(f.app)
      .post(`/api/v1/files/${file.id}/link`)
      .set(user.headers)
      .send({ expiresIn: 86_401 })
      .expect(400);
    const link = await request(f.app)
      .post(`/api/v1/files/${file.id}/link`)
      .set(user.headers)
      .send({ expiresIn: 600 })
      .expect(200);
    const path = new URL(link.body.url as string).pathname;
    const [payload, sig] = path.slice('/api/v1/dl/'.length).split('.') as [string, string];
    const flipped = `${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`;
    await request(f.app).get(`/api/v1/dl/${payload}.${flipped}`).expect(404);
    await request(f.app).get('/api/v1/dl/not-a-token').expect(404);
  });

  it('answers 410 once the link has expired', async () => {
    const link = await request(f.app)
      .post(`/api/v1/files/${file.id}/link`)
      .set(user.headers)
      .send({ expiresIn: 120 })
      .expect(200);
    const path = new URL(link.body.url as string).pathname;
    clock.advance(119_000);
    await request(f.app).get(path).expect(200);
    clock.advance(2_000);
    const res = await request(f.app).get(path).expect(410);
    expect(res.body.error.code).toBe('GONE');
  });
});
