/**
 * The job handlers of this worker, one per queue. Each queue's handler lives in its own
 * file and is added to the object below; a queue without an entry is simply not
 * consumed by this process.
 */
import type { JobHandler, QueueName } from '../../core/ports/job-queue.js';
import type { WorkerDeps } from '../deps.js';
import { fileDownloadHandler } from './file-download.js';
import { fileUploadHandler } from './file-upload.js';
import { videoTranscodeHandler } from './video-transcode.js';

export function jobHandlers(deps: WorkerDeps): Partial<Record<QueueName, JobHandler>> {
  return {
    'file.upload': fileUploadHandler(deps),
    'file.download': fileDownloadHandler(deps),
    'video.transcode': videoTranscodeHandler(deps),
  };
}
