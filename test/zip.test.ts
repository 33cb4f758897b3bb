import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import type { Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { zipResultSchema } from '../contract/schemas/jobs.js';
import { ManualClock } from '../core/domain/clock.js';
import { PermanentJobError, PRIORITY, type Job } from '../core/ports/job-queue.js';
import { verifyDownload } from '../core/signed-url.js';
import { TrashPurge } from '../server/files/trash-purge.js';
import { fileDownloadHandler, ZIP_URL_TTL_MS } from '../worker/jobs/file-download.js';
import { createTestApp, createTestUser, type TestApp, type TestUser } from './helpers/app.js';
import { appWithJobRoutes, mkdir, waitFor, writeFile } from './jobs-app.js';

/** Extracts with the system unzip (Info-ZIP), else Python's zipfile module; says which ran. */
function extract(zipFile: string, into: string): 'unzip' | 'python' {
  const env = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  try {
    execFileSync('unzip', ['-q', zipFile, '-d', into], { env, stdio: 'pipe' });
    return 'unzip';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    execFileSync('python3', ['-m', 'zipfile', '-e', zipFile, into], { env, stdio: 'pipe' });
    return 'python';
  }
}

/** Every file and folder under `root`, as `/`-separated relative paths (folders end in `/`). */
async function listTree(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .map((e) => {
      const rel = path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/');
      return e.isDirectory() ? `${rel}/` : rel;
    })
    .sort();
}

/** The `file.download` job `POST /folders/zip` queued, as its first delivery. */
function zipJob(jobId: string, ownerId: string, folderId: string): Job {
  return {
    id: 'delivery-1',
    queue: 'file.download',
    payload: { jobId, ownerId, folderId },
    idempotencyKey: jobId,
    priority: PRIORITY.interactive,
    attempt: 1,
    publishedAt: new Date(),
  };
}

describe('folder zips (file.download)', () => {
  let t: TestApp;
  let app: Express;
  let alice: TestUser;
  let scratch: string;

  beforeEach(async () => {
    t = await createTestApp();
    app = appWithJobRoutes(t);
    alice = await createTestUser(t);
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-zip-test-'));
  });

  afterEach(async () => {
    await t.close();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  it('zips a nested folder with odd names so that unzip restores every byte inside the target dir', async () => {
    const project = await mkdir(t, alice.id, null, 'Project');
    const sub = await mkdir(t, alice.id, project.id, 'sub folder');
    const deep = await mkdir(t, alice.id, sub.id, 'deep');
    await mkdir(t, alice.id, project.id, 'empty');
    const outside = await mkdir(t, alice.id, null, 'Elsewhere');
    await writeFile(t, alice.id, outside.id, 'not-in-zip.txt', Buffer.from('outside'));

    const longName = `${'l'.repeat(240)}.txt`;
    // Decomposed input; the tree (and the zip) hold it composed (NFC).
    const unicode = 'Cafe\u0301 ünïcödé 日本語 🎉.txt';
    const files: Record<string, Buffer> = {
      'readme.txt': Buffer.from('hello zip\n'),
      '.hidden': Buffer.from('dotfile'),
      '..ab': Buffer.from('looks like a parent, is not'),
      'name with  spaces.txt': Buffer.from('spaces'),
      [unicode.normalize('NFC')]: Buffer.from('unicode'),
      [longName]: Buffer.from('long'),
      'C:drive.txt': Buffer.from('a drive letter is not a path here'),
      'sub folder/deep/random.bin': randomBytes(300_000),
      'sub folder/empty.txt': Buffer.alloc(0),
    };
    for (const [name, bytes] of Object.entries(files)) {
      const parent = name.startsWith('sub folder/deep/')
        ? deep
        : name.startsWith('sub folder/')
          ? sub
          : project;
      const leaf = name === unicode.normalize('NFC') ? unicode : (name.split('/').at(-1) as string);
      await writeFile(t, alice.id, parent.id, leaf, bytes);
    }
    const trashed = await writeFile(t, alice.id, project.id, 'trashed.txt', Buffer.from('gone'));
    await t.deps.metadata.trashNode(alice.id, trashed.id, t.deps.clock.now());

    const posted = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ path: '/Project' });
    expect(posted.status).toBe(202);
    const jobId = posted.body.jobId as string;

    const consumer = await t.deps.queue.consume('file.download', fileDownloadHandler(t.deps));
    const done = await waitFor('the zip job', async () => {
      const res = await request(app).get(`/api/v1/jobs/${jobId}`).set(alice.headers);
      return res.body.status === 'done' || res.body.status === 'failed' ? res.body : undefined;
    });
    await consumer.stop();
    expect(done.status).toBe('done');
    const result = zipResultSchema.parse(done.result);
    expect(result.name).toBe('Project.zip');
    expect(result.files).toBe(Object.keys(files).length);

    const token = result.url.slice('/api/v1/dl/'.length);
    const grant = verifyDownload(t.deps.jwtSecret, token, t.deps.clock.now());
    expect(grant).toMatchObject({ sha256: result.sha256, name: 'Project.zip', ownerId: alice.id });
    expect(grant.mediaType).toBe('application/zip');
    const hours = (grant.exp - t.deps.clock.now().getTime()) / 3_600_000;
    expect(hours).toBeGreaterThan(23.9);
    expect(hours).toBeLessThanOrEqual(24);

    const zipFile = path.join(scratch, 'download.zip');
    await pipeline(await t.deps.blobs.read(result.sha256), createWriteStream(zipFile));
    expect((await fs.stat(zipFile)).size).toBe(result.size);

    const jail = path.join(scratch, 'jail');
    const out = path.join(jail, 'out');
    await fs.mkdir(out, { recursive: true });
    const extractor = extract(zipFile, out);
    expect(await fs.readdir(jail)).toEqual(['out']);

    const expected = new Map(Object.entries(files));
    expected.delete('C:drive.txt');
    expected.set('C_drive.txt', files['C:drive.txt'] as Buffer);
    const tree = await listTree(out);
    expect(tree).toEqual(
      [...expected.keys(), 'empty/', 'sub folder/', 'sub folder/deep/'].map((p) => p.normalize('NFC')).sort(),
    );
    for (const [name, bytes] of expected) {
      expect(Buffer.compare(await fs.readFile(path.join(out, name)), bytes), name).toBe(0);
    }
    if (extractor === 'unzip') {
      // Python's zipfile does not restore modification times; Info-ZIP reads them back (UTC extra field).
      const stat = await fs.stat(path.join(out, 'readme.txt'));
      expect(stat.mtime.getTime()).toBe(Date.UTC(2024, 4, 17, 12, 30, 0));
    }

    const changes = await t.deps.metadata.listChanges(alice.id, 0, 1000);
    const notes = changes.filter((c) => c.kind === 'notify');
    expect(notes.map((c) => c.data)).toEqual([{ type: 'zip.ready', jobId }]);
  });

  it('returns at once for a redelivered job that is done, without a second zip or notification', async () => {
    const folder = await mkdir(t, alice.id, null, 'Once');
    await writeFile(t, alice.id, folder.id, 'a.txt', Buffer.from('a'));
    const { body } = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ id: folder.id });
    const handler = fileDownloadHandler(t.deps);
    const job = zipJob(body.jobId, alice.id, folder.id);
    await handler(job);
    const first = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers);
    expect(first.body.status).toBe('done');

    // The tree changes: a rebuilt zip would differ from the first.
    await writeFile(t, alice.id, folder.id, 'b.txt', Buffer.from('b'));
    await handler({ ...job, attempt: 2 });
    const second = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers);
    expect(second.body).toEqual(first.body);
    const notes = (await t.deps.metadata.listChanges(alice.id, 0, 1000)).filter((c) => c.kind === 'notify');
    expect(notes).toHaveLength(1);
  });

  it('fails the job for good, with a failed status, when the folder was trashed meanwhile', async () => {
    const folder = await mkdir(t, alice.id, null, 'Doomed');
    const { body } = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ id: folder.id });
    await t.deps.metadata.trashNode(alice.id, folder.id, t.deps.clock.now());

    const handler = fileDownloadHandler(t.deps);
    const job = zipJob(body.jobId, alice.id, folder.id);
    await expect(handler(job)).rejects.toBeInstanceOf(PermanentJobError);
    const status = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers);
    expect(status.body).toMatchObject({ status: 'failed', error: 'The folder no longer exists.' });
  });

  it("fails the job for good when a file's content is missing from storage, keeping no partial zip", async () => {
    const folder = await mkdir(t, alice.id, null, 'Broken');
    await writeFile(t, alice.id, folder.id, 'fine.txt', randomBytes(100_000));
    const lost = await writeFile(t, alice.id, folder.id, 'lost.txt', Buffer.from('this blob goes missing'));
    await t.deps.blobs.delete(lost.sha256 as string);
    const { body } = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ id: folder.id });

    const job = zipJob(body.jobId, alice.id, folder.id);
    await expect(fileDownloadHandler(t.deps)(job)).rejects.toBeInstanceOf(PermanentJobError);
    const status = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers);
    expect(status.body).toMatchObject({
      status: 'failed',
      error: "A file's content is missing from storage.",
    });
    // No temp file is left in tmp/ or its shard folders.
    const left = await fs.readdir(path.join(t.deps.config.storageDir, 'tmp'), {
      recursive: true,
      withFileTypes: true,
    });
    expect(left.filter((e) => e.isFile()).map((e) => e.name)).toEqual([]);
  });

  it('zips the whole namespace for the path / and names the zip files.zip', async () => {
    await writeFile(t, alice.id, null, 'top.txt', Buffer.from('top'));
    const docs = await mkdir(t, alice.id, null, 'Docs');
    await writeFile(t, alice.id, docs.id, 'inner.txt', Buffer.from('inner'));
    const { body } = await request(app).post('/api/v1/folders/zip').set(alice.headers).send({ path: '/' });

    const consumer = await t.deps.queue.consume('file.download', fileDownloadHandler(t.deps));
    const done = await waitFor('the zip job', async () => {
      const res = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers);
      return res.body.status === 'done' ? res.body : undefined;
    });
    await consumer.stop();
    const result = zipResultSchema.parse(done.result);
    expect(result.name).toBe('files.zip');

    const zipFile = path.join(scratch, 'all.zip');
    await pipeline(await t.deps.blobs.read(result.sha256), createWriteStream(zipFile));
    const out = path.join(scratch, 'all');
    await fs.mkdir(out);
    extract(zipFile, out);
    expect(await listTree(out)).toEqual(['Docs/', 'Docs/inner.txt', 'top.txt']);
  });
});

describe('a zip blob while its URL is valid, and after', () => {
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  let t: TestApp;
  let app: Express;
  let alice: TestUser;

  beforeEach(async () => {
    t = await createTestApp({ clock });
    app = appWithJobRoutes(t);
    alice = await createTestUser(t);
  });

  afterEach(async () => {
    await t.close();
  });

  async function zipOf(folderName: string): Promise<{ sha256: string; bytes: Buffer }> {
    const folder = await mkdir(t, alice.id, null, folderName);
    await writeFile(t, alice.id, folder.id, 'a.txt', randomBytes(1000));
    const { body } = await request(app)
      .post('/api/v1/folders/zip')
      .set(alice.headers)
      .send({ id: folder.id });
    await fileDownloadHandler(t.deps)(zipJob(body.jobId, alice.id, folder.id));
    const status = await request(app).get(`/api/v1/jobs/${body.jobId}`).set(alice.headers).expect(200);
    const { sha256 } = zipResultSchema.parse(status.body.result);
    const chunks: Buffer[] = [];
    for await (const chunk of await t.deps.blobs.read(sha256)) chunks.push(chunk as Buffer);
    return { sha256, bytes: Buffer.concat(chunks) };
  }

  it('survives the purge of a file with the same bytes, and is deleted by the sweep once its URL expired', async () => {
    const zip = await zipOf('Kept');
    // The user downloads the zip, uploads it back, then deletes that copy for good.
    const copy = await writeFile(t, alice.id, null, 'Kept.zip', zip.bytes);
    expect(copy.sha256).toBe(zip.sha256);
    await request(app).post('/api/v1/fs/delete').set(alice.headers).send({ path: '/Kept.zip' }).expect(200);
    await request(app).delete(`/api/v1/trash/${copy.id}`).set(alice.headers).expect(204);
    expect(await t.deps.blobs.stat(zip.sha256)).not.toBeNull();

    const purge = new TrashPurge({ ...t.deps });
    clock.advance(ZIP_URL_TTL_MS - 1);
    expect(await purge.runOnce()).toMatchObject({ keepsExpired: 0 });
    expect(await t.deps.blobs.stat(zip.sha256)).not.toBeNull();
    clock.advance(1);
    expect(await purge.runOnce()).toEqual({ purged: 0, blobsDeleted: 1, keepsExpired: 1 });
    expect(await t.deps.blobs.stat(zip.sha256)).toBeNull();
    expect(await t.deps.metadata.listExpiredBlobKeeps(clock.now(), 10)).toEqual([]);
  });

  it('leaves an expired zip whose bytes a file still references', async () => {
    const zip = await zipOf('Shared');
    await writeFile(t, alice.id, null, 'Shared.zip', zip.bytes);
    clock.advance(ZIP_URL_TTL_MS);
    expect(await new TrashPurge({ ...t.deps }).runOnce()).toEqual({
      purged: 0,
      blobsDeleted: 0,
      keepsExpired: 1,
    });
    expect(await t.deps.blobs.stat(zip.sha256)).not.toBeNull();
  });
});
