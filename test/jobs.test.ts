import type { Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '../core/ports/job-queue.js';
import { PRIORITY } from '../core/ports/job-queue.js';
import { API_TOKEN_PREFIX, hashSecret, newSecret } from '../server/auth/secrets.js';
import { createTestApp, createTestUser, type TestApp, type TestUser } from './helpers/app.js';
import { appWithJobRoutes, mkdir, waitFor, writeFile } from './jobs-app.js';

describe('job status and folder zip requests', () => {
  let t: TestApp;
  let app: Express;
  let alice: TestUser;
  let bob: TestUser;

  beforeEach(async () => {
    t = await createTestApp();
    app = appWithJobRoutes(t);
    alice = await createTestUser(t);
    bob = await createTestUser(t);
  });

  afterEach(async () => {
    await t.close();
  });

  it('answers 202 with a job id, a Location and a queued status, and publishes one interactive file.download job', async () => {
    const folder = await mkdir(t, alice.id, null, 'Photos');
    const res = await request(app).post('/api/v1/folders/zip').set(alice.headers).send({ path: '/Photos' });
    expect(res.status).toBe(202);
    const jobId = res.body.jobId as string;
    expect(res.headers.location).toBe(`/api/v1/jobs/${jobId}`);

    const status = await request(app).get(`/api/v1/jobs/${jobId}`).set(alice.headers);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      id: jobId,
      ownerId: alice.id,
      type: 'file.download',
      status: 'queued',
    });

    const seen: Job[] = [];
    const consumer = await t.deps.queue.consume('file.download', async (job) => {
      seen.push(job);
    });
    await waitFor('the published job', async () => (seen.length > 0 ? true : undefined));
    await consumer.stop();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      queue: 'file.download',
      idempotencyKey: jobId,
      priority: PRIORITY.interactive,
      payload: { jobId, ownerId: alice.id, folderId: folder.id },
    });
  });

  it('accepts the folder by id as well as by path', async () => {
    const folder = await mkdir(t, alice.id, null, 'Docs');
    const res = await request(app).post('/api/v1/folders/zip').set(alice.headers).send({ id: folder.id });
    expect(res.status).toBe(202);
  });

  it("answers 404 for another user's job id and leaves the owner's status as it was", async () => {
    await mkdir(t, alice.id, null, 'Mine');
    const { body } = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ path: '/Mine' });
    const before = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers);

    const foreign = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(bob.headers);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('NOT_FOUND');

    const after = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers);
    expect(after.body).toEqual(before.body);
  });

  it('answers 404 for an unknown job id, the same as for a foreign one', async () => {
    const res = await request(app)
      .get('/api/v1/jobs/3f6c1c8e-0000-4000-8000-000000000000')
      .set(alice.headers);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it("answers 404 for a zip of another user's folder, by id or by path, and queues nothing", async () => {
    const secret = await mkdir(t, alice.id, null, 'Secret');
    await writeFile(t, alice.id, secret.id, 'plans.txt', Buffer.from('world domination'));

    const byId = await request(app).post('/api/v1/folders/zip').set(bob.headers).send({ id: secret.id });
    expect(byId.status).toBe(404);
    const byPath = await request(app).post('/api/v1/folders/zip').set(bob.headers).send({ path: '/Secret' });
    expect(byPath.status).toBe(404);

    const depth = await t.deps.queue.depth('file.download');
    expect(depth.ready + depth.delayed + depth.inFlight).toBe(0);
  });

  it('answers 404 for a trashed folder and 409 for a file', async () => {
    const old = await mkdir(t, alice.id, null, 'Old');
    await t.deps.metadata.trashNode(alice.id, old.id, t.deps.clock.now());
    const trashed = await request(app).post('/api/v1/folders/zip').set(alice.headers).send({ id: old.id });
    expect(trashed.status).toBe(404);

    await writeFile(t, alice.id, null, 'note.txt', Buffer.from('hi'));
    const file = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ path: '/note.txt' });
    expect(file.status).toBe(409);
    expect(file.body.error.code).toBe('CONFLICT');
  });

  it('refuses a body with both path and id, with neither, or with a traversal path', async () => {
    const both = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ path: '/a', id: 'x' });
    expect(both.status).toBe(400);
    const neither = await request(app).post('/api/v1/folders/zip').set(alice.headers).send({});
    expect(neither.status).toBe(400);
    const dots = await request(app).post('/api/v1/folders/zip').set(alice.headers).send({ path: '/a/../b' });
    expect(dots.status).toBe(400);
    expect(dots.body.error.code).toBe('INVALID_PATH');
  });

  it('needs authentication, and an API token needs the read scope', async () => {
    const anonymous = await request(app).get('/api/v1/jobs/whatever');
    expect(anonymous.status).toBe(401);

    const secret = newSecret(API_TOKEN_PREFIX);
    await t.deps.metadata.createApiToken({
      userId: alice.id,
      name: 'ci',
      prefix: secret.slice(0, 10),
      tokenHash: hashSecret(secret),
      scopes: ['write'],
      expiresAt: null,
    });
    const writeOnly = await request(app)
      .post('/api/v1/folders/zip')
      .set('Authorization', `Bearer ${secret}`)
      .send({ path: '/' });
    expect(writeOnly.status).toBe(403);
    expect(writeOnly.body.error.code).toBe('INSUFFICIENT_SCOPE');
  });
});
