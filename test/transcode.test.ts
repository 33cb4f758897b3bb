import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRIORITY, type Job } from '../core/ports/job-queue.js';
import { videoTranscodeHandler } from '../worker/jobs/video-transcode.js';
import { createTestApp, createTestUser, type TestApp, type TestUser } from './helpers/app.js';
import { writeFile } from './jobs-app.js';

const hasFfmpeg = spawnSync('ffmpeg', ['-hide_banner', '-version'], { stdio: 'ignore' }).status === 0;
if (!hasFfmpeg && process.env.CI !== 'true') {
  console.warn('ffmpeg is not installed: the transcode suites check the skipped outcome instead');
}

async function bytesOf(t: TestApp, sha256: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await t.deps.blobs.read(sha256)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function transcodeJob(ownerId: string, fileId: string, sha256: string): Job {
  return {
    id: `delivery-${sha256.slice(0, 8)}`,
    queue: 'video.transcode',
    payload: { ownerId, fileId, sha256 },
    idempotencyKey: `transcode:${sha256}`,
    priority: PRIORITY.bulk,
    attempt: 1,
    publishedAt: new Date(),
  };
}

describe('video.transcode', () => {
  let t: TestApp;
  let alice: TestUser;
  let scratch: string;

  beforeEach(async () => {
    t = await createTestApp();
    alice = await createTestUser(t);
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-transcode-test-'));
  });

  afterEach(async () => {
    await t.close();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  /** A 2-second 320×240 clip with a tone, made by ffmpeg itself; or plain bytes when it is absent. */
  async function storeClip(): Promise<{ fileId: string; sha256: string }> {
    let bytes = Buffer.from('not really a video: ffmpeg is absent');
    if (hasFfmpeg) {
      const clip = path.join(scratch, 'clip.mp4');
      execFileSync('ffmpeg', [
        ...['-nostdin', '-hide_banner', '-loglevel', 'error'],
        ...['-f', 'lavfi', '-i', 'testsrc=duration=2:size=320x240:rate=15'],
        ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2'],
        ...['-shortest', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-y', clip],
      ]);
      bytes = await fs.readFile(clip);
    }
    const node = await writeFile(t, alice.id, null, 'clip.mp4', bytes, { mediaType: 'video/mp4' });
    return { fileId: node.id, sha256: node.sha256 as string };
  }

  it('makes a JPEG poster and an H.264 MP4 preview of at most 720p, or records skipped without ffmpeg', async () => {
    const { fileId, sha256 } = await storeClip();
    await videoTranscodeHandler(t.deps)(transcodeJob(alice.id, fileId, sha256));
    const record = await t.deps.metadata.getTranscode(sha256);

    if (!hasFfmpeg) {
      expect(record).toMatchObject({ status: 'skipped', fileId });
      expect(record?.reason).toMatch(/not available/);
      return;
    }
    expect(record).toMatchObject({ status: 'done', fileId });
    const poster = await bytesOf(t, record?.posterSha256 as string);
    expect([...poster.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    const preview = await bytesOf(t, record?.previewSha256 as string);
    expect(preview.subarray(4, 8).toString('latin1')).toBe('ftyp');

    const previewFile = path.join(scratch, 'preview.mp4');
    await fs.writeFile(previewFile, preview);
    const probe = JSON.parse(
      execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', previewFile], {
        encoding: 'utf8',
      }),
    ) as { streams: Array<Record<string, unknown>>; format: { duration: string } };
    const video = probe.streams.find((s) => s.codec_type === 'video');
    expect(video).toMatchObject({ codec_name: 'h264', profile: expect.stringMatching(/Baseline/) });
    expect(Number(video?.height)).toBeLessThanOrEqual(720);
    expect(probe.streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    expect(Number(probe.format.duration)).toBeLessThan(2.5);

    const audit = await t.deps.metadata.listAudit(alice.id, { limit: 10 });
    expect(audit.items.find((e) => e.action === 'video.transcode')?.details).toMatchObject({
      fileId,
      sha256,
      posterSha256: record?.posterSha256,
      previewSha256: record?.previewSha256,
    });
  });

  it('records skipped with the reason, and acknowledges, when the ffmpeg binary does not exist', async () => {
    const { fileId, sha256 } = await storeClip();
    const missing = path.join(scratch, 'no-such-ffmpeg');
    await videoTranscodeHandler(t.deps, { ffmpegPath: missing })(transcodeJob(alice.id, fileId, sha256));
    const record = await t.deps.metadata.getTranscode(sha256);
    expect(record).toMatchObject({ status: 'skipped', fileId });
    expect(record?.reason).toBe(`ffmpeg is not available at "${missing}" (ENOENT).`);
    expect(record?.posterSha256).toBeNull();
  });

  it('makes a done transcode again when one of its outputs is gone, dropping the other old one', async () => {
    const { fileId, sha256 } = await storeClip();
    const poster = await t.deps.blobs.put(Readable.from([Buffer.from(`old poster ${sha256}`)]));
    const preview = await t.deps.blobs.put(Readable.from([Buffer.from(`old preview ${sha256}`)]));
    await t.deps.metadata.putTranscode({
      sha256,
      status: 'done',
      fileId,
      posterSha256: poster.sha256,
      previewSha256: preview.sha256,
      reason: null,
      updatedAt: new Date(),
    });
    // Done and both there: nothing to do.
    const missing = path.join(scratch, 'no-such-ffmpeg');
    await videoTranscodeHandler(t.deps, { ffmpegPath: missing })(transcodeJob(alice.id, fileId, sha256));
    expect((await t.deps.metadata.getTranscode(sha256))?.status).toBe('done');

    await t.deps.blobs.delete(poster.sha256);
    await videoTranscodeHandler(t.deps, { ffmpegPath: missing })(transcodeJob(alice.id, fileId, sha256));
    expect(await t.deps.metadata.getTranscode(sha256)).toMatchObject({
      status: 'skipped',
      previewSha256: null,
    });
    expect(await t.deps.blobs.stat(preview.sha256)).toBeNull();
  });

  it('returns at once for content transcoded already; without ffmpeg a redelivery checks again', async () => {
    const { fileId, sha256 } = await storeClip();
    const handler = videoTranscodeHandler(t.deps);
    await handler(transcodeJob(alice.id, fileId, sha256));
    const first = await t.deps.metadata.getTranscode(sha256);
    await handler({ ...transcodeJob(alice.id, fileId, sha256), attempt: 2 });
    const second = await t.deps.metadata.getTranscode(sha256);
    if (!hasFfmpeg) {
      // Skipped is not final: once ffmpeg is installed the next delivery makes the preview.
      expect([first?.status, second?.status]).toEqual(['skipped', 'skipped']);
      return;
    }
    expect(second).toEqual(first);
    const audit = await t.deps.metadata.listAudit(alice.id, { limit: 10 });
    expect(audit.items.filter((e) => e.action === 'video.transcode')).toHaveLength(1);
  });

  it('refuses a playlist that would pull another local video into the output, recording failed', async () => {
    // Without the demuxer whitelist ffmpeg follows the playlist and transcodes this private file.
    const secret = path.join(scratch, 'secret.ts');
    if (hasFfmpeg) {
      execFileSync('ffmpeg', [
        ...['-nostdin', '-hide_banner', '-loglevel', 'error'],
        ...['-f', 'lavfi', '-i', 'testsrc=duration=2:size=320x240:rate=15'],
        ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-f', 'mpegts', '-y', secret],
      ]);
    }
    const playlist = [
      '#EXTM3U',
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXTINF:2.0,',
      `file://${secret}`,
      '#EXT-X-ENDLIST',
      '',
    ];
    const node = await writeFile(t, alice.id, null, 'evil.mp4', Buffer.from(playlist.join('\n')), {
      mediaType: 'video/mp4',
    });
    const sha256 = node.sha256 as string;
    await videoTranscodeHandler(t.deps)(transcodeJob(alice.id, node.id, sha256));
    const record = await t.deps.metadata.getTranscode(sha256);
    if (!hasFfmpeg) {
      expect(record?.status).toBe('skipped');
      return;
    }
    expect(record?.status).toBe('failed');
    expect(record?.reason).toMatch(/^ffmpeg could not read the video/);
    expect(record?.reason).not.toContain(t.dataDir);
  });

  it('kills ffmpeg past its time limit and records failed', async () => {
    const { fileId, sha256 } = await storeClip();
    await videoTranscodeHandler(t.deps, { timeoutMs: 1 })(transcodeJob(alice.id, fileId, sha256));
    const record = await t.deps.metadata.getTranscode(sha256);
    if (!hasFfmpeg) {
      expect(record?.status).toBe('skipped');
      return;
    }
    expect(record).toMatchObject({
      status: 'failed',
      reason: 'ffmpeg ran past its time limit and was stopped.',
    });
  });
});
