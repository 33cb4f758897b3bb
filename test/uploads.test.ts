import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadInfoSchema } from '../contract/schemas/uploads.js';
import { createTestUser, type TestUser } from './helpers/app.js';
import {
  OCTET,
  TUS,
  b64,
  bytesOf,
  childrenOf,
  createUpload,
  idOf,
  metadataHeader,
  readBlob,
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

describe('tus protocol', () => {
  it('answers OPTIONS with the version, extensions and maximum size', async () => {
    const res = await request(h.app).options('/api/v1/uploads');
    expect(res.status).toBe(204);
    expect(res.headers['tus-version']).toBe('1.0.0');
    expect(res.headers['tus-resumable']).toBe('1.0.0');
    expect(res.headers['tus-extension']?.split(',')).toEqual(
      expect.arrayContaining(['creation', 'creation-with-upload', 'termination', 'expiration']),
    );
    expect(res.headers['tus-max-size']).toBe(String(h.t.deps.config.maxUploadSize));
  });

  it('refuses a request without Tus-Resumable with 412 and Tus-Version', async () => {
    const res = await request(h.app)
      .post('/api/v1/uploads')
      .set(alice.headers)
      .set('Upload-Length', '3')
      .set('Upload-Metadata', metadataHeader({ path: '/x.txt' }));
    expect(res.status).toBe(412);
    expect(res.headers['tus-version']).toBe('1.0.0');
    const other = await request(h.app)
      .head('/api/v1/uploads/abc')
      .set(alice.headers)
      .set('Tus-Resumable', '0.2.2');
    expect(other.status).toBe(412);
  });

  it('lets browser clients read the tus headers across origins', async () => {
    const preflight = await request(h.app)
      .options('/api/v1/uploads')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'POST');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-headers']).toMatch(/Upload-Metadata/);
    const res = await request(h.app)
      .post('/api/v1/uploads')
      .set(TUS)
      .set(alice.headers)
      .set('Origin', 'https://app.example')
      .set('Upload-Length', '4')
      .set('Upload-Metadata', metadataHeader({ path: '/cors.bin' }));
    expect(res.status).toBe(201);
    const exposed = res.headers['access-control-expose-headers'] ?? '';
    for (const name of ['Location', 'Upload-Offset', 'Upload-Length', 'Tus-Resumable', 'Upload-Expires']) {
      expect(exposed).toContain(name);
    }
  });

  it('requires a token with the write scope', async () => {
    const res = await request(h.app).post('/api/v1/uploads').set(TUS).set('Upload-Length', '1');
    expect(res.status).toBe(401);
  });
});

describe('uploading a file', () => {
  it('creates, takes bytes in two PATCHes, reports the offset on HEAD and commits the exact content', async () => {
    const content = bytesOf(300_000, 7);
    const sha = sha256Of(content);
    const create = await request(h.app)
      .post('/api/v1/uploads')
      .set(TUS)
      .set(alice.headers)
      .set('Upload-Length', String(content.length))
      .set('Upload-Metadata', metadataHeader({ path: '/docs/report.bin', mtime: 1_700_000_000_000 }));
    expect(create.status).toBe(201);
    expect(create.headers['tus-resumable']).toBe('1.0.0');
    expect(create.headers['upload-expires']).toBeDefined();
    const id = idOf(create.headers.location);
    expect(id).toMatch(/^[A-Za-z0-9_-]{22,}$/);

    const first = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(content.subarray(0, 100_000));
    expect(first.status).toBe(204);
    expect(first.headers['upload-offset']).toBe('100000');

    const head = await request(h.app).head(`/api/v1/uploads/${id}`).set(TUS).set(alice.headers);
    expect(head.status).toBe(200);
    expect(head.headers['upload-offset']).toBe('100000');
    expect(head.headers['upload-length']).toBe(String(content.length));
    expect(head.headers['cache-control']).toBe('no-store');
    expect(head.headers['upload-metadata']).toContain(`path ${b64('/docs/report.bin')}`);

    const second = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '100000')
      .send(content.subarray(100_000));
    expect(second.status).toBe(204);
    expect(second.headers['upload-offset']).toBe(String(content.length));

    const info = await waitForUpload(h, alice.headers, id);
    // The JSON status is not a tus request: it needs no Tus-Resumable.
    expect((await request(h.app).get(`/api/v1/uploads/${id}`).set(alice.headers)).body).toEqual(info);
    expect(uploadInfoSchema.parse(info)).toMatchObject({
      status: 'ready',
      path: '/docs/report.bin',
      offset: 300_000,
    });
    const docs = (await childrenOf(h, alice.id)).find((n) => n.name === 'docs');
    expect(docs?.kind).toBe('folder');
    const file = (await childrenOf(h, alice.id, docs?.id ?? null)).find((n) => n.name === 'report.bin');
    expect(file).toMatchObject({
      id: info.fileId,
      sha256: sha,
      size: content.length,
      mtime: 1_700_000_000_000,
    });
    expect(file?.status).toBe('ready');
    expect((await readBlob(h, sha)).equals(content)).toBe(true);
  });

  it('takes the whole file with the creation request (creation-with-upload)', async () => {
    const content = Buffer.from('hello, creation-with-upload\n');
    const res = await request(h.app)
      .post('/api/v1/uploads')
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Length', String(content.length))
      .set('Upload-Metadata', metadataHeader({ filename: 'hello.txt', folder: '/inbox' }))
      .send(content);
    expect(res.status).toBe(201);
    expect(res.headers['upload-offset']).toBe(String(content.length));
    const info = await waitForUpload(h, alice.headers, idOf(res.headers.location));
    expect(info).toMatchObject({ status: 'ready', path: '/inbox/hello.txt' });
    const inbox = (await childrenOf(h, alice.id)).find((n) => n.name === 'inbox');
    const file = (await childrenOf(h, alice.id, inbox?.id ?? null))[0];
    expect(file).toMatchObject({ name: 'hello.txt', sha256: sha256Of(content), mediaType: 'text/plain' });
  });

  it('commits a known sha256 at once, without bytes, as a new file with the same blob', async () => {
    const content = bytesOf(50_000, 11);
    const sha = sha256Of(content);
    const first = await request(h.app)
      .post('/api/v1/uploads')
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Length', String(content.length))
      .set('Upload-Metadata', metadataHeader({ path: '/orig.bin', sha256: sha }))
      .send(content);
    expect(first.status).toBe(201);
    await waitForUpload(h, alice.headers, idOf(first.headers.location));

    const dup = await request(h.app)
      .post('/api/v1/uploads')
      .set(TUS)
      .set(alice.headers)
      .set('Upload-Length', String(content.length))
      .set('Upload-Metadata', metadataHeader({ path: '/copies/copy.bin', sha256: sha }));
    expect(dup.status).toBe(201);
    expect(dup.headers['upload-offset']).toBe(String(content.length));
    expect(dup.headers['aio-upload-status']).toBe('ready');
    const id = idOf(dup.headers.location);
    // No job was needed: the upload is ready the moment creation answered.
    const info = (await request(h.app).get(`/api/v1/uploads/${id}`).set(TUS).set(alice.headers)).body;
    expect(info).toMatchObject({ status: 'ready', offset: content.length });
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
    const copies = (await childrenOf(h, alice.id)).find((n) => n.name === 'copies');
    const copy = (await childrenOf(h, alice.id, copies?.id ?? null))[0];
    expect(copy).toMatchObject({ id: info.fileId, name: 'copy.bin', sha256: sha, status: 'ready' });
    expect((await readBlob(h, sha)).equals(content)).toBe(true);
  });

  it('commits an empty file at creation', async () => {
    const id = await createUpload(h, alice.headers, { path: '/empty.txt' }, 0);
    const info = await waitForUpload(h, alice.headers, id);
    expect(info.status).toBe('ready');
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'empty.txt');
    expect(file).toMatchObject({ size: 0, sha256: sha256Of(Buffer.alloc(0)) });
  });

  it('replaces a file when the base revision is current, keeping the old one as a revision', async () => {
    const v1 = Buffer.from('version one');
    const v2 = Buffer.from('version two, longer');
    for (const [body, base] of [
      [v1, 0],
      [v2, 1],
    ] as const) {
      const res = await request(h.app)
        .post('/api/v1/uploads')
        .set(TUS)
        .set(alice.headers)
        .set('Content-Type', OCTET)
        .set('Upload-Length', String(body.length))
        .set('Upload-Metadata', metadataHeader({ path: '/versioned.txt', baseRevision: base }))
        .send(body);
      expect(res.status).toBe(201);
      expect((await waitForUpload(h, alice.headers, idOf(res.headers.location))).status).toBe('ready');
    }
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'versioned.txt');
    expect(file).toMatchObject({ revision: 2, sha256: sha256Of(v2) });
    const revisions = await h.t.deps.metadata.listRevisions(alice.id, file?.id ?? '');
    expect(revisions.map((r) => r.sha256).sort()).toEqual([sha256Of(v1), sha256Of(v2)].sort());
  });
});
