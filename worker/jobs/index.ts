/**
 * The job handlers of this worker, one per queue. Each queue's handler lives in its own
 * file (`worker/jobs/<queue>.ts`, e.g. `file-upload.ts` exporting a factory taking
 * `WorkerDeps`) and is added to the object below; a queue without an entry is simply
 * not consumed by this process.
 */
import type { JobHandler, QueueName } from '../../core/ports/job-queue.js';
import type { WorkerDeps } from '../deps.js';

export function jobHandlers(_deps: WorkerDeps): Partial<Record<QueueName, JobHandler>> {
  return {};
}
