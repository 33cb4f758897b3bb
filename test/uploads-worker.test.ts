/**
 * The background half of uploads: the file.upload handler under redelivery and
 * crashes (faults injected into the real store), expiry, and the outbox relay.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/domain/clock.js';
import type { MetadataStore } from '../core/ports/metadata-store.js';
import { signAccessToken } from '../server/auth/access-token.js';
import { hashSecret, newSecret } from '../server/auth/secrets.js';
import { kickOutboxRelay, OutboxRelay } from '../server/outbox-relay.js';
import { UploadExpiry } from '../server/upload-expiry.js';
import type { WorkerDeps } from '../worker/deps.js';
import { fileUploadHandler } from '../worker/jobs/file-upload.js';
import { startWorker } from '../worker/runtime.js';
import { createTestUser, type TestApp, type TestUser } from './helpers/app.js';
import {
  OCTET,
  TUS,
  childrenOf,
  createUpload,
  sha256Of,
  startHarness,
  waitForUpload,
  type UploadHarness,
} from './uploads-harness.js';

let h: UploadHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** The real store, except that `method` throws (a crash at that point) the first `times` calls matching `when`. */
function crashing<K extends keyof MetadataStore>(
  store: MetadataStore,
  method: K,
  when: (...args: Parameters<MetadataStore[K]>) => boolean,
  times = 1,
): MetadataStore & { crashes: number } {
  let crashes = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'crashes') return crashes;
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (prop !== method) return value.bind(target);
      return (...args: Parameters<MetadataStore[K]>) => {
        if (crashes < times && when(...args)) {
          crashes += 1;
          throw new Error(`simulated crash in ${String(method)}`);
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as MetadataStore & { crashes: number };
}

async function uploadWithBody(
  user: TestUser,
  pairs: Record<string, string | number>,
  body: Buffer,
): Promise<string> {
  if (!h) throw new Error('no harness');
  return createUpload(h, user.headers, pairs, body.length, body);
}

async function startFaultyWorker(metadata: MetadataStore) {
  if (!h) throw new Error('no harness');
  const deps: WorkerDeps = { ...h.t.deps, metadata };
  return startWorker(deps, { 'file.upload': fileUploadHandler(deps) }, { concurrency: 1, maxAttempts: 5 });
}

describe('file.upload handler', () => {
  it('yields one revision when the job is delivered again after the commit (crash before the ack)', async () => {
    h = await startHarness({ worker: false });
    const alice = await createTestUser(h.t);
    // The first call after the commit (announcing the change) dies: the job is not acked.
    const store = crashing(h.t.deps.metadata, 'latestChangeSeq', () => true);
    const worker = await startFaultyWorker(store);
    try {
      const body = Buffer.from('committed once, delivered twice');
      const id = await uploadWithBody(alice, { path: '/twice.txt' }, body);
      const info = await waitForUpload(h, alice.headers, id);
      expect(store.crashes).toBe(1);
      expect(info.status).toBe('ready');
      const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'twice.txt');
      expect(file).toMatchObject({ revision: 1, sha256: sha256Of(body), id: info.fileId });
      expect(await h.t.deps.metadata.listRevisions(alice.id, file?.id ?? '')).toHaveLength(1);

      // A plain redelivery of the finished job changes nothing either.
      await h.t.deps.queue.publish({ queue: 'file.upload', payload: { uploadId: id }, idempotencyKey: id });
      for (let i = 0; i < 100; i++) {
        const depth = await h.t.deps.queue.depth('file.upload');
        if (depth.ready + depth.inFlight + depth.delayed === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await h.t.deps.metadata.listRevisions(alice.id, file?.id ?? '')).toHaveLength(1);
      expect((await h.t.deps.metadata.getUserById(alice.id))?.storageUsed).toBe(body.length);
    } finally {
      await worker.stop();
    }
  });

  for (const declared of [false, true]) {
    it(`finishes after a crash between moving the bytes and committing the file (sha256 ${declared ? 'declared' : 'computed'})`, async () => {
      h = await startHarness({ worker: false });
      const alice = await createTestUser(h.t);
      const store = crashing(h.t.deps.metadata, 'commitUploads', () => true);
      const worker = await startFaultyWorker(store);
      try {
        const body = Buffer.from(`moved but not committed (${String(declared)})`);
        const pairs: Record<string, string> = { path: '/crash.txt' };
        if (declared) pairs.sha256 = sha256Of(body);
        const id = await uploadWithBody(alice, pairs, body);
        const info = await waitForUpload(h, alice.headers, id);
        expect(store.crashes).toBe(1);
        expect(info).toMatchObject({ status: 'ready', error: null });
        expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
        const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'crash.txt');
        expect(file).toMatchObject({ sha256: sha256Of(body), size: body.length });
        expect(await h.t.deps.metadata.listRevisions(alice.id, file?.id ?? '')).toHaveLength(1);
      } finally {
        await worker.stop();
      }
    });
  }

  it('queues a transcode for a video, keyed by its sha256', async () => {
    h = await startHarness();
    const alice = await createTestUser(h.t);
    // An MP4 header: a 24-byte ftyp box, then an empty mdat box.
    const mp4 = Buffer.concat([
      Buffer.from('00000018667479706d703432000000006d70343269736f6d', 'hex'),
      Buffer.from('000000086d646174', 'hex'),
    ]);
    const id = await uploadWithBody(alice, { path: '/clip.mp4' }, mp4);
    const info = await waitForUpload(h, alice.headers, id);
    expect(info.status).toBe('ready');
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'clip.mp4');
    expect(file?.mediaType).toBe('video/mp4');
    expect((await h.t.deps.queue.depth('video.transcode')).ready).toBe(1);
  });

  it('types random bytes with two MPEG-TS sync bytes by name, and queues no transcode', async () => {
    h = await startHarness();
    const alice = await createTestUser(h.t);
    // file-type alone calls this video/mp2t (0x47 at 0 and 188): one random file in ~33,000.
    const bytes = Buffer.alloc(4096, 0x11);
    bytes[0] = 0x47;
    bytes[188] = 0x47;
    const id = await uploadWithBody(alice, { path: '/noise.bin' }, bytes);
    expect((await waitForUpload(h, alice.headers, id)).status).toBe('ready');
    const file = (await childrenOf(h, alice.id)).find((n) => n.name === 'noise.bin');
    expect(file?.mediaType).toBe('application/octet-stream');
    expect((await h.t.deps.queue.depth('video.transcode')).ready).toBe(0);
  });
});

/** A new session for an existing user, signed at the clock's current time. */
async function freshHeaders(t: TestApp, userId: string): Promise<Record<string, string>> {
  const now = t.deps.clock.now();
  const user = await t.deps.metadata.getUserById(userId);
  const session = await t.deps.metadata.createRefreshSession({
    userId,
    tokenHash: hashSecret(newSecret('aior_')),
    expiresAt: new Date(now.getTime() + 86_400_000),
    ip: null,
    userAgent: null,
  });
  const { token } = await signAccessToken(
    t.deps.jwtSecret,
    { userId, familyId: session.familyId, tokenVersion: user?.tokenVersion ?? 0 },
    now,
  );
  return { Authorization: `Bearer ${token}` };
}

describe('upload expiry', () => {
  it('expires unfinished uploads after 24 hours and deletes their staging bytes', async () => {
    const clock = new ManualClock(Date.now());
    h = await startHarness({ clock, worker: false, relay: false });
    const alice = await createTestUser(h.t);
    const stale = await createUpload(h, alice.headers, { path: '/stale.bin' }, 10);
    await request(h.app)
      .patch(`/api/v1/uploads/${stale}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(Buffer.from('12345'))
      .expect(204);
    const expiry = new UploadExpiry(h.t.deps);
    expect(await expiry.sweep()).toBe(0);

    clock.advance(24 * 60 * 60 * 1000 + 1000);
    const headers = await freshHeaders(h.t, alice.id);
    const recent = await createUpload(h, headers, { path: '/recent.bin' }, 10);
    // Past its expiry the upload is gone for clients even before the sweep.
    expect((await request(h.app).head(`/api/v1/uploads/${stale}`).set(TUS).set(headers)).status).toBe(410);

    expect(await expiry.sweep()).toBe(1);
    expect(await h.t.deps.blobs.stagingSize(stale)).toBeNull();
    expect((await h.t.deps.metadata.getUploadById(stale))?.status).toBe('expired');
    expect((await h.t.deps.metadata.getUploadById(recent))?.status).toBe('receiving');
    const patch = await request(h.app)
      .patch(`/api/v1/uploads/${stale}`)
      .set(TUS)
      .set(headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '5')
      .send(Buffer.from('67890'));
    expect(patch.status).toBe(410);
    expect(await expiry.sweep()).toBe(0);
  });
});

describe('outbox relay', () => {
  it('publishes outbox entries to their queues and deletes them, keeping entries for unknown queues', async () => {
    h = await startHarness({ worker: false, relay: false });
    const { metadata, queue } = h.t.deps;
    await metadata.addOutbox({
      queue: 'file.download',
      payload: { n: 1 },
      idempotencyKey: 'k1',
      priority: 5,
    });
    await metadata.addOutbox({
      queue: 'file.download',
      payload: { n: 2 },
      idempotencyKey: 'k2',
      priority: 1,
    });
    await metadata.addOutbox({ queue: 'no.such.queue', payload: {}, idempotencyKey: 'k3', priority: 5 });
    const relay = new OutboxRelay(h.t.deps, { intervalMs: 60_000 });
    expect(await relay.drain()).toBe(2);
    expect((await queue.depth('file.download')).ready).toBe(2);
    expect((await metadata.listOutbox(10)).map((e) => e.queue)).toEqual(['no.such.queue']);
  });

  it('keeps an entry whose publish failed and deletes the others of its round, then reports the failure', async () => {
    h = await startHarness({ worker: false, relay: false });
    const { metadata, queue } = h.t.deps;
    for (const n of [1, 2, 3]) {
      await metadata.addOutbox({
        queue: 'file.download',
        payload: { n },
        idempotencyKey: `f${n}`,
        priority: 5,
      });
    }
    // The real queue, refusing one job (as a broker that is going away would).
    const refusing: typeof queue = Object.create(queue) as typeof queue;
    refusing.publish = async (spec) => {
      if (spec.idempotencyKey === 'f2') throw new Error('broker went away');
      return queue.publish(spec);
    };
    const relay = new OutboxRelay({ ...h.t.deps, queue: refusing }, { intervalMs: 60_000 });
    await expect(relay.drain()).rejects.toThrow('broker went away');
    expect((await queue.depth('file.download')).ready).toBe(2);
    expect((await metadata.listOutbox(10)).map((e) => e.idempotencyKey)).toEqual(['f2']);
    // The next round relays it.
    expect(await new OutboxRelay(h.t.deps, { intervalMs: 60_000 }).drain()).toBe(1);
    expect(await metadata.listOutbox(10)).toEqual([]);
    expect((await queue.depth('file.download')).ready).toBe(3);
  });

  it('relays at once when kicked, long before its next poll', async () => {
    h = await startHarness({ worker: false, relay: false });
    const { metadata, queue, cache } = h.t.deps;
    const relay = new OutboxRelay(h.t.deps, { intervalMs: 60_000 });
    await relay.start();
    try {
      await metadata.addOutbox({
        queue: 'file.upload',
        payload: { uploadId: 'x' },
        idempotencyKey: 'x',
        priority: 5,
      });
      await kickOutboxRelay(cache);
      const started = Date.now();
      while ((await metadata.listOutbox(10)).length > 0 && Date.now() - started < 5000) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await metadata.listOutbox(10)).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await queue.depth('file.upload')).ready).toBe(1);
    } finally {
      await relay.stop();
    }
  });

  it('carries a finished upload to the worker through the outbox', async () => {
    h = await startHarness();
    const alice = await createTestUser(h.t);
    const id = await createUpload(h, alice.headers, { path: '/via-outbox.txt', priority: 'bulk' }, 3);
    await request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(alice.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', '0')
      .send(Buffer.from('abc'))
      .expect(204);
    expect((await waitForUpload(h, alice.headers, id)).status).toBe('ready');
    expect(await h.t.deps.metadata.listOutbox(10)).toEqual([]);
  });
});
