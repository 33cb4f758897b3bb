/**
 * `video.transcode`: a poster JPEG (one frame at 1 s, or the first frame of a shorter
 * clip) and a web-playable MP4 preview (H.264 baseline + AAC, at most 1280×720, at most
 * `previewSeconds` long, `+faststart`) for an uploaded video, both stored as blobs.
 * ffmpeg runs under the guards of `video-transcode-ffmpeg.ts`, on the blob's local path
 * when the store has one, else on a temp copy.
 *
 * The outcome is recorded in the metadata store by source content (`putTranscode`):
 * `done` with both blob hashes, `skipped` when ffmpeg is not installed, `failed` when
 * ffmpeg refuses the input or times out (a later job for the same content tries again).
 * A done record references its two blobs: it is committed under a hold on them
 * (`withBlobHold`; a blob deleted before the hold is put again under it), and no deletion
 * takes them while it stands. A done transcode is audited `video.transcode`.
 *
 * Idempotent: a job whose content is `done` already (with both blobs there) returns at
 * once; two workers on the same content meet on a Cache lock and the later one retries
 * after the first.
 *
 * Errors: a malformed payload or a missing blob throws `PermanentJobError`; ffmpeg
 * failing on the input is recorded and acknowledged (hostile or broken input does not
 * get better with retries); anything else (disk, Cache, store) is rethrown for a retry.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { videoTranscodePayloadSchema } from '../../contract/schemas/jobs.js';
import { deleteBlobIfUnreferenced, withBlobHold } from '../../core/blob-holds.js';
import type { TranscodeRecord } from '../../core/ports/metadata-store.js';
import { PermanentJobError, type Job, type JobHandler } from '../../core/ports/job-queue.js';
import type { WorkerDeps } from '../deps.js';
import { inputGuards, probeFfmpeg, runFfmpeg, type FfmpegRun } from './video-transcode-ffmpeg.js';

export interface VideoTranscodeOptions {
  /** The ffmpeg binary: a name looked up on PATH or an absolute path. Default `ffmpeg`. */
  ffmpegPath?: string;
  /** Wall-clock limit of each ffmpeg run; it is killed past it. Default 120 s. */
  timeoutMs?: number;
  /** Longest preview. Default 30 s. */
  previewSeconds?: number;
  /** Largest preview file (ffmpeg `-fs`). Default 64 MiB. */
  maxPreviewBytes?: number;
  /** Where temp files go. Default the system temp dir. */
  tmpDir?: string;
}

const MAX_POSTER_BYTES = 8 * 1024 * 1024;
/** Scale down to fit 1280×720 (never up), even dimensions as H.264 4:2:0 needs. */
const FIT_720P =
  "scale=w='min(1280,iw)':h='min(720,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2";

export function videoTranscodeHandler(deps: WorkerDeps, options: VideoTranscodeOptions = {}): JobHandler {
  const ffmpegPath = options.ffmpegPath ?? 'ffmpeg';
  const timeoutMs = options.timeoutMs ?? 120_000;
  const previewSeconds = options.previewSeconds ?? 30;
  const maxPreviewBytes = options.maxPreviewBytes ?? 64 * 1024 * 1024;

  return async (job: Job) => {
    const parsed = videoTranscodePayloadSchema.safeParse(job.payload);
    if (!parsed.success)
      throw new PermanentJobError('Malformed video.transcode payload.', { cause: parsed.error });
    const { ownerId, fileId, sha256 } = parsed.data;
    const log = deps.logger.child({ queue: 'video.transcode', fileId, sha256 });
    const previous = await deps.metadata.getTranscode(sha256);
    if (await outputsThere(deps, previous)) {
      log.info('already transcoded');
      return;
    }
    // A done record being replaced (one of its outputs went missing) leaves its other
    // outputs unreferenced once the new record is in: they go then.
    const dropReplaced = async (kept: readonly string[]): Promise<void> => {
      for (const old of [previous?.posterSha256, previous?.previewSha256])
        if (old && !kept.includes(old)) await deleteBlobIfUnreferenced(deps, old);
    };
    const put = (
      outcome: Pick<TranscodeRecord, 'status'> &
        Partial<Pick<TranscodeRecord, 'reason' | 'posterSha256' | 'previewSha256'>>,
    ): Promise<void> =>
      deps.metadata.putTranscode({
        sha256,
        fileId,
        posterSha256: null,
        previewSha256: null,
        reason: null,
        ...outcome,
        updatedAt: deps.clock.now(),
      });
    /** An outcome without outputs (skipped, failed). */
    const record = async (outcome: Parameters<typeof put>[0]): Promise<void> => {
      await put(outcome);
      await dropReplaced([]);
    };
    const probe = await probeFfmpeg(ffmpegPath);
    if (!probe.ok) {
      await record({ status: 'skipped', reason: probe.reason });
      log.warn({ reason: probe.reason }, 'video transcode skipped');
      return;
    }
    if ((await deps.blobs.stat(sha256)) === null) {
      await record({ status: 'failed', reason: 'The video content is missing from storage.' });
      throw new PermanentJobError(`No blob ${sha256} to transcode.`);
    }
    const lock = await deps.cache.tryLock(`lock:transcode:${sha256}`, 3 * timeoutMs + 60_000);
    if (lock === null) throw new Error(`Another worker is transcoding ${sha256}; retrying later.`);

    const dir = await fs.mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'aio-transcode-'));
    try {
      const input = await inputFile(deps, sha256, dir);
      const ff = (args: string[]) => runFfmpeg(ffmpegPath, args, timeoutMs);
      const poster = path.join(dir, 'poster.jpg');
      let run = await ff(posterArgs(input, poster, 1));
      // A clip shorter than a second has no frame at 1 s: take its first one.
      if (run.code === 0 && !(await nonEmpty(poster))) run = await ff(posterArgs(input, poster, 0));
      if (run.code === 0 && !(await nonEmpty(poster))) run = { ...run, code: 1, stderr: 'no video frame' };
      const preview = path.join(dir, 'preview.mp4');
      if (run.code === 0) run = await ff(previewArgs(input, preview, previewSeconds, maxPreviewBytes));
      if (run.code !== 0 || !(await nonEmpty(preview))) {
        const reason = failureReason(run, input);
        await record({ status: 'failed', reason });
        log.warn({ reason, stderr: run.stderr }, 'ffmpeg could not transcode the video');
        return;
      }
      const posterBlob = await deps.blobs.put(createReadStream(poster));
      const previewBlob = await deps.blobs.put(createReadStream(preview));
      // The record is committed under a hold on both (as the zip's keep): a deletion that
      // took one between its put and the hold is seen here, and the bytes put again.
      await withBlobHold(
        deps,
        `transcode:${randomUUID()}`,
        [posterBlob.sha256, previewBlob.sha256],
        async () => {
          for (const [blob, file] of [
            [posterBlob, poster],
            [previewBlob, preview],
          ] as const)
            if ((await deps.blobs.stat(blob.sha256)) === null) await deps.blobs.put(createReadStream(file));
          await put({ status: 'done', posterSha256: posterBlob.sha256, previewSha256: previewBlob.sha256 });
        },
      );
      await dropReplaced([posterBlob.sha256, previewBlob.sha256]);
      await deps.metadata.appendAudit({
        userId: ownerId,
        action: 'video.transcode',
        ip: null,
        userAgent: null,
        details: { fileId, sha256, posterSha256: posterBlob.sha256, previewSha256: previewBlob.sha256 },
        createdAt: deps.clock.now(),
      });
      log.info({ posterSha256: posterBlob.sha256, previewSha256: previewBlob.sha256 }, 'video transcoded');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
      await lock.release().catch((err: unknown) => log.warn({ err }, 'could not release the transcode lock'));
    }
  };
}

/** True when `done` is a done record whose two outputs are still in the blob store. */
async function outputsThere(deps: WorkerDeps, done: TranscodeRecord | null): Promise<boolean> {
  if (done?.status !== 'done' || done.posterSha256 === null || done.previewSha256 === null) return false;
  return (
    (await deps.blobs.stat(done.posterSha256)) !== null &&
    (await deps.blobs.stat(done.previewSha256)) !== null
  );
}

/** The blob's own file when the store is local, else a copy in `dir`. */
async function inputFile(deps: WorkerDeps, sha256: string, dir: string): Promise<string> {
  const local = deps.blobs.localPath(sha256);
  if (local !== null) {
    try {
      await fs.access(local);
      return local;
    } catch {
      // Fall through to a copy.
    }
  }
  const copy = path.join(dir, 'input');
  await pipeline(await deps.blobs.read(sha256), createWriteStream(copy, { flags: 'wx', mode: 0o600 }));
  return copy;
}

function posterArgs(input: string, output: string, atSecond: number): string[] {
  const seek = atSecond > 0 ? ['-ss', String(atSecond)] : [];
  return [
    ...inputGuards(atSecond + 5),
    ...seek,
    '-i',
    input,
    ...['-map', '0:v:0', '-frames:v', '1', '-vf', FIT_720P, '-an', '-sn', '-dn', '-map_metadata', '-1'],
    ...[
      '-c:v',
      'mjpeg',
      '-q:v',
      '3',
      '-fs',
      String(MAX_POSTER_BYTES),
      '-f',
      'image2',
      '-update',
      '1',
      '-y',
      output,
    ],
  ];
}

function previewArgs(input: string, output: string, seconds: number, maxBytes: number): string[] {
  return [
    ...inputGuards(seconds),
    '-i',
    input,
    ...['-map', '0:v:0', '-map', '0:a:0?', '-t', String(seconds), '-vf', FIT_720P, '-fpsmax', '30'],
    ...[
      '-c:v',
      'libx264',
      '-profile:v',
      'baseline',
      '-pix_fmt',
      'yuv420p',
      '-preset',
      'veryfast',
      '-crf',
      '28',
    ],
    ...['-c:a', 'aac', '-b:a', '128k', '-ac', '2', '-sn', '-dn', '-map_metadata', '-1'],
    ...['-movflags', '+faststart', '-fs', String(maxBytes), '-f', 'mp4', '-y', output],
  ];
}

async function nonEmpty(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).size > 0;
  } catch {
    return false;
  }
}

/** The last line of ffmpeg's complaint, with the storage path taken out. */
function failureReason(run: FfmpegRun, input: string): string {
  if (run.timedOut) return 'ffmpeg ran past its time limit and was stopped.';
  const detail = (run.stderr.split('\n').filter(Boolean).at(-1) ?? '').split(input).join('input');
  return `ffmpeg could not read the video (exit ${String(run.code)})${detail ? `: ${detail.slice(0, 300)}` : '.'}`;
}
