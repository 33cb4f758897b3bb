/**
 * The `video.transcode` job, queued by the upload worker after a video's commit and by a
 * preview request for a video with no outcome yet (`server/routes/video-previews.ts`).
 */
import type { VideoTranscodePayload } from '../contract/schemas/jobs.js';
import { PRIORITY, type JobSpec } from './ports/job-queue.js';

/** One video content's transcode: keyed by the content, which every file with those bytes shares. */
export function transcodeJob(payload: VideoTranscodePayload, priority: number = PRIORITY.normal): JobSpec {
  return {
    queue: 'video.transcode',
    payload: { ...payload },
    idempotencyKey: `transcode:${payload.sha256}`,
    priority,
  };
}
