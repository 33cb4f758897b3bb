/** tus PATCH, termination and ownership rules. */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestUser, type TestUser } from './helpers/app.js';
import {
  OCTET,
  TUS,
  childrenOf,
  createUpload,
  idOf,
  metadataHeader,
  sha256Of,
  startHarness,
  waitForUpload,
  type UploadHarness,
} from './uploads-harness.js';

let h: UploadHarness;
let alice: TestUser;

beforeAll(async () => {
  h = await startHarness();
  alice = await createTestUser(h.t);
});
afterAll(async () => {
  await h?.close();
});

describe('PATCH rules', () => {
  it('refuses a body that is not application/offset+octet-stream with 415', async () => {
    const id = await createUpload(h, alice.headers, { path: '/typed.bin' }, 4);
    const res = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', 'application/octet-stream')
      .set('Upload-Offset', '0')
      .send(Buffer.from('abcd'));
    expect(res.status).toBe(415);
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
  });

  it('refuses an Upload-Offset other than the stored one with 409 and writes nothing', async () => {
    const id = await createUpload(h, alice.headers, { path: '/offset.bin' }, 8);
    const res = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '4')
      .send(Buffer.from('abcd'));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('OFFSET_MISMATCH');
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
  });

  it('keeps only Upload-Length bytes of a longer body and answers 400', async () => {
    const id = await createUpload(h, alice.headers, { path: '/short.txt' }, 5);
    const res = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(Buffer.from('12345EXTRA'));
    expect(res.status).toBe(400);
    expect(res.headers['upload-offset']).toBe('5');
    const info = await waitForUpload(h, alice.headers, id);
    expect(info.status).toBe('ready');
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'short.txt');
    expect(file?.sha256).toBe(sha256Of(Buffer.from('12345')));
  });

  it('refuses bytes for a finished upload with 409', async () => {
    const res = await request(h.app)
      .post('/api/v1/uploads')
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Length', '2')
      .set('Upload-Metadata', metadataHeader({ path: '/done.txt' }))
      .send(Buffer.from('ok'));
    const id = idOf(res.headers.location);
    await waitForUpload(h, alice.headers, id);
    const again = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '2')
      .send(Buffer.from('x'));
    expect(again.status).toBe(409);
  });
});

describe('termination', () => {
  it('DELETE answers 204, removes the staging bytes and cancels the upload; later requests get 404', async () => {
    const id = await createUpload(h, alice.headers, { path: '/cancel-me.bin' }, 10);
    await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(Buffer.from('abc'))
      .expect(204);
    expect(await h.t.deps.blobs.stagingSize(id)).toBe(3);
    const del = await request(h.app).delete(`/api/v1/uploads/${id}`).set(TUS).set(alice.headers);
    expect(del.status).toBe(204);
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
    expect((await h.t.deps.metadata.getUploadById(id))?.status).toBe('cancelled');
    expect((await request(h.app).head(`/api/v1/uploads/${id}`).set(TUS).set(alice.headers)).status).toBe(404);
    const patch = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '3')
      .send(Buffer.from('d'));
    expect(patch.status).toBe(404);
  });
});

describe('ownership', () => {
  it("answers 404 for another user's upload on HEAD, PATCH, DELETE and GET, changing nothing", async () => {
    const mallory = await createTestUser(h.t);
    const id = await createUpload(h, alice.headers, { path: '/private.bin' }, 6);
    await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(Buffer.from('abc'))
      .expect(204);
    const before = await h.t.deps.metadata.getUploadById(id);

    expect((await request(h.app).head(`/api/v1/uploads/${id}`).set(TUS).set(mallory.headers)).status).toBe(
      404,
    );
    expect((await request(h.app).get(`/api/v1/uploads/${id}`).set(TUS).set(mallory.headers)).status).toBe(
      404,
    );
    const patch = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(mallory.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '3')
      .send(Buffer.from('XYZ'));
    expect(patch.status).toBe(404);
    expect((await request(h.app).delete(`/api/v1/uploads/${id}`).set(TUS).set(mallory.headers)).status).toBe(
      404,
    );

    const after = await h.t.deps.metadata.getUploadById(id);
    expect(after).toMatchObject({ status: 'receiving', offset: 3 });
    expect(after?.updatedAt.getTime()).toBe(before?.updatedAt.getTime());
    expect(await h.t.deps.blobs.stagingSize(id)).toBe(3);
  });
});
