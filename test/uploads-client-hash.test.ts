/**
 * The tus client's hashed uploads (`sendRest` with `hashWhole`), against a real server and
 * worker: a big file is hashed on a worker thread while it is sent, through a few reused
 * chunk buffers of shared memory; a small one inline. Either way the trailer states the
 * whole file's sha256, also when the upload resumes after bytes sent earlier (they are
 * read and hashed first), and the server confirms it before anything is committed.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpload, sendRest, waitForUpload } from '../contract/tus-client.js';
import { createTestUser, type TestUser } from './helpers/app.js';
import { serveForUser, type Served } from './helpers/serve.js';
import { startHarness, type UploadHarness } from './uploads-harness.js';

const MiB = 1024 * 1024;
let h: UploadHarness;
let user: TestUser;
let served: Served;
let dir: string;

beforeAll(async () => {
  h = await startHarness();
  user = await createTestUser(h.t);
  served = await serveForUser(h.app, user);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-client-hash-'));
});
afterAll(async () => {
  await served?.close();
  await h?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Sends `bytes` as `remote`, the first `sentBefore` of them in an earlier PATCH. */
async function upload(remote: string, bytes: Buffer, sentBefore: number): Promise<string | null> {
  const file = path.join(dir, path.basename(remote));
  fs.writeFileSync(file, bytes);
  const created = await createUpload(served.client, {
    path: remote,
    size: bytes.length,
    mtimeMs: Date.now(),
  });
  if (sentBefore > 0) {
    // An earlier attempt that got this far (its PATCH carried no trailer).
    const first = await sendRest(served.client, created.url, file, 0, sentBefore);
    expect(first.offset).toBe(sentBefore);
  }
  const sent = await sendRest(served.client, created.url, file, sentBefore, bytes.length, {
    hashWhole: true,
  });
  expect(sent.offset).toBe(bytes.length);
  const id = new URL(created.url).pathname.split('/').pop() as string;
  const view = await waitForUpload(served.client, id);
  expect(view.status).toBe('ready');
  return sent.sha256;
}

describe('hashed uploads from the tus client', () => {
  it.each([
    ['big, hashed on a thread', 40 * MiB + 12_345, 0],
    ['big, resumed after 5 MiB and a bit', 40 * MiB + 12_345, 5 * MiB + 77],
    ['small, hashed inline, resumed', 3 * MiB + 5, MiB],
  ])('states and has confirmed the whole sha256 (%s)', async (name, size, sentBefore) => {
    const bytes = randomBytes(size);
    const remote = `/client-hash/${name.replace(/[^a-z0-9]+/g, '-')}.bin`;
    expect(await upload(remote, bytes, sentBefore)).toBe(sha(bytes));
  });

  it('keeps no chunk of an upload it is done with (a 320 MiB upload without a trailer)', async () => {
    // Each chunk of an unhashed upload is a fresh buffer: once written it must be garbage.
    // (A Promise.race against the request's 'close' once kept every chunk until the end.)
    const size = 320 * MiB;
    const file = path.join(dir, 'plain.bin');
    const handle = fs.openSync(file, 'w');
    const block = randomBytes(MiB);
    for (let i = 0; i < size / MiB; i++) fs.writeSync(handle, block);
    fs.closeSync(handle);
    const created = await createUpload(served.client, {
      path: '/client-hash/plain.bin',
      size,
      mtimeMs: Date.now(),
    });
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sent = await sendRest(served.client, created.url, file, 0, size, {
      onProgress: () => {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
      },
    });
    expect(sent.offset).toBe(size);
    expect(peak).toBeLessThan(200 * MiB);
  }, 60_000);
});
