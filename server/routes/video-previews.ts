/**
 * Video posters and previews made by the `video.transcode` worker. Mounted at
 * `/api/v1`; each route authenticates on its own (scope `read`).
 *
 * `GET /files/:id/poster` → `{ url, expiresAt }`: a signed URL (`/api/v1/dl/…`, valid
 *   1 hour) of the poster JPEG;
 * `GET /files/:id/preview` → the same for the MP4 preview (H.264/AAC, ≤ 720p, `+faststart`).
 * 404 `NOT_FOUND` for an unknown, foreign, trashed or not-ready file, and for a video
 * with no preview; then `details.transcode` says why: `pending` (not made yet, or not
 * a video), `skipped` (no ffmpeg on the server) or `failed` (ffmpeg refused the input).
 *
 * A video with no outcome recorded, or `skipped`, gets a `video.transcode` job on such a
 * request (at most one per content per hour): videos stored before ffmpeg was installed,
 * or before outcomes were kept in the metadata store, get their previews on demand.
 */
import { Router, type Request } from 'express';
import { AppError, NotFoundError } from '../../contract/errors.js';
import type { VideoTranscodePayload } from '../../contract/schemas/jobs.js';
import { PRIORITY } from '../../core/ports/job-queue.js';
import { transcodeJob } from '../../core/transcode-job.js';
import { signDownload } from '../../core/signed-url.js';
import type { AppDeps } from '../deps.js';
import { authOf, authenticate, requireScope } from '../middleware/authenticate.js';
import { apiRateLimit } from '../middleware/rate-limit.js';

/** Lifetime of a poster or preview URL. */
export const PREVIEW_URL_TTL_MS = 60 * 60 * 1000;

const KINDS = {
  poster: { field: 'posterSha256', suffix: '.poster.jpg', mediaType: 'image/jpeg' },
  preview: { field: 'previewSha256', suffix: '.preview.mp4', mediaType: 'video/mp4' },
} as const;

export function videoPreviewRoutes(deps: AppDeps): Router {
  const router = Router();
  const guard = [authenticate(deps), apiRateLimit(deps), requireScope('read')];
  for (const kind of ['poster', 'preview'] as const) {
    router.get(`/files/:id/${kind}`, ...guard, async (req, res) => {
      res.json(await signedUrl(deps, req, kind));
    });
  }
  return router;
}

async function signedUrl(
  deps: AppDeps,
  req: Request,
  kind: keyof typeof KINDS,
): Promise<{ url: string; expiresAt: string }> {
  const ownerId = authOf(req).user.id;
  const id = String(req.params.id);
  const file = id.length <= 128 ? await deps.metadata.getNode(ownerId, id) : null;
  if (
    file === null ||
    file.kind !== 'file' ||
    file.trashedAt !== null ||
    file.status !== 'ready' ||
    !file.sha256
  ) {
    throw new NotFoundError('No such file.');
  }
  const record = await deps.metadata.getTranscode(file.sha256);
  const spec = KINDS[kind];
  const sha256 = record?.status === 'done' ? record[spec.field] : null;
  if (sha256 === null) {
    if (file.mediaType?.startsWith('video/') && (record === null || record.status === 'skipped'))
      await askForTranscode(deps, { ownerId, fileId: file.id, sha256: file.sha256 });
    throw new AppError('NOT_FOUND', `This file has no ${kind}.`, {
      details: { transcode: record?.status ?? 'pending' },
    });
  }
  const exp = deps.clock.now().getTime() + PREVIEW_URL_TTL_MS;
  const stem = file.name.replace(/\.[^.]+$/u, '') || file.name;
  const token = signDownload(deps.jwtSecret, {
    sha256,
    name: `${stem}${spec.suffix}`,
    mediaType: spec.mediaType,
    ownerId,
    exp,
  });
  return { url: `/api/v1/dl/${token}`, expiresAt: new Date(exp).toISOString() };
}

/** How long a content's transcode, once asked for by a preview request, is not asked for again. */
export const TRANSCODE_ASK_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Queues a transcode of this content unless one was asked for within the interval (a
 * client polling for its preview queues one job, not one per poll). A failure is logged:
 * the answer stays 404 pending and a later request asks again.
 */
async function askForTranscode(deps: AppDeps, job: VideoTranscodePayload): Promise<void> {
  try {
    const asked = await deps.cache.hit(`transcode-asked:${job.sha256}`, TRANSCODE_ASK_INTERVAL_MS);
    if (asked.count > 1) return;
    await deps.queue.publish(transcodeJob(job, PRIORITY.bulk));
  } catch (err) {
    deps.logger.warn({ err, fileId: job.fileId }, 'could not queue a transcode for a preview request');
  }
}
