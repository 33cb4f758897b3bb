/**
 * An upload whose bytes all arrive in one request is hashed on the way to disk, and the
 * job tells the worker so (it need not read the file back); a resumed upload is not.
 */
import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, createTestUser, type TestApp, type TestUser } from './helpers/app.js';

let t: TestApp;
let user: TestUser;

beforeEach(async () => {
  t = await createTestApp();
  user = await createTestUser(t);
});
afterEach(async () => {
  await t.close();
});

function meta(path: string): string {
  return `path ${Buffer.from(path).toString('base64')}`;
}

async function create(path: string, length: number): Promise<string> {
  const res = await request(t.app)
    .post('/api/v1/uploads')
    .set(user.headers)
    .set('Tus-Resumable', '1.0.0')
    .set('Upload-Length', String(length))
    .set('Upload-Metadata', meta(path));
  expect(res.status).toBe(201);
  return res.headers.location as string;
}

async function patch(location: string, offset: number, body: Buffer): Promise<void> {
  const res = await request(t.app)
    .patch(location)
    .set(user.headers)
    .set('Tus-Resumable', '1.0.0')
    .set('Upload-Offset', String(offset))
    .set('Content-Type', 'application/offset+octet-stream')
    .send(body);
  expect(res.status).toBe(204);
}

async function jobPayload(uploadId: string): Promise<Record<string, unknown> | undefined> {
  return (await t.deps.metadata.listOutbox(100)).find((e) => e.idempotencyKey === uploadId)?.payload;
}

describe('the sha256 of an upload received in one request', () => {
  it('is computed while writing and handed to the worker in the job', async () => {
    const bytes = randomBytes(300_000);
    const location = await create('/one-go.bin', bytes.length);
    await patch(location, 0, bytes);
    const id = location.split('/').pop() as string;
    expect(await jobPayload(id)).toEqual({
      uploadId: id,
      receivedSha256: createHash('sha256').update(bytes).digest('hex'),
    });
  });

  it('is left to the worker when the bytes came in several requests', async () => {
    const bytes = randomBytes(300_000);
    const location = await create('/two-goes.bin', bytes.length);
    await patch(location, 0, bytes.subarray(0, 100_000));
    await patch(location, 100_000, bytes.subarray(100_000));
    const id = location.split('/').pop() as string;
    expect(await jobPayload(id)).toEqual({ uploadId: id });
  });
});
