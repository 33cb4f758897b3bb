import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Consumer } from '../core/ports/job-queue.js';
import { fileDownloadHandler } from '../worker/jobs/file-download.js';
import { binaryParser } from './fs-helpers.js';
import type { TestApp, TestUser } from './helpers/app.js';
import { createLink, putFile, shareApp, unlock, user } from './share-fixtures.js';

describe('download all of a shared folder', () => {
  let t: TestApp;
  let owner: TestUser;
  let consumer: Consumer | undefined;

  beforeEach(async () => {
    t = await shareApp();
    owner = await user(t);
  });
  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
    await t.close();
  });

  it('starts a zip job by a form post, refreshes until ready without script, then serves the zip once per download', async () => {
    await putFile(t, owner, '/Album/one.txt', 'one');
    await putFile(t, owner, '/Album/two.txt', 'two');
    const link = await createLink(t, owner, { path: '/Album', password: 'album pass', maxDownloads: 1 });
    const cookie = await unlock(t, link, 'album pass');

    // Without the proof the zip cannot be started.
    expect((await request(t.app).post(`${link.path}/zip`).type('form').send({})).status).toBe(401);
    const started = await request(t.app).post(`${link.path}/zip`).set('Cookie', cookie).type('form').send({});
    expect(started.status).toBe(303);
    const waitPage = started.headers.location as string;
    expect(waitPage).toMatch(new RegExp(`^${link.path}/zip/[0-9a-f-]{36}$`));

    const pending = await request(t.app).get(waitPage).set('Cookie', cookie);
    expect(pending.status).toBe(200);
    expect(pending.text).toContain('<meta http-equiv="refresh" content="2">');
    expect(pending.text).not.toContain('<script');
    // Another link cannot read this job.
    const other = await createLink(t, owner, { path: '/Album' });
    expect((await request(t.app).get(`${other.path}/zip/${waitPage.split('/').at(-1) ?? ''}`)).status).toBe(
      404,
    );

    consumer = await t.deps.queue.consume('file.download', fileDownloadHandler(t.deps));
    let ready = pending;
    for (let i = 0; i < 100 && !ready.text.includes('Download zip'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = await request(t.app).get(waitPage).set('Cookie', cookie);
    }
    expect(ready.text).toContain('Download zip');
    expect(ready.text).not.toContain('http-equiv="refresh"');

    const zip = await request(t.app)
      .get(`${waitPage}/file`)
      .set('Cookie', cookie)
      .buffer(true)
      .parse(binaryParser);
    expect(zip.status).toBe(200);
    expect(zip.headers['content-type']).toBe('application/zip');
    expect(zip.headers['content-disposition']).toMatch(/^attachment; filename="Album.zip"/);
    expect((zip.body as Buffer).subarray(0, 2).toString()).toBe('PK');
    // maxDownloads 1: the zip counted as the one download.
    expect((await request(t.app).get(`${waitPage}/file`).set('Cookie', cookie)).status).toBe(410);
  });
});
