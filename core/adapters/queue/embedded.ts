/**
 * EmbeddedJobQueue: the durable job queue of the embedded mode, a `jobs` table in the
 * same SQLite database as the metadata.
 *
 * - publish inserts a row; the database runs `synchronous = FULL`, so the job is on disk
 *   when the promise resolves.
 * - consumers poll (every `pollIntervalMs`, and at once on a publish in this process),
 *   claim a job with one atomic UPDATE … RETURNING and hold a lease on it
 *   (`visibilityTimeoutMs`, renewed while the handler runs). A job whose lease expired —
 *   its process died — is delivered again, so delivery is at-least-once, also with
 *   several processes on one database file.
 * - on success the row is deleted; on failure it is retried after exponential backoff or
 *   marked `dead` with its error (after `maxAttempts` or a `PermanentJobError`).
 *
 * `close()` stops the consumers but leaves the shared database open (its owner closes it).
 */
import { UnavailableError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
import { systemClock } from '../../domain/clock.js';
import type {
  ConsumeOptions,
  Consumer,
  DeadJob,
  JobHandler,
  JobQueue,
  JobSpec,
  QueueDepth,
  QueueName,
} from '../../ports/job-queue.js';
import { groupCommitOf, type SqliteDatabase } from '../../sqlite.js';
import { jobPriority, retryPolicy } from './backoff.js';
import { PollingConsumer } from './embedded-consumer.js';
import { EmbeddedJobStore } from './embedded-store.js';
import { notifyPublish, onPublish } from './embedded-wake.js';
import type { QueueLogger } from './logger.js';
import { consoleQueueLogger } from './logger.js';

export interface EmbeddedJobQueueOptions {
  /** How often idle consumers look for jobs published by other processes. Default 75 ms. */
  pollIntervalMs?: number;
  /** Lease of a claimed job; renewed every third of it while the handler runs. Default 30 s. */
  visibilityTimeoutMs?: number;
  clock?: Clock;
  logger?: QueueLogger;
}

export class EmbeddedJobQueue implements JobQueue {
  private readonly store: EmbeddedJobStore;
  private readonly clock: Clock;
  private readonly logger: QueueLogger;
  private readonly pollIntervalMs: number;
  private readonly visibilityTimeoutMs: number;
  private readonly consumers = new Set<PollingConsumer>();
  private closed = false;

  /** Applies the queue's migrations to `db` (throws what SQLite throws if that fails). */
  constructor(
    private readonly db: SqliteDatabase,
    options: EmbeddedJobQueueOptions = {},
  ) {
    this.store = new EmbeddedJobStore(db);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? consoleQueueLogger;
    this.pollIntervalMs = options.pollIntervalMs ?? 75;
    this.visibilityTimeoutMs = options.visibilityTimeoutMs ?? 30_000;
  }

  /** Resolves once the row is committed (fsynced). `UnavailableError` when closed or the database fails. */
  async publish(spec: JobSpec): Promise<{ id: string }> {
    this.assertOpen();
    const priority = jobPriority(spec);
    // In the connection's group commit: a job published beside metadata writes (the outbox
    // relay, a worker's follow-up job) shares their fsync.
    let id: string;
    try {
      id = await groupCommitOf(this.db).run(() =>
        this.store.insert(spec, priority, this.clock.now().getTime()),
      );
    } catch (err) {
      throw failure('publish', err);
    }
    notifyPublish(this.db, spec.queue);
    return { id };
  }

  async consume(queue: QueueName, handler: JobHandler, options?: ConsumeOptions): Promise<Consumer> {
    this.assertOpen();
    const consumer = new PollingConsumer({
      store: this.store,
      queue,
      handler,
      policy: retryPolicy(options),
      clock: this.clock,
      logger: this.logger,
      pollIntervalMs: this.pollIntervalMs,
      visibilityTimeoutMs: this.visibilityTimeoutMs,
      subscribe: (wake) => onPublish(this.db, wake),
    });
    this.consumers.add(consumer);
    consumer.start();
    return {
      stop: async () => {
        await consumer.stop();
        this.consumers.delete(consumer);
      },
    };
  }

  async listDead(queue: QueueName, limit: number): Promise<DeadJob[]> {
    return this.guard('listDead', () => this.store.listDead(queue, limit));
  }

  async depth(queue: QueueName): Promise<QueueDepth> {
    return this.guard('depth', () => this.store.depth(queue, this.clock.now().getTime()));
  }

  async ping(): Promise<void> {
    this.guard('ping', () => this.store.ping());
  }

  /** Stops every consumer, waiting for in-flight handlers. Does not close the database. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.consumers.clear();
  }

  /**
   * Stops every consumer at once without waiting for or recording in-flight work, as a
   * crash would (e.g. when a shutdown deadline passed). Those jobs are delivered again
   * after their lease expires.
   */
  abandon(): void {
    this.closed = true;
    for (const c of this.consumers) c.abandon();
    this.consumers.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('The job queue is closed.');
  }

  /** Runs a database call, turning driver failures into `UnavailableError` (keeping `cause`). */
  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw failure(what, err);
    }
  }
}

/** What a failed database call surfaces as: `UnavailableError`, but a caller's bad input as is. */
function failure(what: string, err: unknown): unknown {
  if (err instanceof RangeError) return err;
  return new UnavailableError(`The embedded job queue could not ${what}.`, err);
}
