/**
 * Uploads over a real listening server, where streaming, aborts and concurrency are
 * real: the client is `http.request`, the body a stream.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadInfo } from '../contract/schemas/uploads.js';
import { CountingBodyMemory } from './helpers/body-memory.js';
import { binaryParser } from './fs-helpers.js';
import { createTestUser, requireService, type TestUser } from './helpers/app.js';
import {
  OCTET,
  childrenOf,
  createUpload,
  listen,
  readBlob,
  sha256Of,
  startHarness,
  waitForUpload,
  type UploadHarness,
} from './uploads-harness.js';

const MiB = 1024 * 1024;

let h: UploadHarness;
let server: Awaited<ReturnType<typeof listen>>;
let alice: TestUser;

beforeAll(async () => {
  h = await startHarness();
  server = await listen(h.app);
  alice = await createTestUser(h.t);
});
afterAll(async () => {
  await server?.close();
  await h?.close();
});

/** Chunk `i` of a large deterministic body: one random MiB, stamped with its index. */
const base = randomBytes(MiB);
function chunkAt(i: number): Buffer {
  const chunk = Buffer.from(base);
  chunk.writeUInt32BE(i, 0);
  return chunk;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** A PATCH whose body the test writes by hand, chunk by chunk, with backpressure. */
function openPatch(id: string, user: TestUser, offset: number, length: number, baseUrl = server.url) {
  const req = http.request(`${baseUrl}/api/v1/uploads/${id}`, {
    method: 'PATCH',
    headers: {
      ...user.headers,
      'Tus-Resumable': '1.0.0',
      'Content-Type': OCTET,
      'Upload-Offset': String(offset),
      'Content-Length': String(length),
    },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
  });
  return {
    req,
    async write(bytes: Buffer): Promise<void> {
      if (!req.write(bytes)) await new Promise<void>((resolve) => req.once('drain', resolve));
    },
    end(): Promise<Answer> {
      req.end();
      return answer;
    },
    answer: () => answer,
  };
}

async function head(id: string): Promise<number> {
  const res = await request(h.app)
    .head(`/api/v1/uploads/${id}`)
    .set('Tus-Resumable', '1.0.0')
    .set(alice.headers);
  expect(res.status).toBe(200);
  return Number(res.headers['upload-offset']);
}

describe('streaming uploads', () => {
  it('resumes after the client aborts mid-body: HEAD shows what arrived and the rest completes the exact file', async () => {
    const chunks = 100;
    const length = chunks * MiB;
    const whole = createHash('sha256');
    for (let i = 0; i < chunks; i++) whole.update(chunkAt(i));
    const expectedSha = whole.digest('hex');
    const id = await createUpload(h, alice.headers, { path: '/big/movie.bin', sha256: expectedSha }, length);

    const first = openPatch(id, alice, 0, length);
    first.answer().catch(() => undefined); // the abort rejects it
    for (let i = 0; i < 20; i++) await first.write(chunkAt(i));
    await sleep(400);
    // While bytes flow, GET shows live progress ahead of the recorded offset.
    const live = (
      await request(h.app).get(`/api/v1/uploads/${id}`).set('Tus-Resumable', '1.0.0').set(alice.headers)
    ).body as UploadInfo;
    expect(live.offset).toBe(0);
    expect(live.receivedBytes).toBeGreaterThan(0);
    for (let i = 20; i < 50; i++) await first.write(chunkAt(i));
    await sleep(200);
    first.req.destroy();

    // The server records what arrived once it notices the abort.
    let offset = 0;
    for (let tries = 0; tries < 100 && offset === 0; tries++) {
      await sleep(50);
      offset = await head(id);
    }
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(50 * MiB);

    // Resume from the reported offset (retrying while the dying request still holds the lock).
    let answer: Answer | undefined;
    for (let tries = 0; tries < 50; tries++) {
      const current = await head(id);
      const resume = openPatch(id, alice, current, length - current);
      const firstChunk = Math.floor(current / MiB);
      await resume.write(chunkAt(firstChunk).subarray(current % MiB));
      for (let i = firstChunk + 1; i < chunks; i++) await resume.write(chunkAt(i));
      answer = await resume.end();
      if (answer.status !== 423) break;
      await sleep(100);
    }
    expect(answer?.status).toBe(204);
    expect(answer?.headers['upload-offset']).toBe(String(length));

    const info = await waitForUpload(h, alice.headers, id, 60_000);
    expect(info.status).toBe('ready');
    const big = (await childrenOf(h, alice.id)).find((n) => n.name === 'big');
    const file = (await childrenOf(h, alice.id, big?.id ?? null))[0];
    expect(file).toMatchObject({ name: 'movie.bin', sha256: expectedSha, size: length });
    const stored = createHash('sha256');
    for await (const chunk of await h.t.deps.blobs.read(expectedSha)) stored.update(chunk as Buffer);
    expect(stored.digest('hex')).toBe(expectedSha);
  }, 120_000);

  it('lets one of two concurrent PATCHes at the same offset win; the file holds exactly its bytes', async () => {
    const length = 8 * MiB;
    const bodyA = Buffer.concat(Array.from({ length: 8 }, (_, i) => chunkAt(1000 + i)));
    const bodyB = Buffer.concat(Array.from({ length: 8 }, (_, i) => chunkAt(2000 + i)));
    const id = await createUpload(h, alice.headers, { path: '/race.bin' }, length);

    const a = openPatch(id, alice, 0, length);
    await a.write(bodyA.subarray(0, MiB));
    await sleep(300); // A holds the upload now
    const b = openPatch(id, alice, 0, length);
    b.req.end(bodyB);
    const answerB = await b.answer();
    await a.write(bodyA.subarray(MiB));
    const answerA = await a.end();

    expect(answerA.status).toBe(204);
    expect([409, 423]).toContain(answerB.status);
    const info = await waitForUpload(h, alice.headers, id);
    expect(info.status).toBe('ready');
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'race.bin');
    expect(file?.sha256).toBe(sha256Of(bodyA));
    expect((await readBlob(h, sha256Of(bodyA))).equals(bodyA)).toBe(true);
  }, 60_000);

  it('notes every body byte for early collection: one collection per 1 MiB of a 12 MiB PATCH, and the file is exact', async () => {
    const memory = new CountingBodyMemory(MiB);
    h.t.deps.bodyMemory = memory;
    try {
      const body = Buffer.concat(Array.from({ length: 12 }, (_, i) => chunkAt(5000 + i)));
      const id = await createUpload(h, alice.headers, { path: '/collected.bin' }, body.length);
      const patch = openPatch(id, alice, 0, body.length);
      for (let i = 0; i < 12; i++) await patch.write(body.subarray(i * MiB, (i + 1) * MiB));
      expect((await patch.end()).status).toBe(204);
      expect(memory.receivedBytes).toBe(body.length);
      expect(memory.collections).toHaveLength(12);
      // Each collection came once another MiB had been handed on, not before.
      memory.collections.forEach((at, i) => expect(at).toBeGreaterThanOrEqual((i + 1) * MiB));
      const info = await waitForUpload(h, alice.headers, id);
      expect(info.status).toBe('ready');
      expect((await readBlob(h, sha256Of(body))).equals(body)).toBe(true);
    } finally {
      delete h.t.deps.bodyMemory;
    }
  }, 60_000);

  it('notes every byte a download sends, ranged or whole: one full collection per interval across responses', async () => {
    const body = Buffer.concat(Array.from({ length: 3 }, (_, i) => chunkAt(7000 + i)));
    const id = await createUpload(h, alice.headers, { path: '/sent.bin' }, body.length);
    const patch = openPatch(id, alice, 0, body.length);
    for (let i = 0; i < 3; i++) await patch.write(body.subarray(i * MiB, (i + 1) * MiB));
    expect((await patch.end()).status).toBe(204);
    const { fileId } = await waitForUpload(h, alice.headers, id);
    const memory = new CountingBodyMemory(MiB, 2 * MiB);
    h.t.deps.bodyMemory = memory;
    try {
      const content = `/api/v1/files/${fileId}/content`;
      for (let i = 0; i < 3; i++) {
        const part = await request(h.app)
          .get(content)
          .set(alice.headers)
          .set('Range', `bytes=${i * MiB}-${(i + 1) * MiB - 1}`)
          .buffer(true)
          .parse(binaryParser);
        expect(part.status).toBe(206);
        expect((part.body as Buffer).equals(body.subarray(i * MiB, (i + 1) * MiB))).toBe(true);
      }
      const whole = await request(h.app).head(content).set(alice.headers);
      expect(whole.status).toBe(200);
      expect(memory.sentBytes).toBe(3 * MiB); // a HEAD sends no body
      const again = await request(h.app).get(content).set(alice.headers).buffer(true).parse(binaryParser);
      expect((again.body as Buffer).equals(body)).toBe(true);
      expect(memory.sentBytes).toBe(6 * MiB);
      // Once per 2 MiB sent, counted across the four responses.
      expect(memory.compactions).toEqual([2 * MiB, 6 * MiB]);
    } finally {
      delete h.t.deps.bodyMemory;
    }
  }, 60_000);
});

const redisUrl = requireService('REDIS_URL');

describe.runIf(redisUrl !== undefined)('streaming uploads across two API instances sharing Redis', () => {
  it('refuses a PATCH on one instance while another instance is writing the same upload', async () => {
    const env = { REDIS_URL: redisUrl ?? '' };
    const one = await startHarness({ env });
    const two = await startHarness({ env, dataDir: one.t.dataDir, worker: false, relay: false });
    const serverOne = await listen(one.app);
    const serverTwo = await listen(two.app);
    try {
      const user = await createTestUser(one.t);
      const length = 4 * MiB;
      const bodyA = Buffer.concat(Array.from({ length: 4 }, (_, i) => chunkAt(3000 + i)));
      const bodyB = Buffer.concat(Array.from({ length: 4 }, (_, i) => chunkAt(4000 + i)));
      const id = await createUpload(one, user.headers, { path: '/shared.bin' }, length);

      const a = openPatch(id, user, 0, length, serverOne.url);
      await a.write(bodyA.subarray(0, MiB));
      await sleep(300);
      const b = openPatch(id, user, 0, length, serverTwo.url);
      b.req.end(bodyB);
      const answerB = await b.answer();
      await a.write(bodyA.subarray(MiB));
      const answerA = await a.end();

      expect(answerA.status).toBe(204);
      expect(answerB.status).toBe(423);
      const info = await waitForUpload(one, user.headers, id);
      expect(info.status).toBe('ready');
      const file = (await childrenOf(one, user.id)).find((n) => n.name === 'shared.bin');
      expect(file?.sha256).toBe(sha256Of(bodyA));
    } finally {
      await serverTwo.close();
      await serverOne.close();
      await two.close();
      await one.close();
    }
  }, 60_000);
});
