/**
 * The worker runtime: one consumer per queue that has a handler, each job logged
 * (queue, id, attempt, duration, outcome) and measured. Used by `aio-worker` and, with
 * AIO_WORKER=inline, inside `aio-server`.
 */
import {
  PermanentJobError,
  type Consumer,
  type Job,
  type JobHandler,
  type QueueName,
} from '../core/ports/job-queue.js';
import type { Metrics } from '../server/metrics.js';
import type { WorkerDeps } from './deps.js';

export interface WorkerOptions {
  /** Jobs handled at once per queue. */
  concurrency: number;
  /** Deliveries before a failing job is dead-lettered (passed to the queue). Default 5. */
  maxAttempts?: number;
  /** Job duration histogram and failure counter go here when given. */
  metrics?: Metrics;
}

export interface WorkerRuntime {
  /** The queues being consumed. */
  readonly queues: readonly QueueName[];
  /** Stops taking jobs and resolves once in-flight jobs have finished. Safe to call twice. */
  stop(): Promise<void>;
}

/** `success`: acked. `retry`: failed, will be delivered again. `dead`: failed for good. */
export type JobOutcome = 'success' | 'retry' | 'dead';

const DEFAULT_MAX_ATTEMPTS = 5;

export async function startWorker(
  deps: Pick<WorkerDeps, 'queue' | 'logger'>,
  handlers: Partial<Record<QueueName, JobHandler>>,
  options: WorkerOptions,
): Promise<WorkerRuntime> {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const consumers: Consumer[] = [];
  const queues: QueueName[] = [];
  const stopAll = async (): Promise<void> => {
    const results = await Promise.allSettled(consumers.map((c) => c.stop()));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      throw new AggregateError(
        failed.map((f) => f.reason as unknown),
        'stopping the job consumers failed',
      );
    }
  };

  for (const [queue, handler] of Object.entries(handlers) as Array<[QueueName, JobHandler | undefined]>) {
    if (!handler) continue;
    try {
      const consumer = await deps.queue.consume(
        queue,
        instrument(deps, queue, handler, maxAttempts, options.metrics),
        {
          concurrency: options.concurrency,
          maxAttempts,
        },
      );
      consumers.push(consumer);
      queues.push(queue);
    } catch (err) {
      await stopAll().catch(() => undefined);
      throw err;
    }
  }
  deps.logger.info({ queues, concurrency: options.concurrency }, 'worker started');

  let stopping: Promise<void> | undefined;
  return {
    queues,
    stop() {
      stopping ??= stopAll().then(() => deps.logger.info({ queues }, 'worker stopped'));
      return stopping;
    },
  };
}

/** Wraps a handler with a log line and metrics per job; the handler's error is rethrown for the queue. */
function instrument(
  deps: Pick<WorkerDeps, 'logger'>,
  queue: QueueName,
  handler: JobHandler,
  maxAttempts: number,
  metrics: Metrics | undefined,
): JobHandler {
  return async (job: Job) => {
    const started = performance.now();
    const log = deps.logger.child({ queue, jobId: job.id, attempt: job.attempt });
    log.debug('job started');
    try {
      await handler(job);
    } catch (err) {
      const outcome: JobOutcome =
        err instanceof PermanentJobError || job.attempt >= maxAttempts ? 'dead' : 'retry';
      const seconds = (performance.now() - started) / 1000;
      metrics?.jobDuration.observe({ queue, outcome }, seconds);
      metrics?.jobFailures.inc({ queue });
      log[outcome === 'dead' ? 'error' : 'warn'](
        { err, outcome, durationMs: Math.round(seconds * 1000) },
        outcome === 'dead' ? 'job failed for good' : 'job failed; it will be retried',
      );
      throw err;
    }
    const seconds = (performance.now() - started) / 1000;
    metrics?.jobDuration.observe({ queue, outcome: 'success' }, seconds);
    log.info({ outcome: 'success', durationMs: Math.round(seconds * 1000) }, 'job done');
  };
}
