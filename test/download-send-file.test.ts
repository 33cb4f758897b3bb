/**
 * The server side of downloads: a local blob is sent through a few reused buffers
 * (server/files/send-file.ts) instead of a read stream. Exact bytes for ranges across
 * buffer boundaries, also with many responses sharing the spare buffers at once; the
 * `BlobStore.read` fall-back for stores without a local path; a blob shorter than its
 * record; and the file closed when a client goes away.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TreeNode } from '../core/ports/metadata-store.js';
import { SEND_CHUNK_BYTES, openForSending, sendFileRange } from '../server/files/send-file.js';
import { binaryParser, createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { expectFileClosedAfterAbort } from './helpers/abort.js';
import { createTestUser, type TestUser } from './helpers/app.js';

const MiB = 1024 * 1024;
let f: FilesTestApp;
let user: TestUser;
let file: TreeNode;
let content: Buffer;
let server: http.Server;
let port: number;

beforeAll(async () => {
  f = await createFilesTestApp();
  user = await createTestUser(f.t);
  content = randomBytes(5 * MiB + 321);
  file = await putFile(f.t, user, '/send/big.bin', content);
  server = f.app.listen(0);
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await f?.t.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const get = (id: string, range?: string) => {
  const req = request(f.app).get(`/api/v1/files/${id}/content`).set(user.headers);
  if (range) req.set('Range', range);
  return req.buffer(true).parse(binaryParser);
};

/** GET over a real socket; resolves with the status, the bytes and whether the body was complete. */
function fetchRaw(id: string, range?: string): Promise<{ status: number; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...user.headers };
    if (range) headers.range = range;
    http
      .get({ port, path: `/api/v1/files/${id}/content`, headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        const finish = (complete: boolean) =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), complete });
        res.once('end', () => finish(res.complete));
        res.once('aborted', () => finish(false));
        res.once('error', () => finish(false));
      })
      .on('error', reject);
  });
}

describe('sending a local blob through reused buffers', () => {
  it('sends exact bytes for ranges around the buffer boundaries', async () => {
    const B = SEND_CHUNK_BYTES;
    const cases: Array<[string, number, number]> = [
      [`bytes=0-0`, 0, 0],
      [`bytes=${B - 1}-${B}`, B - 1, B],
      [`bytes=${B - 5}-${3 * B + 5}`, B - 5, 3 * B + 5],
      [`bytes=${B}-${2 * B - 1}`, B, 2 * B - 1],
      [`bytes=${4 * B + 17}-`, 4 * B + 17, content.length - 1],
      [`bytes=-7`, content.length - 7, content.length - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await get(file.id, range).expect(206);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${content.length}`);
      expect((res.body as Buffer).equals(content.subarray(start, end + 1)), range).toBe(true);
    }
    const whole = await get(file.id).expect(200);
    expect((whole.body as Buffer).equals(content)).toBe(true);
  });

  it('keeps every response exact while many share the spare buffers', async () => {
    const ranges = Array.from({ length: 16 }, (_, i) => {
      const start = (i * 313_131) % (4 * MiB);
      return { start, end: start + MiB + i * 77_777 };
    });
    // Twice: the second round runs on buffers the first one gave back.
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        ranges.map(({ start, end }) => fetchRaw(file.id, `bytes=${start}-${end}`)),
      );
      results.forEach((r, i) => {
        const { start, end } = ranges[i] as { start: number; end: number };
        expect(r.status).toBe(206);
        expect(r.complete).toBe(true);
        expect(r.body.equals(content.subarray(start, end + 1))).toBe(true);
      });
    }
  });

  it('reads the blob from its local path, not through BlobStore.read', async () => {
    const read = vi.spyOn(f.t.deps.blobs, 'read');
    const res = await get(file.id, 'bytes=100-199').expect(206);
    expect((res.body as Buffer).equals(content.subarray(100, 200))).toBe(true);
    expect(read).not.toHaveBeenCalled();
  });

  it('falls back to BlobStore.read for a store without local paths', async () => {
    vi.spyOn(f.t.deps.blobs, 'localPath').mockReturnValue(null);
    const read = vi.spyOn(f.t.deps.blobs, 'read');
    const res = await get(file.id, 'bytes=5-1048580').expect(206);
    expect((res.body as Buffer).equals(content.subarray(5, 1048581))).toBe(true);
    const whole = await get(file.id).expect(200);
    expect((whole.body as Buffer).equals(content)).toBe(true);
    expect(read).toHaveBeenCalledTimes(2);
  });

  it('answers a missing blob with a JSON 404 and sends HEAD without opening it', async () => {
    const node = await putFile(f.t, user, '/send/gone.bin', randomBytes(1000));
    const blob = f.t.deps.blobs.localPath(node.sha256 as string) as string;
    const head = await request(f.app).head(`/api/v1/files/${node.id}/content`).set(user.headers).expect(200);
    expect(head.headers['content-length']).toBe('1000');
    fs.rmSync(blob);
    const res = await request(f.app).get(`/api/v1/files/${node.id}/content`).set(user.headers).expect(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    expect(res.headers['content-disposition']).toBeUndefined();
    await request(f.app).head(`/api/v1/files/${node.id}/content`).set(user.headers).expect(200);
  });

  it('cuts the response short when the blob is shorter than its record', async () => {
    const bytes = randomBytes(3 * MiB);
    const node = await putFile(f.t, user, '/send/short.bin', bytes);
    fs.truncateSync(f.t.deps.blobs.localPath(node.sha256 as string) as string, 2 * MiB + 5);
    const res = await fetchRaw(node.id);
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThanOrEqual(2 * MiB + 5);
    expect(res.body.equals(bytes.subarray(0, res.body.length))).toBe(true);
  });

  it('closes the file when the client goes away in the middle of a range', async () => {
    const node = await putFile(f.t, user, '/send/huge.bin', randomBytes(24 * MiB));
    await expectFileClosedAfterAbort(
      port,
      `/api/v1/files/${node.id}/content`,
      { ...user.headers, range: 'bytes=1000-' },
      206,
    );
  });
});

describe('reading a big body past the page cache (O_DIRECT)', () => {
  let dir: string;
  let local: string;
  let bytes: Buffer;
  let sendServer: http.Server;
  let sendPort: number;
  /** How the next request's file is opened (set by each case). */
  let opening: { file: string; directMinBytes: number; direct?: boolean } = { file: '', directMinBytes: 0 };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-send-direct-'));
    local = path.join(dir, 'blob');
    bytes = randomBytes(3 * MiB + 4321);
    fs.writeFileSync(local, bytes);
    sendServer = http.createServer((req, res) => {
      const [start, end] = (req.headers['x-range'] as string).split('-').map(Number) as [number, number];
      void openForSending(opening.file, { start, end }, { directMinBytes: opening.directMinBytes }).then(
        async (file) => {
          opening.direct = file.direct;
          res.writeHead(200, { 'content-length': String(end - start + 1) });
          await sendFileRange(res, file, start, end - start + 1).catch(() => undefined);
        },
      );
    });
    sendPort = await new Promise<number>((resolve) =>
      sendServer.listen(0, () => resolve((sendServer.address() as AddressInfo).port)),
    );
  });
  afterAll(async () => {
    sendServer?.closeAllConnections();
    await new Promise((resolve) => sendServer?.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const fetchRange = (start: number, end: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      http
        .get({ port: sendPort, path: '/', headers: { 'x-range': `${start}-${end}` } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.once('end', () => resolve(Buffer.concat(parts)));
        })
        .on('error', reject);
    });

  it('sends exact bytes for aligned and unaligned ranges, to the end of the file and across buffers', async () => {
    const B = SEND_CHUNK_BYTES;
    const last = bytes.length - 1;
    const cases: Array<[number, number]> = [
      [0, last],
      [0, 0],
      [1, 4095],
      [4095, 4096],
      [4097, B + 3],
      [B - 1, 3 * B + 7],
      [3 * B, last],
      [last - 10, last],
      [last, last],
    ];
    for (const [start, end] of cases) {
      opening = { file: local, directMinBytes: 0 };
      const got = await fetchRange(start, end);
      expect(opening.direct, `${start}-${end}`).toBe(true);
      expect(got.equals(bytes.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
  });

  it('reads through the page cache below the size limit, and where a direct read is refused', async () => {
    opening = { file: local, directMinBytes: 4 * MiB };
    expect((await fetchRange(10, 2 * MiB)).equals(bytes.subarray(10, 2 * MiB + 1))).toBe(true);
    expect(opening.direct).toBe(false);
    // Some file systems (FUSE ones, tmpfs before Linux 6.6) refuse O_DIRECT: EINVAL on the
    // open or on the first read.
    const refuse = vi.spyOn(fs, 'read').mockImplementationOnce(((...args: unknown[]) => {
      const callback = args[args.length - 1] as (err: NodeJS.ErrnoException) => void;
      callback(Object.assign(new Error('EINVAL: invalid argument, read'), { code: 'EINVAL' }));
    }) as unknown as typeof fs.read);
    opening = { file: local, directMinBytes: 0 };
    expect((await fetchRange(5, bytes.length - 1)).equals(bytes.subarray(5))).toBe(true);
    expect(opening.direct).toBe(false);
    expect(refuse).toHaveBeenCalled();
  });
});
