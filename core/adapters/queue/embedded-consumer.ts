/**
 * One `consume()` of the embedded queue: polls the `jobs` table (and wakes on
 * in-process publishes), runs up to `concurrency` handlers, keeps their leases alive,
 * and records the outcome only after the handler settled.
 */
import type { Clock } from '../../domain/clock.js';
import type { Consumer, JobHandler, QueueName } from '../../ports/job-queue.js';
import type { RetryPolicy } from './backoff.js';
import { errorMessage, onFailure } from './backoff.js';
import type { ClaimedJob, EmbeddedJobStore } from './embedded-store.js';
import type { QueueLogger } from './logger.js';

export interface PollingConsumerOptions {
  store: EmbeddedJobStore;
  queue: QueueName;
  handler: JobHandler;
  policy: RetryPolicy;
  clock: Clock;
  logger: QueueLogger;
  pollIntervalMs: number;
  visibilityTimeoutMs: number;
  /** Subscribes to in-process publishes; returns the unsubscribe function. */
  subscribe: (wake: (queue: string) => void) => () => void;
}

export class PollingConsumer implements Consumer {
  private stopped = false;
  private abandoned = false;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly leaseTimers = new Set<NodeJS.Timeout>();
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: PollingConsumerOptions) {}

  start(): void {
    this.unsubscribe = this.o.subscribe((queue) => {
      if (queue === this.o.queue) this.pump();
    });
    this.pump();
  }

  /** Stops claiming, then resolves once every running handler finished and its outcome was recorded. */
  stop(): Promise<void> {
    this.stopping ??= this.halt().then(async () => {
      // Loop: a handler's completion must not be missed if it raced with halt().
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    });
    return this.stopping;
  }

  /**
   * Drops everything at once, as a crashed process would: no waiting, no lease
   * extension, and no outcome recorded for handlers still running. Their jobs are
   * delivered again once the lease expires.
   */
  abandon(): void {
    this.abandoned = true;
    void this.halt();
    for (const t of this.leaseTimers) clearInterval(t);
    this.leaseTimers.clear();
  }

  private async halt(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Claims jobs while slots are free, then sleeps until the next poll (or a wake-up). */
  private pump(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      while (!this.stopped && this.inFlight.size < this.o.policy.concurrency) {
        const now = this.o.clock.now().getTime();
        const claimed = this.o.store.claim(this.o.queue, now, now + this.o.visibilityTimeoutMs);
        if (!claimed) break;
        this.run(claimed);
      }
    } catch (err) {
      // A busy or broken database: keep polling; the next round may succeed.
      this.o.logger.error({ err, queue: this.o.queue }, 'embedded queue: claiming a job failed');
    }
    if (!this.stopped) this.timer = setTimeout(() => this.pump(), this.o.pollIntervalMs);
  }

  private run({ job, token }: ClaimedJob): void {
    const { store, clock, logger, visibilityTimeoutMs } = this.o;
    // Renew well before expiry so a slow event loop does not cost the lease.
    const leaseTimer = setInterval(
      () => {
        try {
          if (!store.extend(job.id, token, clock.now().getTime() + visibilityTimeoutMs)) {
            logger.warn(
              { jobId: job.id, queue: job.queue },
              'embedded queue: lease lost; the job may run twice',
            );
          }
        } catch (err) {
          logger.error({ err, jobId: job.id }, 'embedded queue: extending a lease failed');
        }
      },
      Math.max(10, Math.floor(visibilityTimeoutMs / 3)),
    );
    this.leaseTimers.add(leaseTimer);

    const task = (async () => {
      let failure: { err: unknown } | null = null;
      try {
        await this.o.handler(job);
      } catch (err) {
        failure = { err };
      }
      clearInterval(leaseTimer);
      this.leaseTimers.delete(leaseTimer);
      if (this.abandoned) return;
      this.settle(job.id, token, job.attempt, failure);
    })();
    this.inFlight.add(task);
    void task.finally(() => {
      this.inFlight.delete(task);
      this.pump();
    });
  }

  private settle(id: string, token: string, attempt: number, failure: { err: unknown } | null): void {
    const { store, clock, logger, policy, queue } = this.o;
    try {
      const now = clock.now().getTime();
      let held: boolean;
      if (!failure) {
        held = store.complete(id, token);
      } else {
        const outcome = onFailure(failure.err, attempt, policy);
        const message = errorMessage(failure.err);
        held =
          outcome.kind === 'dead'
            ? store.bury(id, token, now, message)
            : store.retry(id, token, now + outcome.delayMs, message);
      }
      if (!held)
        logger.warn({ jobId: id, queue }, 'embedded queue: lease was lost before the outcome was recorded');
    } catch (err) {
      // The row keeps its lease, which expires: the job is delivered again, never lost.
      logger.error({ err, jobId: id, queue }, 'embedded queue: recording a job outcome failed');
    }
  }
}
