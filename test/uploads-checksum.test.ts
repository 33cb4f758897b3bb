/** tus checksum (header and trailer) and the whole upload's sha256 stated at the end (Aio-Upload-Sha256). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestUser, type TestUser } from './helpers/app.js';
import {
  OCTET,
  TUS,
  bytesOf,
  childrenOf,
  createUpload,
  sha256Of,
  startHarness,
  waitForUpload,
  type UploadHarness,
} from './uploads-harness.js';

let h: UploadHarness;
let alice: TestUser;
let server: http.Server;
let base: string;

beforeAll(async () => {
  h = await startHarness();
  alice = await createTestUser(h.t);
  server = http.createServer(h.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await h?.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** A chunked PATCH whose `trailers` follow the body (supertest cannot send trailers). */
function patchWithTrailers(
  id: string,
  offset: number,
  body: Buffer,
  trailers: Record<string, string>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/api/v1/uploads/${id}`, {
      method: 'PATCH',
      headers: {
        ...TUS,
        ...alice.headers,
        'Content-Type': OCTET,
        'Upload-Offset': String(offset),
        Trailer: Object.keys(trailers).join(', '),
      },
    });
    req.once('error', reject);
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.write(body);
    req.addTrailers(trailers);
    req.end();
  });
}

function base64Sha256(bytes: Buffer): string {
  return Buffer.from(sha256Of(bytes), 'hex').toString('base64');
}

describe('checksums', () => {
  it('advertises checksum and checksum-trailer with sha256', async () => {
    const res = await request(h.app).options('/api/v1/uploads');
    expect(res.headers['tus-extension']?.split(',')).toEqual(
      expect.arrayContaining(['checksum', 'checksum-trailer']),
    );
    expect(res.headers['tus-checksum-algorithm']).toBe('sha256');
  });

  it('discards a chunk whose Upload-Checksum header does not match with 460 and keeps offset 0', async () => {
    const bytes = bytesOf(1000, 3);
    const id = await createUpload(h, alice.headers, { path: '/sum-header.bin' }, bytes.length);
    const res = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .set('Upload-Checksum', `sha256 ${base64Sha256(bytesOf(1000, 4))}`)
      .send(bytes);
    expect(res.status).toBe(460);
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
    const head = await request(h.app).head(`/api/v1/uploads/${id}`).set(TUS).set(alice.headers);
    expect(head.headers['upload-offset']).toBe('0');
    const ok = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .set('Upload-Checksum', `sha256 ${base64Sha256(bytes)}`)
      .send(bytes);
    expect(ok.status).toBe(204);
    expect((await waitForUpload(h, alice.headers, id)).status).toBe('ready');
  });

  it('refuses an unsupported checksum algorithm with 400 before writing', async () => {
    const id = await createUpload(h, alice.headers, { path: '/sum-md5.bin' }, 4);
    const res = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .set('Upload-Checksum', 'md5 1B2M2Y8AsgTpgAmY7PhCfg==')
      .send(Buffer.from('abcd'));
    expect(res.status).toBe(400);
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
  });

  // 20 MiB goes to disk in aligned blocks, hashed on the store's thread (the path of big uploads).
  it.each([
    ['small', 300_000],
    ['big', 20 * 1024 * 1024 + 5],
  ])(
    'verifies the sha256 stated in a trailer of a whole-upload PATCH and confirms it (%s)',
    async (kind, size) => {
      const bytes = bytesOf(size, 5);
      const bad = await createUpload(h, alice.headers, { path: `/trailer-bad-${kind}.bin` }, bytes.length);
      const refused = await patchWithTrailers(bad, 0, bytes, {
        'Aio-Upload-Sha256': sha256Of(bytesOf(10, 1)),
      });
      expect(refused.status).toBe(460);
      expect(await h.t.deps.blobs.stagingSize(bad)).toBeNull();

      const good = await createUpload(h, alice.headers, { path: `/trailer-good-${kind}.bin` }, bytes.length);
      const accepted = await patchWithTrailers(good, 0, bytes, { 'Aio-Upload-Sha256': sha256Of(bytes) });
      expect(accepted.status).toBe(204);
      expect(accepted.headers['aio-upload-sha256']).toBe(sha256Of(bytes));
      const info = await waitForUpload(h, alice.headers, good);
      expect(info.status).toBe('ready');
      const file = await h.t.deps.metadata.getNode(alice.id, info.fileId as string);
      expect(file?.sha256).toBe(sha256Of(bytes));
    },
  );

  it('holds a resumed upload to the sha256 stated at its end: other bytes fail, nothing is committed', async () => {
    const bytes = bytesOf(200_000, 6);
    const id = await createUpload(h, alice.headers, { path: '/resumed-bad.bin' }, bytes.length);
    const first = await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(bytes.subarray(0, 50_000));
    expect(first.status).toBe(204);
    const claimed = Buffer.from(bytes);
    claimed[10] = (claimed[10] as number) ^ 0xff;
    const rest = await patchWithTrailers(id, 50_000, bytes.subarray(50_000), {
      'Aio-Upload-Sha256': sha256Of(claimed),
    });
    expect(rest.status).toBe(204);
    const info = await waitForUpload(h, alice.headers, id);
    expect(info.status).toBe('failed');
    expect(info.error).toBe('CHECKSUM_MISMATCH');
    expect(info.fileId).toBeNull();
  });
});

describe('the end of a chunked body', () => {
  it('keeps only Upload-Length bytes of a longer chunked body (no Content-Length) and answers 400', async () => {
    const id = await createUpload(h, alice.headers, { path: '/chunked-long.txt' }, 5);
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = http.request(`${base}/api/v1/uploads/${id}`, {
        method: 'PATCH',
        headers: { ...TUS, ...alice.headers, 'Content-Type': OCTET, 'Upload-Offset': '0' },
      });
      req.once('error', reject);
      req.once('response', (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      });
      // Exactly the upload's bytes first; what follows comes only after the server took them.
      req.write('12345');
      setTimeout(() => req.end('EXTRA'), 100);
    });
    expect(answer.status).toBe(400);
    expect(answer.headers['upload-offset']).toBe('5');
    expect((await waitForUpload(h, alice.headers, id)).status).toBe('ready');
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'chunked-long.txt');
    expect(file?.sha256).toBe(sha256Of(Buffer.from('12345')));
  });
});
