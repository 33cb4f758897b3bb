/**
 * JobQueue: durable background work.
 *
 * Adapters: `EmbeddedJobQueue` (a table in the SQLite database) and `RabbitJobQueue`
 * (amqplib). Both pass `core/testing/job-queue.suite.ts`.
 *
 * Delivery is at-least-once: a handler may see the same job again after a crash, so
 * handlers are idempotent by `idempotencyKey`. A job is acknowledged only after its
 * handler's promise resolved (i.e. after the work is committed).
 */

export const QUEUES = ['file.upload', 'file.download', 'video.transcode'] as const;
export type QueueName = (typeof QUEUES)[number];

/** Higher runs first. Interactive work (a person waiting) goes before bulk sync. */
export const PRIORITY = { bulk: 1, normal: 5, interactive: 9 } as const;

export interface JobSpec {
  queue: QueueName;
  /** JSON-serialisable. */
  payload: Record<string, unknown>;
  /** Carried to the handler; the same key means the same piece of work. */
  idempotencyKey: string;
  /** 0..9, default `PRIORITY.normal`. */
  priority?: number;
}

export interface Job {
  id: string;
  queue: QueueName;
  payload: Record<string, unknown>;
  idempotencyKey: string;
  priority: number;
  /** 1 on the first delivery, 2 on the first retry, … */
  attempt: number;
  publishedAt: Date;
}

export interface DeadJob {
  job: Job;
  /** The last error's message. */
  error: string;
  failedAt: Date;
}

/** Throw from a handler to dead-letter the job at once (no retry will help). */
export class PermanentJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentJobError';
  }
}

export interface ConsumeOptions {
  /** Jobs handled at once by this consumer (prefetch). Default 1. */
  concurrency?: number;
  /** Deliveries before a failing job is dead-lettered. Default 5. */
  maxAttempts?: number;
  /** Delay before retry n (1-based) is `min(baseDelayMs * 2^(n-1), maxDelayMs)`. Defaults 1000 / 60000. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export type JobHandler = (job: Job) => Promise<void>;

export interface Consumer {
  /** Stops taking new jobs and resolves once in-flight handlers have finished. */
  stop(): Promise<void>;
}

export interface QueueDepth {
  /** Waiting to be delivered now. */
  ready: number;
  /** Waiting for a retry delay. */
  delayed: number;
  /** Delivered, not yet acknowledged (as far as the adapter can tell). */
  inFlight: number;
  dead: number;
}

export interface JobQueue {
  /** Resolves once the job is durably stored (fsynced / publisher-confirmed). */
  publish(spec: JobSpec): Promise<{ id: string }>;
  consume(queue: QueueName, handler: JobHandler, options?: ConsumeOptions): Promise<Consumer>;
  /** Jobs in the dead-letter queue, oldest first (not removed). */
  listDead(queue: QueueName, limit: number): Promise<DeadJob[]>;
  depth(queue: QueueName): Promise<QueueDepth>;
  ping(): Promise<void>;
  /** Stops all consumers (waiting for in-flight work) and closes connections. */
  close(): Promise<void>;
}
