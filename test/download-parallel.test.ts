/**
 * `downloadFile` of a large file over several ranged connections (contract/
 * parallel-download.ts): identical bytes, a clean prefix after an interruption that the
 * next attempt resumes with one ranged request, the fall-backs to a single stream, the
 * token refresh mid-download, and the checksum check.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../contract/client.js';
import {
  DEFAULT_TUNING,
  downloadFile,
  type DownloadSpec,
  type DownloadTuning,
} from '../contract/download-client.js';
import { AppError } from '../contract/errors.js';
import type { TreeNode } from '../core/ports/metadata-store.js';
import { createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';

const CHUNK = 256 * 1024;
/** Small chunks so a few MiB make many of them; 4 streams so chunks finish out of order. */
const TUNING: DownloadTuning = {
  parallelMinBytes: 1024 * 1024,
  parallel: { streams: 4, chunkBytes: CHUNK, windowChunks: 6, hashThread: true, direct: true },
};
/** 20 chunks and an unaligned tail (not a multiple of 4096: the direct-I/O tail path). */
const SIZE = 19 * CHUNK + 12_345;
const CHUNKS = Math.ceil(SIZE / CHUNK);

interface Seen {
  range: string | undefined;
  ifRange: string | undefined;
  port: number;
}

/** What the test server should do with a request instead of the app (return true when handled). */
type Hook = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

let f: FilesTestApp;
let user: TestUser;
let file: TreeNode;
let content: Buffer;
let server: http.Server;
let base: string;
let seen: Seen[] = [];
let hook: Hook | null = null;
let dir: string;
/** Chunk requests whose answers went out completely, by start offset. */
let served = new Map<number, () => void>();
let servedWaits = new Map<number, Promise<void>>();

/** Resolves once the answer to the chunk request starting at `start` went out completely. */
function servedChunk(start: number): Promise<void> {
  let wait = servedWaits.get(start);
  if (!wait) {
    wait = new Promise<void>((resolve) => served.set(start, resolve));
    servedWaits.set(start, wait);
  }
  return wait;
}

beforeAll(async () => {
  f = await createFilesTestApp();
  user = await createTestUser(f.t);
  content = randomBytes(SIZE);
  file = await putFile(f.t, user, '/big/data.bin', content);
  // The app behind a thin front that records the requests and lets a test misbehave.
  server = http.createServer((req, res) => {
    seen.push({
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      port: req.socket.remotePort ?? 0,
    });
    const start = chunkStart(req);
    if (start !== null) {
      res.once('finish', () => {
        void servedChunk(start);
        served.get(start)?.();
      });
    }
    if (hook?.(req, res)) return;
    f.app(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await f?.t.close();
});
beforeEach(async () => {
  seen = [];
  hook = null;
  served = new Map();
  servedWaits = new Map();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-dl-par-'));
  return () => fs.rm(dir, { recursive: true, force: true });
});

/** A client with the user's token; `refresh` counts calls and hands out the same token. */
function clientFor(token = user.accessToken): { client: ApiClient; refreshes: () => number } {
  let refreshes = 0;
  const client = new ApiClient(base, {
    current: async () => token,
    refresh: async () => {
      refreshes++;
      token = user.accessToken;
      return token;
    },
  });
  return { client, refreshes: () => refreshes };
}

function spec(
  dest: string,
  extra: Partial<Pick<DownloadSpec, 'sha256' | 'onProgress' | 'beforeReplace'>> = {},
) {
  return {
    fileId: file.id,
    sha256: extra.sha256 ?? (file.sha256 as string),
    size: SIZE,
    dest,
    mtime: 1_700_000_000_000,
    onProgress: extra.onProgress,
    beforeReplace: extra.beforeReplace,
  };
}

/** The start offset of a chunk request (`Range: bytes=a-b`), or null for any other request. */
function chunkStart(req: http.IncomingMessage): number | null {
  const match = /^bytes=(\d+)-\d+$/.exec(req.headers.range ?? '');
  return match ? Number(match[1]) : null;
}

/** Answers a chunk request by hand: 206 with the right headers and `body`. */
function send206(res: http.ServerResponse, start: number, body: Buffer): void {
  res.writeHead(206, {
    'content-range': `bytes ${start}-${start + body.length - 1}/${SIZE}`,
    'content-length': String(body.length),
    etag: `"${file.sha256}"`,
  });
  res.end(body);
}

const chunkRequests = () => seen.filter((s) => s.range !== undefined && /^bytes=\d+-\d+$/.test(s.range));

describe('downloadFile over several connections', () => {
  it.each([
    { name: 'raw sockets, direct writes, hashing thread', parallel: {} },
    { name: 'page-cache writes', parallel: { direct: false } },
    { name: 'hashing on the main thread', parallel: { hashThread: false } },
    { name: "Node's HTTP client", parallel: { transport: 'node' as const } },
    { name: 'one stream', parallel: { streams: 1, windowChunks: 2 } },
  ])('gives identical bytes ($name)', async ({ parallel }) => {
    const { client } = clientFor();
    const dest = path.join(dir, 'out', 'data.bin');
    const progress: number[] = [];
    const result = await downloadFile(
      client,
      spec(dest, { onProgress: (n, size) => (expect(size).toBe(SIZE), progress.push(n)) }),
      { ...TUNING, parallel: { ...TUNING.parallel, ...parallel } },
    );
    expect(result.transferred).toBe(SIZE);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
    await expect(fs.stat(`${dest}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
    const st = await fs.stat(dest);
    expect(st.mtimeMs).toBe(1_700_000_000_000);
    expect(result.landed).toEqual({ ino: st.ino, size: SIZE, mtimeMs: st.mtimeMs });
    // One ranged request per chunk, each guarded by If-Range, over several connections.
    const chunks = chunkRequests();
    expect(chunks).toHaveLength(CHUNKS);
    expect(chunks.every((s) => s.ifRange === `"${file.sha256}"`)).toBe(true);
    expect(seen).toHaveLength(CHUNKS);
    const streams = parallel.streams ?? TUNING.parallel.streams;
    expect(new Set(chunks.map((s) => s.port)).size).toBe(streams);
    // Progress only moves forward and ends at the size.
    expect(progress.length).toBeGreaterThan(CHUNKS);
    expect(progress.every((n, i) => i === 0 || n > (progress[i - 1] as number))).toBe(true);
    expect(progress.at(-1)).toBe(SIZE);
  });

  it('keeps a clean prefix when a connection breaks, and the next call resumes it with one range', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    const broken = 9 * CHUNK;
    hook = (req, res) => {
      if (chunkStart(req) !== broken) return false;
      // Half of the chunk; the connection dies once chunks 10 and 11 (after the gap)
      // have reached the client and its file.
      res.writeHead(206, {
        'content-range': `bytes ${broken}-${broken + CHUNK - 1}/${SIZE}`,
        'content-length': String(CHUNK),
      });
      res.write(content.subarray(broken, broken + CHUNK / 2));
      void Promise.all([servedChunk(10 * CHUNK), servedChunk(11 * CHUNK)])
        .then(() => new Promise((r) => setTimeout(r, 100)))
        .then(() => req.socket.destroy());
      return true;
    };
    const err = await downloadFile(client, spec(dest), TUNING).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('SERVICE_UNAVAILABLE');
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
    // The chunks before the broken one; not the ones written after the gap.
    const kept = await fs.readFile(`${dest}.partial`);
    expect(kept.length).toBe(broken);
    expect(kept.equals(content.subarray(0, kept.length))).toBe(true);

    hook = null;
    seen = [];
    const result = await downloadFile(client, spec(dest), TUNING);
    expect(seen).toEqual([
      expect.objectContaining({ range: `bytes=${kept.length}-`, ifRange: `"${file.sha256}"` }),
    ]);
    expect(result.transferred).toBe(SIZE - kept.length);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
  });

  it('cuts the partial back to the written prefix when a later chunk fails first', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    // Chunk 2 never comes; chunks 3 and 4 arrive and are written; then chunk 5 fails.
    // The partial must end where the gap begins.
    let releaseStalled: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => (releaseStalled = resolve));
    hook = (req, res) => {
      const start = chunkStart(req);
      if (start === 2 * CHUNK) {
        void stalled.then(() => req.socket.destroy());
        return true;
      }
      if (start === 5 * CHUNK) {
        res.writeHead(206, {
          'content-range': `bytes ${start}-${start + CHUNK - 1}/${SIZE}`,
          'content-length': String(CHUNK),
        });
        res.write(content.subarray(start, start + 1000));
        void Promise.all([servedChunk(3 * CHUNK), servedChunk(4 * CHUNK)])
          .then(() => new Promise((r) => setTimeout(r, 100)))
          .then(() => req.socket.destroy());
        return true;
      }
      return false;
    };
    try {
      await expect(downloadFile(client, spec(dest), TUNING)).rejects.toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
      });
    } finally {
      releaseStalled();
    }
    const kept = await fs.readFile(`${dest}.partial`);
    expect(kept.length).toBe(2 * CHUNK);
    expect(kept.equals(content.subarray(0, kept.length))).toBe(true);
  });

  it('falls back to one stream when the server ignores ranges', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    hook = (req) => {
      delete req.headers.range;
      return false;
    };
    await downloadFile(client, spec(dest), TUNING);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
    // The first chunk request (answered 200), then one plain GET.
    expect(seen.map((s) => s.range)).toEqual([`bytes=0-${CHUNK - 1}`, undefined]);
  });

  it('goes on with one ranged stream when a later chunk is answered with 200', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    // As if the file changed for that request only (If-Range failed).
    hook = (req) => {
      if (chunkStart(req) === 6 * CHUNK) {
        delete req.headers['if-range'];
        delete req.headers.range;
      }
      return false;
    };
    await downloadFile(client, spec(dest), TUNING);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
    const last = seen.at(-1);
    expect(last?.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(last?.range ?? '')?.[0]) % CHUNK).toBe(0);
  });

  it('ends in CHECKSUM_MISMATCH, as before, when the file changed since it was listed', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    const stale = createHash('sha256').update('older content').digest('hex');
    await expect(downloadFile(client, spec(dest, { sha256: stale }), TUNING)).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
    await expect(fs.stat(`${dest}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
    // If-Range failed on the first chunk (200), so the rest was one plain GET.
    expect(seen).toHaveLength(2);
  });

  it('leaves dest alone when beforeReplace refuses, and the next call places the kept partial', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    await fs.writeFile(dest, 'edited here');
    const refused = new Error('changed here');
    await expect(
      downloadFile(client, spec(dest, { beforeReplace: () => Promise.reject(refused) }), TUNING),
    ).rejects.toBe(refused);
    expect(await fs.readFile(dest, 'utf8')).toBe('edited here');
    expect((await fs.stat(`${dest}.partial`)).size).toBe(SIZE);
    const requests = seen.length;
    const again = await downloadFile(client, spec(dest), TUNING);
    expect(again.transferred).toBe(0);
    expect(seen).toHaveLength(requests);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
  });

  it('detects corrupted bytes in one chunk', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    hook = (req, res) => {
      const start = chunkStart(req);
      if (start !== 3 * CHUNK) return false;
      const body = Buffer.from(content.subarray(start, start + CHUNK));
      body[100] = (body[100] as number) ^ 0xff;
      send206(res, start, body);
      return true;
    };
    await expect(downloadFile(client, spec(dest), TUNING)).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
    await expect(fs.stat(`${dest}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refreshes the token once when it expires in the middle, and goes on', async () => {
    const { client, refreshes } = clientFor();
    const dest = path.join(dir, 'data.bin');
    let denied = 0;
    hook = (req, res) => {
      if (chunkStart(req) !== 7 * CHUNK || denied > 0) return false;
      denied++;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'INVALID_TOKEN', message: 'expired' } }));
      return true;
    };
    await downloadFile(client, spec(dest), TUNING);
    expect(refreshes()).toBe(1);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
    expect(chunkRequests()).toHaveLength(CHUNKS + 1);
  });

  it('answers a refused token on the first chunk as the single stream always did', async () => {
    const { client, refreshes } = clientFor('not-a-valid-token');
    const dest = path.join(dir, 'data.bin');
    await expect(downloadFile(client, spec(dest), TUNING)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
    expect(refreshes()).toBe(1);
  });

  it('maps an unknown file to NOT_FOUND', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    await expect(
      downloadFile(client, { ...spec(dest), fileId: '00000000-0000-4000-8000-000000000000' }, TUNING),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('survives the server closing kept-alive connections between chunks', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    hook = (req, res) => {
      const start = chunkStart(req) ?? 0;
      // Some answers say they close the connection; others close it right after they
      // went out without saying so (as an idle timeout would).
      if (start % (3 * CHUNK) === 0) res.setHeader('connection', 'close');
      else if (start % (2 * CHUNK) === 0) res.once('finish', () => req.socket.end());
      return false;
    };
    await downloadFile(client, spec(dest), TUNING);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
    expect(new Set(seen.map((s) => s.port)).size).toBeGreaterThan(TUNING.parallel.streams + 3);
  });

  it('falls back to one stream for an answer it does not expect (a chunked 206)', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    hook = (req, res) => {
      const start = chunkStart(req);
      if (start !== 4 * CHUNK) return false;
      res.writeHead(206, { 'content-range': `bytes ${start}-${start + CHUNK - 1}/${SIZE}` });
      res.end(content.subarray(start, start + CHUNK));
      return true;
    };
    await downloadFile(client, spec(dest), TUNING);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
    expect(seen.at(-1)?.range).toMatch(/^bytes=\d+-$/);
  });

  it('runs one parallel download at a time; another large file uses one stream', async () => {
    const { client } = clientFor();
    const a = path.join(dir, 'a.bin');
    const b = path.join(dir, 'b.bin');
    await Promise.all([downloadFile(client, spec(a), TUNING), downloadFile(client, spec(b), TUNING)]);
    expect((await fs.readFile(a)).equals(content)).toBe(true);
    expect((await fs.readFile(b)).equals(content)).toBe(true);
    expect(chunkRequests()).toHaveLength(CHUNKS);
    expect(seen).toHaveLength(CHUNKS + 1);
  });

  it('uses one stream below the cut-off and when resuming', async () => {
    const { client } = clientFor();
    const dest = path.join(dir, 'data.bin');
    await downloadFile(client, spec(dest), { ...TUNING, parallelMinBytes: SIZE + 1 });
    expect(seen).toEqual([expect.objectContaining({ range: undefined })]);
    expect((await fs.readFile(dest)).equals(content)).toBe(true);
  });

  it('keeps the defaults within the memory budget', () => {
    const { chunkBytes, windowChunks, streams } = DEFAULT_TUNING.parallel;
    expect(chunkBytes * windowChunks).toBeLessThanOrEqual(32 * 1024 * 1024);
    expect(streams).toBeGreaterThan(1);
  });
});
