/**
 * Blobs are shared by content, so deleting one whose last reference went must never
 * take bytes that another upload is about to reference (core/blob-holds.ts). Real
 * store, blob store and worker; the interleavings are set up by holding or claiming a
 * blob as the other party would at that moment.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { deleteBlobIfUnreferenced, holdBlobs, releaseBlobs, uploadHolder } from '../core/blob-holds.js';
import { deleteUnreferencedBlobs } from '../server/files/blob-gc.js';
import { fileUploadHandler } from '../worker/jobs/file-upload.js';
import { startWorker } from '../worker/runtime.js';
import { putFile } from './fs-helpers.js';
import { createTestUser } from './helpers/app.js';
import {
  createUpload,
  readBlob,
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

/**
 * An upload of `body` to `/taken.txt` that must not exist (`baseRevision` 0), while the
 * worker is stopped; then the name is taken, so the worker's commit is refused and it
 * cleans up the blob it had moved the bytes into.
 */
async function refusedUpload(harness: UploadHarness, body: Buffer): Promise<void> {
  const alice = await createTestUser(harness.t);
  const pairs = { path: '/taken.txt', baseRevision: 0 };
  const id = await createUpload(harness, alice.headers, pairs, body.length, body);
  await putFile(harness.t, alice, '/taken.txt', 'someone was faster');
  const worker = await startWorker(
    harness.t.deps,
    { 'file.upload': fileUploadHandler(harness.t.deps) },
    { concurrency: 1 },
  );
  try {
    const info = await waitForUpload(harness, alice.headers, id);
    expect(info).toMatchObject({ status: 'failed', error: 'REVISION_CONFLICT' });
  } finally {
    await worker.stop();
  }
}

/** Trashes the node and purges it for good, as the trash route does; returns the blobs it dropped. */
async function purge(harness: UploadHarness, ownerId: string, nodeId: string): Promise<string[]> {
  await harness.t.deps.metadata.trashNode(ownerId, nodeId, new Date());
  return (await harness.t.deps.metadata.purgeNode(ownerId, nodeId)).droppedBlobs;
}

describe('blob holds', () => {
  it('a refused upload deletes the blob it made when nobody else needs it', async () => {
    h = await startHarness({ worker: false });
    const body = Buffer.from('bytes of a refused upload');
    await refusedUpload(h, body);
    expect(await h.t.deps.blobs.stat(sha256Of(body))).toBeNull();
  });

  it('a refused upload spares the blob while another upload of the same bytes holds it', async () => {
    h = await startHarness({ worker: false });
    const body = Buffer.from('the same bytes, uploaded twice at once');
    const sha256 = sha256Of(body);
    // The other upload has moved its bytes into the same blob and not committed yet.
    await holdBlobs(h.t.deps, uploadHolder('the-other-upload'), [sha256]);
    await refusedUpload(h, body);
    expect(await h.t.deps.blobs.stat(sha256)).not.toBeNull();

    // The other upload commits its reference, releases, and the bytes are all there.
    const bob = await createTestUser(h.t);
    await putFile(h.t, bob, '/mine.txt', body);
    await releaseBlobs(h.t.deps, uploadHolder('the-other-upload'));
    expect(await deleteBlobIfUnreferenced(h.t.deps, sha256)).toBe(false);
    expect(await readBlob(h, sha256)).toEqual(body);
  });

  it('a purge spares a blob that a deduplicating upload holds', async () => {
    h = await startHarness({ worker: false });
    const alice = await createTestUser(h.t);
    const body = Buffer.from('content that is purged and deduplicated at the same time');
    const sha256 = sha256Of(body);
    const source = await putFile(h.t, alice, '/source.txt', body);
    // A deduplicating upload found the source and holds its blob before it commits.
    await holdBlobs(h.t.deps, uploadHolder('dedup'), [sha256]);
    const droppedBlobs = await purge(h, alice.id, source.id);
    expect(droppedBlobs).toEqual([sha256]);
    expect(await deleteUnreferencedBlobs(h.t.deps, droppedBlobs)).toBe(0);
    expect(await readBlob(h, sha256)).toEqual(body);
    await releaseBlobs(h.t.deps, uploadHolder('dedup'));
    // Nobody committed a reference after all: now it goes.
    expect(await deleteUnreferencedBlobs(h.t.deps, droppedBlobs)).toBe(1);
    expect(await h.t.deps.blobs.stat(sha256)).toBeNull();
  });

  it('a deduplicating upload waits for a deletion in progress, then asks for the bytes', async () => {
    h = await startHarness({ worker: false });
    const alice = await createTestUser(h.t);
    const body = Buffer.from('deleted while an upload looks for it');
    const sha256 = sha256Of(body);
    const file = await putFile(h.t, alice, '/gone.txt', body);
    const droppedBlobs = await purge(h, alice.id, file.id);
    expect(droppedBlobs).toEqual([sha256]);
    // The deleter has claimed the blob and not deleted it yet.
    const now = new Date();
    expect(
      await h.t.deps.metadata.claimBlobDeletion('deleter', sha256, now, new Date(now.getTime() + 60_000)),
    ).toBe(true);
    const started = Date.now();
    let held = 0;
    const holding = holdBlobs(h.t.deps, uploadHolder('late'), [sha256]).then(() => {
      held = Date.now();
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(held).toBe(0);
    await h.t.deps.blobs.delete(sha256);
    await releaseBlobs(h.t.deps, 'deleter');
    await holding;
    expect(held - started).toBeGreaterThanOrEqual(200);
    // Holding it now, the upload finds no blob: it must be given the bytes.
    expect(await h.t.deps.blobs.stat(sha256)).toBeNull();
    await releaseBlobs(h.t.deps, uploadHolder('late'));
  });

  it('a copy checks, under its hold, that the blobs it references are there', async () => {
    h = await startHarness({ worker: false });
    const alice = await createTestUser(h.t);
    const kept = Buffer.from('a blob that stays');
    const lost = Buffer.from('a blob deleted behind the store');
    await putFile(h.t, alice, '/Album/kept.txt', kept);
    await putFile(h.t, alice, '/Album/lost.txt', lost);
    const copy = (from: string, to: string) =>
      request(h!.app).post('/api/v1/fs/copy').set(alice.headers).send({ from, to });
    expect((await copy('/Album', '/Copy')).status).toBe(201);
    // The state a deletion finishing between the copy's read and its commit would leave.
    await h.t.deps.blobs.delete(sha256Of(lost));
    const res = await copy('/Album/lost.txt', '/lost-copy.txt');
    expect(res.status).toBe(410);
    expect(res.body).toMatchObject({ error: { code: 'GONE' } });
    expect(await h.t.deps.metadata.findChild(alice.id, null, 'lost-copy.txt')).toBeNull();
    expect((await copy('/Album/kept.txt', '/kept-copy.txt')).status).toBe(201);
    // Nothing stays held after the copies: once no revision references it, it can go.
    for (const name of ['Album', 'Copy', 'kept-copy.txt']) {
      const node = await h.t.deps.metadata.findChild(alice.id, null, name);
      await purge(h, alice.id, node!.id);
    }
    expect(await deleteBlobIfUnreferenced(h.t.deps, sha256Of(kept))).toBe(true);
  });
});
