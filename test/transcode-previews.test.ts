import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRIORITY, type Job } from '../core/ports/job-queue.js';
import { verifyDownload } from '../core/signed-url.js';
import { videoTranscodeHandler } from '../worker/jobs/video-transcode.js';
import { createTestApp, createTestUser, type TestApp, type TestUser } from './helpers/app.js';
import { appWithJobRoutes, waitFor, writeFile } from './jobs-app.js';

const hasFfmpeg = spawnSync('ffmpeg', ['-hide_banner', '-version'], { stdio: 'ignore' }).status === 0;

describe('video poster and preview URLs', () => {
  let t: TestApp;
  let app: Express;
  let alice: TestUser;
  let bob: TestUser;
  let scratch: string;

  beforeEach(async () => {
    t = await createTestApp();
    app = appWithJobRoutes(t);
    alice = await createTestUser(t);
    bob = await createTestUser(t);
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-preview-test-'));
  });

  afterEach(async () => {
    await t.close();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  async function transcodedVideo(): Promise<{ fileId: string; sha256: string }> {
    let bytes = Buffer.from('no ffmpeg here, so no real video either');
    if (hasFfmpeg) {
      const clip = path.join(scratch, 'clip.mp4');
      execFileSync('ffmpeg', [
        ...['-nostdin', '-hide_banner', '-loglevel', 'error'],
        ...['-f', 'lavfi', '-i', 'testsrc=duration=2:size=320x240:rate=15'],
        ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-y', clip],
      ]);
      bytes = await fs.readFile(clip);
    }
    const node = await writeFile(t, alice.id, null, 'holiday.mp4', bytes, { mediaType: 'video/mp4' });
    const sha256 = node.sha256 as string;
    const job: Job = {
      id: 'delivery-1',
      queue: 'video.transcode',
      payload: { ownerId: alice.id, fileId: node.id, sha256 },
      idempotencyKey: `transcode:${sha256}`,
      priority: PRIORITY.bulk,
      attempt: 1,
      publishedAt: new Date(),
    };
    await videoTranscodeHandler(t.deps)(job);
    return { fileId: node.id, sha256 };
  }

  it('hands out signed URLs of the poster and the preview once transcoded, or 404 skipped without ffmpeg', async () => {
    const { fileId, sha256 } = await transcodedVideo();
    const poster = await request(app).get(`/api/v1/files/${fileId}/poster`).set(alice.headers);
    const preview = await request(app).get(`/api/v1/files/${fileId}/preview`).set(alice.headers);
    if (!hasFfmpeg) {
      expect(poster.status).toBe(404);
      expect(poster.body.error.details).toEqual({ transcode: 'skipped' });
      return;
    }
    const record = await t.deps.metadata.getTranscode(sha256);
    expect(poster.status).toBe(200);
    const posterGrant = verifyDownload(
      t.deps.jwtSecret,
      poster.body.url.slice('/api/v1/dl/'.length),
      new Date(),
    );
    expect(posterGrant).toMatchObject({
      sha256: record?.posterSha256,
      name: 'holiday.poster.jpg',
      mediaType: 'image/jpeg',
      ownerId: alice.id,
    });
    expect(preview.status).toBe(200);
    const previewGrant = verifyDownload(
      t.deps.jwtSecret,
      preview.body.url.slice('/api/v1/dl/'.length),
      new Date(),
    );
    expect(previewGrant).toMatchObject({
      sha256: record?.previewSha256,
      name: 'holiday.preview.mp4',
      mediaType: 'video/mp4',
    });
    expect(new Date(preview.body.expiresAt).getTime()).toBe(previewGrant.exp);
  });

  it("answers 404 for another user's video, telling nothing about its transcode", async () => {
    const { fileId } = await transcodedVideo();
    const res = await request(app).get(`/api/v1/files/${fileId}/poster`).set(bob.headers);
    expect(res.status).toBe(404);
    expect(res.body.error.details).toBeUndefined();
  });

  /** A done record for alice's video, with real poster and preview blobs (no ffmpeg needed). */
  async function recordedPreviews(
    on: TestApp = t,
  ): Promise<{ fileId: string; poster: Buffer; preview: Buffer }> {
    const video = await writeFile(on, alice.id, null, 'trip.mp4', Buffer.from(`video ${Math.random()}`), {
      mediaType: 'video/mp4',
    });
    const poster = Buffer.from(`poster of ${video.id}`);
    const preview = Buffer.from(`preview of ${video.id}`);
    const stored = [
      await on.deps.blobs.put(Readable.from([poster])),
      await on.deps.blobs.put(Readable.from([preview])),
    ];
    await on.deps.metadata.putTranscode({
      sha256: video.sha256 as string,
      status: 'done',
      fileId: video.id,
      posterSha256: stored[0]?.sha256 ?? null,
      previewSha256: stored[1]?.sha256 ?? null,
      reason: null,
      updatedAt: new Date(),
    });
    return { fileId: video.id, poster, preview };
  }

  /** The bytes behind a poster or preview URL, fetched as a client would. */
  async function fetched(on: Express, fileId: string, kind: 'poster' | 'preview'): Promise<Buffer> {
    const grant = await request(on).get(`/api/v1/files/${fileId}/${kind}`).set(alice.headers).expect(200);
    const res = await request(on)
      .get(grant.body.url)
      .buffer(true)
      .parse((r, done) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => done(null, Buffer.concat(chunks)));
      })
      .expect(200);
    return res.body as Buffer;
  }

  it('keeps posters and previews across a restart (a new, empty Cache on the same data)', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-preview-restart-'));
    try {
      const before = await createTestApp({ dataDir });
      alice = await createTestUser(before);
      const { fileId, poster } = await recordedPreviews(before);
      await before.close();
      const after = await createTestApp({ dataDir });
      try {
        expect(await fetched(appWithJobRoutes(after), fileId, 'poster')).toEqual(poster);
      } finally {
        await after.close();
      }
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  it("keeps a preview when a file with the same bytes is purged, and drops it with the video's last copy", async () => {
    const { fileId, poster, preview } = await recordedPreviews();
    // A user's own copy of the poster, e.g. downloaded and uploaded again, then deleted for good.
    const copy = await writeFile(t, alice.id, null, 'poster.jpg', poster);
    await request(app).post('/api/v1/fs/delete').set(alice.headers).send({ path: '/poster.jpg' }).expect(200);
    await request(app).delete(`/api/v1/trash/${copy.id}`).set(alice.headers).expect(204);
    expect(await fetched(app, fileId, 'poster')).toEqual(poster);
    expect(await fetched(app, fileId, 'preview')).toEqual(preview);

    const video = await t.deps.metadata.getNode(alice.id, fileId);
    const posterSha = (await t.deps.metadata.getTranscode(video?.sha256 as string))?.posterSha256 as string;
    await request(app).post('/api/v1/fs/delete').set(alice.headers).send({ path: '/trip.mp4' }).expect(200);
    await request(app).delete(`/api/v1/trash/${fileId}`).set(alice.headers).expect(204);
    expect(await t.deps.metadata.getTranscode(video?.sha256 as string)).toBeNull();
    expect(await t.deps.blobs.stat(posterSha)).toBeNull();
  });

  it('asks for a transcode of a video with no outcome (or skipped) once per hour, and of nothing else', async () => {
    const depth = async () => (await t.deps.queue.depth('video.transcode')).ready;
    const video = await writeFile(t, alice.id, null, 'old.mp4', Buffer.from(`video ${Math.random()}`), {
      mediaType: 'video/mp4',
    });
    for (let i = 0; i < 3; i++) {
      const res = await request(app).get(`/api/v1/files/${video.id}/preview`).set(alice.headers).expect(404);
      expect(res.body.error.details).toEqual({ transcode: 'pending' });
    }
    expect(await depth()).toBe(1);

    // Recorded skipped (no ffmpeg back then) counts as not made: one more job for it.
    const skipped = await writeFile(t, alice.id, null, 'older.mp4', Buffer.from(`video ${Math.random()}`), {
      mediaType: 'video/mp4',
    });
    await t.deps.metadata.putTranscode({
      sha256: skipped.sha256 as string,
      status: 'skipped',
      fileId: skipped.id,
      posterSha256: null,
      previewSha256: null,
      reason: 'ffmpeg is not installed',
      updatedAt: new Date(),
    });
    await request(app).get(`/api/v1/files/${skipped.id}/poster`).set(alice.headers).expect(404);
    expect(await depth()).toBe(2);

    const text = await writeFile(t, alice.id, null, 'notes.txt', Buffer.from('text'));
    await request(app).get(`/api/v1/files/${text.id}/preview`).set(alice.headers).expect(404);
    expect(await depth()).toBe(2);

    const seen: Job[] = [];
    const consumer = await t.deps.queue.consume('video.transcode', async (job) => {
      seen.push(job);
    });
    await waitFor('the two jobs', async () => (seen.length === 2 ? true : undefined));
    await consumer.stop();
    expect(seen.map((j) => j.payload)).toEqual([
      { ownerId: alice.id, fileId: video.id, sha256: video.sha256 },
      { ownerId: alice.id, fileId: skipped.id, sha256: skipped.sha256 },
    ]);
  });

  it('answers 404 pending for a file that was never transcoded', async () => {
    const node = await writeFile(t, alice.id, null, 'notes.txt', Buffer.from('text'));
    const res = await request(app).get(`/api/v1/files/${node.id}/preview`).set(alice.headers);
    expect(res.status).toBe(404);
    expect(res.body.error.details).toEqual({ transcode: 'pending' });
  });
});
