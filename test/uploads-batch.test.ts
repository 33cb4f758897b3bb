/**
 * Batch uploads (`POST /api/v1/uploads/batch`) through the real app, outbox relay and
 * worker on embedded adapters; the client side is contract/batch-client.ts over real HTTP.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeBatch, planBatches, uploadBatch, type BatchFile } from '../contract/batch-client.js';
import { ApiClient } from '../contract/client.js';
import { BATCH_CONTENT_TYPE, type UploadBatchResponse } from '../contract/schemas/uploads.js';
import type { Job } from '../core/ports/job-queue.js';
import { fileUploadHandler } from '../worker/jobs/file-upload.js';
import { CountingBodyMemory } from './helpers/body-memory.js';
import { createTestUser, type TestUser } from './helpers/app.js';
import { bytesOf, readBlob, sha256Of, startHarness, type UploadHarness } from './uploads-harness.js';

let h: UploadHarness;
let user: TestUser;

function file(p: string, size: number, seed: number, extra: Partial<BatchFile> = {}): BatchFile {
  const bytes = bytesOf(size, seed);
  return { path: p, bytes, sha256: sha256Of(bytes), mtimeMs: 1_700_000_000_000 + seed, ...extra };
}

async function post(body: Buffer, as: TestUser = user, type = BATCH_CONTENT_TYPE): Promise<request.Response> {
  return request(h.app).post('/api/v1/uploads/batch').set(as.headers).set('Content-Type', type).send(body);
}

async function waitDone(batchId: string, as: TestUser = user): Promise<UploadBatchResponse> {
  const res = await request(h.app).get(`/api/v1/uploads/batch/${batchId}?wait=10`).set(as.headers);
  expect(res.status).toBe(200);
  const view = res.body as UploadBatchResponse;
  expect(view.done).toBe(true);
  return view;
}

interface Stat {
  kind: string;
  sha256: string | null;
  revision: number;
  mediaType: string | null;
}

async function stat(p: string): Promise<Stat | null> {
  const res = await request(h.app)
    .get(`/api/v1/fs/stat?path=${encodeURIComponent(p)}`)
    .set(user.headers);
  return res.status === 200 ? (res.body as Stat) : null;
}

async function stagingFiles(): Promise<string[]> {
  return fs.readdir(path.join(h.t.dataDir, 'storage', 'staging')).catch(() => []);
}

describe('batch uploads', () => {
  beforeEach(async () => {
    h = await startHarness();
    user = await createTestUser(h.t);
  });
  afterEach(async () => {
    await h.close();
  });

  it('commits 120 files in 3 folders through one job, over real HTTP with the batch client', async () => {
    const server = http.createServer(h.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = new ApiClient(`http://127.0.0.1:${port}`, {
        current: async () => user.accessToken,
        refresh: async () => null,
      });
      const files = Array.from({ length: 120 }, (_, i) =>
        file(`/b/d${i % 3}/f${i}.bin`, 100 + i * 37, i + 1),
      );
      files.push(file('/b/empty.txt', 0, 999));
      // Types are sniffed from the bytes (a GIF signature), else taken from the name.
      const png = Buffer.concat([Buffer.from('GIF89a', 'latin1'), bytesOf(200, 7)]);
      files.push({ path: '/b/picture.bin', bytes: png, sha256: sha256Of(png) });
      const results = await uploadBatch(client, files, { priority: 'bulk' });
      expect(results.map((r) => r.status)).toEqual(files.map(() => 'ready'));
      expect(results.every((r) => r.fileId !== null && r.error === null)).toBe(true);
      // Each answer names the revision its upload made (the daemon records it as it is).
      expect(results.every((r) => r.revision === 1)).toBe(true);
      const types = await Promise.all(
        ['/b/empty.txt', '/b/picture.bin', '/b/d0/f0.bin'].map(async (p) => (await stat(p))?.mediaType),
      );
      expect(types).toEqual(['text/plain', 'image/gif', 'application/octet-stream']);
      for (const f of [files[0], files[61], files[119], files[120]] as BatchFile[]) {
        const node = await stat(f.path);
        expect(node).toMatchObject({ kind: 'file', sha256: f.sha256, revision: 1 });
        expect(sha256Of(await readBlob(h, f.sha256))).toBe(f.sha256);
      }
      expect(await stagingFiles()).toEqual([]);
      const audit = await h.t.deps.metadata.listAudit(user.id, { limit: 1000 });
      expect(audit.items.filter((e) => e.action === 'file.upload')).toHaveLength(122);
      // The change feed has one create per file (plus the folders).
      const changes = await h.t.deps.metadata.listChanges(user.id, 0, 1000);
      expect(changes.filter((c) => c.kind === 'create' && c.data.kind === 'file')).toHaveLength(122);
    } finally {
      server.close();
    }
  });

  it('counts every byte of a batch body for early collection, like a tus body', async () => {
    const files = Array.from({ length: 40 }, (_, i) => file(`/m/f${i}.bin`, 64 * 1024, 100 + i));
    const body = encodeBatch(files);
    const memory = new CountingBodyMemory(1024 * 1024);
    h.t.deps.bodyMemory = memory;
    try {
      const res = await post(body);
      expect(res.status).toBe(202);
      expect(memory.receivedBytes).toBe(body.length);
      expect(memory.collections).toHaveLength(Math.floor(body.length / (1024 * 1024)));
      const view = await waitDone((res.body as UploadBatchResponse).batchId);
      expect(view.files.map((f) => f.status)).toEqual(files.map(() => 'ready'));
    } finally {
      delete h.t.deps.bodyMemory;
    }
  });

  it('refuses bad files one by one and commits the rest', async () => {
    await request(h.app)
      .post('/api/v1/fs/mkdir')
      .set(user.headers)
      .send({ path: '/x/folder.txt', parents: true });
    const good = file('/x/good.txt', 10, 1);
    const lying = { ...file('/x/lying.txt', 10, 2), sha256: sha256Of(Buffer.from('something else')) };
    const badName = file('/x/bad\u0001name.txt', 10, 3);
    const twice = file('/x/GOOD.txt', 10, 4);
    const folder = file('/x/folder.txt', 10, 5);
    const stale = file('/x/new.txt', 10, 6, { baseRevision: 4 });
    const res = await post(encodeBatch([good, lying, badName, twice, folder, stale]));
    expect(res.status).toBe(202);
    const answer = res.body as UploadBatchResponse;
    expect(answer.files.map((f) => [f.status, f.error])).toEqual([
      ['processing', null],
      ['failed', 'CHECKSUM_MISMATCH'],
      ['failed', 'INVALID_PATH'],
      ['failed', 'CONFLICT'],
      ['failed', 'NAME_CONFLICT'],
      ['failed', 'REVISION_CONFLICT'],
    ]);
    const done = await waitDone(answer.batchId);
    expect(done.files.find((f) => f.path === '/x/good.txt')?.status).toBe('ready');
    expect(done.files.find((f) => f.path === '/x/lying.txt')).toMatchObject({
      status: 'failed',
      error: 'CHECKSUM_MISMATCH',
    });
    expect(await stat('/x/good.txt')).toMatchObject({ sha256: good.sha256 });
    expect(await stat('/x/lying.txt')).toBeNull();
    expect(await stat('/x/new.txt')).toBeNull();
    expect((await stat('/x/folder.txt'))?.kind).toBe('folder');
    expect(await stagingFiles()).toEqual([]);
  });

  it('checks base revisions and counts the whole batch against the quota', async () => {
    const small = await createTestUser(h.t, { quota: 1000 });
    const first = await post(encodeBatch([file('/q/a.bin', 400, 1), file('/q/b.bin', 400, 2)]), small);
    expect(first.status).toBe(202);
    await waitDone((first.body as UploadBatchResponse).batchId, small);
    const second = await post(
      encodeBatch([
        file('/q/a.bin', 300, 3, { baseRevision: 1 }),
        file('/q/c.bin', 150, 4),
        file('/q/d.bin', 150, 5),
      ]),
      small,
    );
    // a shrinks by 100, c fits in the 300 left, d does not.
    expect((second.body as UploadBatchResponse).files.map((f) => f.error)).toEqual([
      null,
      null,
      'QUOTA_EXCEEDED',
    ]);
    const done = await waitDone((second.body as UploadBatchResponse).batchId, small);
    // GET lists the files that got an upload; d was refused in the POST's answer.
    expect(done.files.map((f) => [f.path, f.status])).toEqual([
      ['/q/a.bin', 'ready'],
      ['/q/c.bin', 'ready'],
    ]);
  });

  it('answers 4xx for a malformed batch and leaves nothing behind when the body is cut', async () => {
    const one = encodeBatch([file('/m/a.txt', 100, 1), file('/m/b.txt', 100, 2)]);
    expect((await post(one, user, 'application/json')).status).toBe(415);
    const cut = await post(one.subarray(0, one.length - 50));
    expect(cut.status).toBe(400);
    expect(cut.body.error.code).toBe('BAD_REQUEST');
    const longer = await post(Buffer.concat([one, Buffer.from('x')]));
    expect(longer.status).toBe(400);
    expect(await stagingFiles()).toEqual([]);
    expect(await h.t.deps.metadata.listExpiredUploads(new Date(Date.now() + 86_400_000 * 2), 100)).toEqual(
      [],
    );
    expect(await stat('/m/a.txt')).toBeNull();

    const head = Buffer.alloc(4);
    head.writeUInt32BE(7);
    const notJson = await post(Buffer.concat([head, Buffer.from('{nope}!')]));
    expect(notJson.status).toBe(400);
    const manifest = (value: unknown): Buffer => {
      const json = Buffer.from(JSON.stringify(value));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(json.length);
      return Buffer.concat([len, json]);
    };
    const tooBig = await post(
      manifest({ files: [{ path: '/a', size: 2 * 1024 * 1024, sha256: 'a'.repeat(64) }] }),
    );
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error.code).toBe('VALIDATION_FAILED');
    const extra = await post(
      manifest({ files: [{ path: '/a', size: 0, sha256: 'a'.repeat(64), role: 'x' }] }),
    );
    expect(extra.status).toBe(400);
    const many = Array.from({ length: 1001 }, (_, i) => ({
      path: `/m${i}`,
      size: 0,
      sha256: 'a'.repeat(64),
    }));
    expect((await post(manifest({ files: many }))).status).toBe(400);
    const noAuth = await request(h.app)
      .post('/api/v1/uploads/batch')
      .set('Content-Type', BATCH_CONTENT_TYPE)
      .send(one);
    expect(noAuth.status).toBe(401);
  });

  it('hides a batch from other users (404) and says so for made-up ids', async () => {
    const res = await post(encodeBatch([file('/p/a.txt', 10, 1)]));
    const { batchId } = res.body as UploadBatchResponse;
    const other = await createTestUser(h.t);
    const foreign = await request(h.app).get(`/api/v1/uploads/batch/${batchId}`).set(other.headers);
    expect(foreign.status).toBe(404);
    const madeUp = await request(h.app).get('/api/v1/uploads/batch/AAAAAAAAAAAAAAAAAAAAAA').set(user.headers);
    expect(madeUp.status).toBe(404);
    await waitDone(batchId);
  });
});

describe('the batch job', () => {
  beforeEach(async () => {
    h = await startHarness({ worker: false, relay: false });
    user = await createTestUser(h.t);
  });
  afterEach(async () => {
    await h.close();
  });

  /** The `file.upload` job the API queued (in its outbox) for the batch. */
  async function batchJob(batchId: string, id: string): Promise<Job> {
    const entry = (await h.t.deps.metadata.listOutbox(10)).find(
      (e) => e.idempotencyKey === `batch:${batchId}`,
    );
    expect(entry?.payload).toMatchObject({ batchId });
    return {
      id,
      queue: 'file.upload',
      payload: entry?.payload ?? {},
      attempt: 1,
      idempotencyKey: entry?.idempotencyKey ?? '',
      priority: 0,
      publishedAt: new Date(),
    };
  }

  it('is idempotent: a redelivered job makes no second revision', async () => {
    const files = [file('/r/a.txt', 50, 1), file('/r/b.txt', 60, 2)];
    const res = await post(encodeBatch(files));
    const { batchId } = res.body as UploadBatchResponse;
    const job = await batchJob(batchId, 'j1');
    const handler = fileUploadHandler(h.t.deps);
    await handler(job);
    await handler({ ...job, attempt: 2 });
    for (const f of files) expect(await stat(f.path)).toMatchObject({ sha256: f.sha256, revision: 1 });
    const view = await waitDone(batchId);
    expect(view.files.map((f) => f.status)).toEqual(['ready', 'ready']);
  });

  it("finds a job's uploads whatever their order, skipping ids that do not exist", async () => {
    const files = [file('/o/a.txt', 30, 7), file('/o/b.txt', 40, 8), file('/o/c.txt', 50, 9)];
    const res = await post(encodeBatch(files));
    const { batchId } = res.body as UploadBatchResponse;
    const queued = await batchJob(batchId, 'j2');
    const ids = (queued.payload.uploadIds ?? []) as string[];
    expect(ids).toHaveLength(3);
    const job: Job = {
      ...queued,
      // A made-up id first (it names no uploader), then the real ones backwards.
      payload: { ...queued.payload, uploadIds: ['u_made_up_0000000000', ...[...ids].reverse()] },
    };
    await fileUploadHandler(h.t.deps)(job);
    for (const f of files) expect(await stat(f.path)).toMatchObject({ sha256: f.sha256, revision: 1 });
    const view = await waitDone(batchId);
    expect(view.files.map((f) => f.status)).toEqual(['ready', 'ready', 'ready']);
  });

  it('commits the rest of a batch when one file meets a conflict only at commit time, and leaves nothing of it', async () => {
    const files = [file('/k/a.txt', 30, 11), file('/k/b.txt', 40, 12), file('/k/c.txt', 50, 13)];
    const res = await post(encodeBatch(files));
    expect(res.status).toBe(202);
    const { batchId } = res.body as UploadBatchResponse;
    // Accepted by the API; a folder takes the second name before the worker commits.
    const mkdir = await request(h.app).post('/api/v1/fs/mkdir').set(user.headers).send({ path: '/k/b.txt' });
    expect(mkdir.status).toBe(201);
    const before = await h.t.deps.metadata.latestChangeSeq(user.id);
    await fileUploadHandler(h.t.deps)(await batchJob(batchId, 'j3'));
    const view = await waitDone(batchId);
    expect(view.files.map((f) => [f.path, f.status, f.error])).toEqual([
      ['/k/a.txt', 'ready', null],
      ['/k/b.txt', 'failed', 'NAME_CONFLICT'],
      ['/k/c.txt', 'ready', null],
    ]);
    expect(await stat('/k/a.txt')).toMatchObject({ kind: 'file', sha256: files[0]?.sha256, revision: 1 });
    expect(await stat('/k/b.txt')).toMatchObject({ kind: 'folder' });
    expect(await stat('/k/c.txt')).toMatchObject({ kind: 'file', sha256: files[2]?.sha256, revision: 1 });
    // One change per committed file, nothing for the refused one.
    const changes = await h.t.deps.metadata.listChanges(user.id, before, 100);
    expect(changes.map((c) => [c.kind, c.data.name])).toEqual([
      ['create', 'a.txt'],
      ['create', 'c.txt'],
    ]);
    const audit = (await h.t.deps.metadata.listAudit(user.id, { limit: 100 })).items.filter((e) =>
      view.files.some((f) => f.uploadId === e.details.uploadId),
    );
    expect(audit.map((e) => e.action).sort()).toEqual(['file.upload', 'file.upload', 'file.upload_failed']);
  });

  it('splits lists into batches within the limits', () => {
    const sizes = [{ size: 10 }, { size: 20 }, { size: 30 }, { size: 40 }];
    expect(planBatches(sizes, { maxFiles: 3 }).map((b) => b.length)).toEqual([3, 1]);
    expect(planBatches(sizes, { maxBytes: 50 }).map((b) => b.map((i) => i.size))).toEqual([
      [10, 20],
      [30],
      [40],
    ]);
    expect(() => planBatches([{ size: 2 * 1024 * 1024 }])).toThrow(RangeError);
  });
});
