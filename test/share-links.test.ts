import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import { ManualClock } from '../core/domain/clock.js';
import { hashSecret } from '../server/auth/secrets.js';
import { binaryParser } from './fs-helpers.js';
import type { TestApp, TestUser } from './helpers/app.js';
import { createLink, putFile, sha256, shareApp, unlock, user } from './share-fixtures.js';

const DAY = 86_400_000;

describe('public share links', () => {
  let t: TestApp;
  let clock: ManualClock;
  let owner: TestUser;

  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    t = await shareApp({ clock });
    owner = await user(t);
  });
  afterEach(async () => {
    await t.close();
  });

  it('hands out a 256-bit URL-safe token once and keeps only its hash', async () => {
    await putFile(t, owner, '/docs/report.pdf', 'pdf bytes');
    const res = await request(t.app)
      .post('/api/v1/shares')
      .set(owner.headers)
      .send({ path: '/docs/report.pdf' });
    expect(res.status).toBe(201);
    const token = res.body.token as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
    expect(res.body.url).toMatch(new RegExp(`^http://[^/]+/s/${token}$`));
    expect(res.body).toMatchObject({ type: 'link', path: '/docs/report.pdf', state: 'active', downloads: 0 });
    expect(new Date(res.body.expiresAt as string).getTime() - clock.now().getTime()).toBe(7 * DAY);

    const stored = await t.deps.metadata.getShareByTokenHash(hashSecret(token));
    expect(stored?.id).toBe(res.body.id);
    const list = await request(t.app).get('/api/v1/shares').set(owner.headers);
    expect(JSON.stringify(list.body)).not.toContain(token);
    expect(list.body.items).toHaveLength(1);

    const other = await request(t.app)
      .post('/api/v1/shares')
      .set(owner.headers)
      .send({ path: '/docs/report.pdf' });
    expect(other.body.token).not.toBe(token);
  });

  it('serves a page with escaped names and the bytes with Range, ETag and an attachment disposition', async () => {
    const content = 'hello shared world';
    await putFile(t, owner, '/Tom & <Jerry>.html', content, { mediaType: 'text/html' });
    const link = await createLink(t, owner, { path: '/Tom & <Jerry>.html' });

    const page = await request(t.app).get(link.path);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('Tom &#38; &#60;Jerry&#62;.html');
    expect(page.text).not.toContain('<Jerry>');
    expect(page.text).not.toContain('<script');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(page.headers['content-security-policy']).toMatch(/form-action 'self'/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');

    const bytes = await request(t.app).get(`${link.path}?dl=1`).buffer(true).parse(binaryParser);
    expect(bytes.status).toBe(200);
    expect((bytes.body as Buffer).toString()).toBe(content);
    expect(bytes.headers['content-disposition']).toMatch(/^attachment; filename=/);
    expect(bytes.headers['content-type']).toBe('application/octet-stream');
    expect(bytes.headers.etag).toBe(`"${sha256(content)}"`);

    const range = await request(t.app)
      .get(`${link.path}?dl=1`)
      .set('Range', 'bytes=6-11')
      .buffer(true)
      .parse(binaryParser);
    expect(range.status).toBe(206);
    expect((range.body as Buffer).toString()).toBe('shared');
  });

  it('answers 410 once a link has expired, by the default 7 days or a given lifetime, and never for null', async () => {
    await putFile(t, owner, '/a.txt', 'a');
    const byDefault = await createLink(t, owner, { path: '/a.txt' });
    const hour = await createLink(t, owner, { path: '/a.txt', expiresIn: '1h' });
    const never = await createLink(t, owner, { path: '/a.txt', expiresIn: null });

    expect((await request(t.app).get(hour.path)).status).toBe(200);
    clock.advance(3600_000);
    const expired = await request(t.app).get(hour.path);
    expect(expired.status).toBe(410);
    expect(expired.text).toContain('expired');
    expect((await request(t.app).get(`${hour.path}?dl=1`)).status).toBe(410);
    expect((await request(t.app).get(byDefault.path)).status).toBe(200);

    clock.advance(7 * DAY);
    expect((await request(t.app).get(byDefault.path)).status).toBe(410);
    clock.advance(3650 * DAY);
    expect((await request(t.app).get(never.path)).status).toBe(200);
  });

  it('asks for the password, then sets an HttpOnly SameSite=Strict cookie scoped to the link', async () => {
    await putFile(t, owner, '/secret.txt', 'top secret');
    const link = await createLink(t, owner, { path: '/secret.txt', password: 'correct horse' });
    const other = await createLink(t, owner, { path: '/secret.txt', password: 'correct horse' });

    const form = await request(t.app).get(link.path);
    expect(form.status).toBe(401);
    expect(form.text).toContain('type="password"');
    expect(form.text).not.toContain('top secret');
    expect((await request(t.app).get(`${link.path}?dl=1`)).status).toBe(401);

    const ok = await request(t.app)
      .post(`${link.path}/auth`)
      .type('form')
      .send({ password: 'correct horse' });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe(link.path);
    const setCookie = String(ok.headers['set-cookie']);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toContain(`Path=${link.path}`);
    expect(setCookie).not.toContain('correct');
    const cookie = await unlock(t, link, 'correct horse');

    const page = await request(t.app).get(link.path).set('Cookie', cookie);
    expect(page.status).toBe(200);
    const bytes = await request(t.app)
      .get(`${link.path}?dl=1`)
      .set('Cookie', cookie)
      .buffer(true)
      .parse(binaryParser);
    expect((bytes.body as Buffer).toString()).toBe('top secret');
    // The proof belongs to one link.
    expect((await request(t.app).get(other.path).set('Cookie', cookie)).status).toBe(401);
    // And it dies with its lifetime.
    clock.advance(13 * 3600_000);
    expect((await request(t.app).get(link.path).set('Cookie', cookie)).status).toBe(401);
  });

  it('answers 401 to five wrong passwords and 429 to the sixth try from the same ip', async () => {
    await putFile(t, owner, '/locked.txt', 'x');
    const link = await createLink(t, owner, { path: '/locked.txt', password: 'the right one' });
    const other = await createLink(t, owner, { path: '/locked.txt', password: 'the right one' });
    for (let i = 0; i < 5; i++) {
      const res = await request(t.app)
        .post(`${link.path}/auth`)
        .type('form')
        .send({ password: `wrong ${i}` });
      expect(res.status).toBe(401);
      expect(res.text).toContain('Wrong password');
    }
    const sixth = await request(t.app)
      .post(`${link.path}/auth`)
      .type('form')
      .send({ password: 'the right one' });
    expect(sixth.status).toBe(429);
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThan(0);
    // Another link is counted on its own.
    expect(
      (await request(t.app).post(`${other.path}/auth`).type('form').send({ password: 'the right one' }))
        .status,
    ).toBe(303);
  });

  it('never serves more than maxDownloads under 20 concurrent downloads', async () => {
    await putFile(t, owner, '/popular.bin', Buffer.alloc(64 * 1024, 7));
    const link = await createLink(t, owner, { path: '/popular.bin', maxDownloads: 3 });
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        request(t.app).get(`${link.path}?dl=1`).buffer(true).parse(binaryParser),
      ),
    );
    const served = results.filter((r) => r.status === 200);
    expect(served).toHaveLength(3);
    expect(results.filter((r) => r.status === 410)).toHaveLength(17);
    for (const r of served) expect((r.body as Buffer).length).toBe(64 * 1024);
    const list = await request(t.app).get('/api/v1/shares').set(owner.headers);
    expect(list.body.items[0]).toMatchObject({ downloads: 3, maxDownloads: 3, state: 'exhausted' });
    expect((await request(t.app).get(link.path)).status).toBe(410);
  });

  it('answers 404 to unknown, malformed, revoked and escaping paths', async () => {
    await putFile(t, owner, '/team/inside.txt', 'in');
    const outside = await putFile(t, owner, '/outside.txt', 'out');
    const link = await createLink(t, owner, { path: '/team' });
    const paths = [
      `/s/${'A'.repeat(43)}`,
      '/s/short',
      `${link.path}/..%2f..%2fapi%2fv1%2fhealth`,
      `${link.path}/f/..%2f..%2f${outside.id}`,
      `${link.path}/f/${outside.id}`,
      `${link.path}/d/${outside.id}`,
      `${link.path}/extra/segments/here`,
      `/s/..%2f..%2fapi%2fv1%2fhealth`,
      `/s/${link.token}%2f..%2f..`,
    ];
    for (const path of paths) {
      const res = await request(t.app).get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(res.headers['content-type']).toMatch(/^text\/html/);
    }
    // A raw `..` request, as a client that does not normalise URLs sends it.
    const server = t.app.listen(0, '127.0.0.1');
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as { port: number };
      const status = await new Promise<number>((resolve, reject) => {
        import('node:http').then(({ request: raw }) => {
          const req = raw({ host: '127.0.0.1', port, path: `${link.path}/../..`, method: 'GET' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        }, reject);
      });
      expect(status).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }

    await request(t.app).delete(`/api/v1/shares/${link.id}`).set(owner.headers).expect(204);
    expect((await request(t.app).get(link.path)).status).toBe(404);
    expect((await request(t.app).delete(`/api/v1/shares/${link.id}`).set(owner.headers)).status).toBe(404);
  });

  it('lists a shared folder and serves only files inside it, by node id', async () => {
    const inside = await putFile(t, owner, '/team/sub/deep.txt', 'deep');
    await putFile(t, owner, '/team/top.txt', 'top');
    const link = await createLink(t, owner, { path: '/team' });
    const page = await request(t.app).get(link.path);
    expect(page.status).toBe(200);
    expect(page.text).toContain('top.txt');
    expect(page.text).toContain('sub/');
    expect(page.text).toContain(`action="${link.path}/zip"`);
    const sub = await request(t.app).get(`${link.path}/d/${inside.parentId}`);
    expect(sub.text).toContain('deep.txt');
    const file = await request(t.app).get(`${link.path}/f/${inside.id}`).buffer(true).parse(binaryParser);
    expect(file.status).toBe(200);
    expect((file.body as Buffer).toString()).toBe('deep');
    // A folder has no bytes of its own.
    expect((await request(t.app).get(`${link.path}?dl=1`)).status).toBe(409);
  });

  it('records creation, opening, downloads and revocation in the audit log and notifies the first opening once', async () => {
    await putFile(t, owner, '/audited.txt', 'x');
    const link = await createLink(t, owner, { path: '/audited.txt' });
    await request(t.app).get(link.path).set('User-Agent', 'visitor-agent/1');
    await request(t.app).get(link.path);
    await request(t.app).get(`${link.path}?dl=1`).set('User-Agent', 'curl/8');
    await request(t.app).delete(`/api/v1/shares/${link.id}`).set(owner.headers).expect(204);

    const audit = await t.deps.metadata.listAudit(owner.id, { limit: 50 });
    const actions = audit.items.map((e) => e.action).reverse();
    expect(actions).toEqual([
      'share.create',
      'share.open',
      'share.open',
      'share.open',
      'share.download',
      'share.revoke',
    ]);
    const opened = audit.items.find((e) => e.action === 'share.open' && e.userAgent === 'visitor-agent/1');
    expect(opened?.ip).toBeTruthy();
    expect(audit.items.find((e) => e.action === 'share.download')?.userAgent).toBe('curl/8');
    expect(JSON.stringify(audit.items)).not.toContain(link.token);

    const notes = await request(t.app).get('/api/v1/notifications').set(owner.headers);
    expect(notes.body.items.map((n: { type: string }) => n.type)).toEqual(['share.opened']);
    expect(notes.body.items[0].data).toMatchObject({ shareId: link.id, name: 'audited.txt' });
  });
});
