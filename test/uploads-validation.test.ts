import fs from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestUser, type TestUser } from './helpers/app.js';
import {
  OCTET,
  TUS,
  bytesOf,
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
  h = await startHarness({ env: { AIO_MAX_UPLOAD_SIZE: String(1024 * 1024) } });
  alice = await createTestUser(h.t);
});
afterAll(async () => {
  await h?.close();
});

async function stagingEntries(): Promise<string[]> {
  return fs.readdir(path.join(h.t.deps.config.storageDir, 'staging'));
}

function post(
  user: TestUser,
  pairs: Record<string, string | number> | string,
  length: number,
  body?: Buffer,
) {
  const req = request(h.app)
    .post('/api/v1/uploads')
    .set(TUS)
    .set(user.headers)
    .set('Upload-Length', String(length))
    .set('Upload-Metadata', typeof pairs === 'string' ? pairs : metadataHeader(pairs));
  return body ? req.set('Content-Type', OCTET).send(body) : req;
}

describe('names', () => {
  const bad: Array<[string, Record<string, string>, string]> = [
    ['a parent reference', { path: '../x' }, 'INVALID_PATH'],
    ['a NUL byte', { path: '/a\0b' }, 'INVALID_PATH'],
    ['fullwidth dots and slash', { path: '/．．／x' }, 'INVALID_PATH'],
    ['a 300-byte name', { path: `/${'n'.repeat(300)}` }, 'INVALID_PATH'],
    ['a control character', { filename: 'bell\u0007.txt' }, 'INVALID_NAME'],
    ['a slash in a filename', { filename: '../x' }, 'INVALID_NAME'],
    ['a bad folder', { filename: 'ok.txt', folder: '/a/../b' }, 'INVALID_PATH'],
    ['the root as the target', { path: '/' }, 'INVALID_PATH'],
  ];
  for (const [what, pairs, code] of bad) {
    it(`refuses ${what} with 400 ${code} and writes nothing`, async () => {
      const body = Buffer.from('data');
      const res = await post(alice, pairs, body.length, body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe(code);
      expect(await stagingEntries()).toEqual([]);
      expect(await childrenOf(h, alice.id)).toEqual([]);
    });
  }

  it('refuses a name that is not UTF-8 with 400 INVALID_NAME', async () => {
    const res = await post(alice, `filename ${Buffer.from([0xff, 0xfe, 0x41]).toString('base64')}`, 1);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_NAME');
  });

  it('refuses malformed Upload-Metadata and a missing target with 400', async () => {
    expect((await post(alice, 'path not*base64', 1)).status).toBe(400);
    expect((await post(alice, metadataHeader({ mtime: 5 }), 1)).status).toBe(400);
    const dupKeys = `${metadataHeader({ path: '/a' })},${metadataHeader({ path: '/b' })}`;
    expect((await post(alice, dupKeys, 1)).status).toBe(400);
    expect((await post(alice, { path: '/x.bin', sha256: 'abc' }, 1)).body.error.code).toBe(
      'VALIDATION_FAILED',
    );
    expect(await childrenOf(h, alice.id)).toEqual([]);
  });
});

describe('conflicts, limits and quota', () => {
  it('refuses a target that is an existing folder with 409 NAME_CONFLICT', async () => {
    await h.t.deps.metadata.createFolder(alice.id, null, 'Photos');
    const res = await post(alice, { path: '/photos' }, 3);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('NAME_CONFLICT');
  });

  it('refuses a stale base revision with 409 REVISION_CONFLICT at creation', async () => {
    const first = await post(alice, { path: '/stale.txt' }, 2, Buffer.from('v1'));
    await waitForUpload(h, alice.headers, idOf(first.headers.location));
    const mustNotExist = await post(alice, { path: '/stale.txt', baseRevision: 0 }, 2);
    expect(mustNotExist.status).toBe(409);
    expect(mustNotExist.body.error.code).toBe('REVISION_CONFLICT');
    const wrongBase = await post(alice, { path: '/stale.txt', baseRevision: 5 }, 2);
    expect(wrongBase.body.error.code).toBe('REVISION_CONFLICT');
    const fresh = await post(alice, { path: '/never-existed.txt', baseRevision: 1 }, 2);
    expect(fresh.body.error.code).toBe('REVISION_CONFLICT');
  });

  it('marks the upload failed when the file changed after creation, overwriting nothing', async () => {
    const seed = await post(alice, { path: '/race.txt' }, 2, Buffer.from('v1'));
    await waitForUpload(h, alice.headers, idOf(seed.headers.location));
    // Created against revision 1 …
    const id = await createUpload(h, alice.headers, { path: '/race.txt', baseRevision: 1 }, 4);
    // … but another client commits revision 2 first.
    const other = await post(alice, { path: '/race.txt', baseRevision: 1 }, 2, Buffer.from('v2'));
    await waitForUpload(h, alice.headers, idOf(other.headers.location));
    await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(Buffer.from('late'))
      .expect(204);
    const info = await waitForUpload(h, alice.headers, id);
    expect(info).toMatchObject({ status: 'failed', error: 'REVISION_CONFLICT', fileId: null });
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'race.txt');
    expect(file).toMatchObject({ revision: 2, sha256: sha256Of(Buffer.from('v2')) });
  });

  it('refuses an upload longer than the server limit with 413', async () => {
    const res = await post(alice, { path: '/huge.bin' }, 1024 * 1024 + 1);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses an upload over the quota with 507, counting the size of the file it replaces', async () => {
    const bob = await createTestUser(h.t, { quota: 1000 });
    const first = await post(bob, { path: '/a.bin' }, 600, bytesOf(600, 3));
    expect(first.status).toBe(201);
    await waitForUpload(h, bob.headers, idOf(first.headers.location));
    const over = await post(bob, { path: '/b.bin' }, 401);
    expect(over.status).toBe(507);
    expect(over.body.error.code).toBe('QUOTA_EXCEEDED');
    // Replacing a.bin (600 bytes) with 1000 bytes fits exactly.
    expect((await post(bob, { path: '/a.bin' }, 1000)).status).toBe(201);
    expect((await childrenOf(h, bob.id)).map((n) => n.name)).toEqual(['a.bin']);
  });
});

describe('checksums', () => {
  it('fails an upload whose bytes do not match the declared sha256, leaving nothing in the tree', async () => {
    const carol = await createTestUser(h.t);
    const body = Buffer.from('the real bytes');
    const res = await post(
      carol,
      { path: '/claimed.txt', sha256: sha256Of(Buffer.from('other bytes')) },
      body.length,
      body,
    );
    expect(res.status).toBe(201);
    const id = idOf(res.headers.location);
    const info = await waitForUpload(h, carol.headers, id);
    expect(info).toMatchObject({ status: 'failed', error: 'CHECKSUM_MISMATCH', fileId: null });
    expect(await childrenOf(h, carol.id)).toEqual([]);
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
    expect(await h.t.deps.blobs.stat(sha256Of(body))).toBeNull();
    const audit = await h.t.deps.metadata.listAudit(carol.id, { limit: 10 });
    expect(audit.items.map((e) => e.action)).toContain('file.upload_failed');
  });
});
