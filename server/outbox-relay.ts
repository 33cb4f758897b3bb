/**
 * OutboxRelay: moves jobs the MetadataStore wrote in its outbox (in the same commit as
 * the state change that asked for them, e.g. `finishUpload`) to the JobQueue, then
 * deletes them. A job is never lost: an entry leaves the outbox only after the queue
 * confirmed it durably stored.
 *
 * It drains at once when kicked (a `finishUpload` on any API instance publishes a kick
 * on the Cache) and polls every `intervalMs` otherwise, so a lost kick costs at most one
 * interval. Several relays (processes) may run at once: two may publish the same entry
 * before either deletes it; consumers are idempotent by `idempotencyKey`, so that only
 * costs a duplicate delivery.
 */
import type { Logger } from 'pino';
import { QUEUES, type QueueName } from '../core/ports/job-queue.js';
import type { Cache, Unsubscribe } from '../core/ports/cache.js';
import type { JobQueue } from '../core/ports/job-queue.js';
import type { MetadataStore, OutboxEntry } from '../core/ports/metadata-store.js';
import type { BackgroundTask } from './lifecycle.js';

/** Cache channel on which writers of the outbox wake the relays. */
export const OUTBOX_KICK_CHANNEL = 'outbox:kick';

/** Wakes every relay listening on the Cache. Best effort: the poll catches a lost kick. */
export async function kickOutboxRelay(cache: Cache): Promise<void> {
  try {
    await cache.publish(OUTBOX_KICK_CHANNEL, '1');
  } catch {
    // The relay's poll picks the entry up within one interval.
  }
}

export interface OutboxRelayDeps {
  metadata: MetadataStore;
  queue: JobQueue;
  cache: Cache;
  logger: Logger;
}

export interface OutboxRelayOptions {
  /** Poll interval, ms. Default 1000. */
  intervalMs?: number;
  /** Entries read per round. Default 100. */
  batchSize?: number;
}

export class OutboxRelay implements BackgroundTask {
  readonly name = 'outbox-relay';
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: Unsubscribe | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;

  constructor(
    private readonly deps: OutboxRelayDeps,
    options: OutboxRelayOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.batchSize = options.batchSize ?? 100;
  }

  /** Subscribes to kicks, starts polling and drains once. Never rejects; resolves once kicks are heard. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      this.unsubscribe = await this.deps.cache.subscribe(OUTBOX_KICK_CHANNEL, () => this.kick());
    } catch (err) {
      // Without kicks the relay still works, one poll interval slower.
      this.deps.logger.warn({ err }, 'outbox relay: cannot subscribe to kicks; polling only');
    }
    this.timer = setInterval(() => this.kick(), this.intervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Drains now (or right after the drain in progress). */
  kick(): void {
    if (!this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once the relay has drained everything that was there (for tests and shutdown). */
  async drain(): Promise<number> {
    await this.running;
    return this.relayBatches();
  }

  /** Stops polling and listening, then waits for a drain in progress. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.().catch(() => undefined);
    await this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.relayBatches();
      } catch (err) {
        this.deps.logger.error({ err }, 'outbox relay: relaying failed; retrying on the next poll');
        return;
      }
    } while (this.again && this.started);
  }

  /** Relays until the outbox is empty (or holds only entries it cannot relay). Returns how many went out. */
  private async relayBatches(): Promise<number> {
    let relayed = 0;
    for (;;) {
      const entries = await this.deps.metadata.listOutbox(this.batchSize);
      const progressed = await this.relay(entries);
      relayed += progressed;
      if (entries.length < this.batchSize || progressed === 0) return relayed;
    }
  }

  /**
   * Publishes the entries all at once, then deletes those that went out (an entry leaves
   * the outbox only after its job is published). On the embedded queue and SQLite the
   * publishes share one commit, and so do the deletions: one entry after the other took
   * two fsyncs each, and a backlog of small uploads waited on them. Throws the first
   * failure once the others are settled.
   */
  private async relay(entries: readonly OutboxEntry[]): Promise<number> {
    const known = entries.filter((entry): entry is OutboxEntry & { queue: QueueName } => {
      if (isQueueName(entry.queue)) return true;
      // Kept, not dropped: a newer process may know the queue.
      this.deps.logger.error({ outboxId: entry.id, queue: entry.queue }, 'outbox relay: unknown queue');
      return false;
    });
    const published = await Promise.allSettled(
      known.map((entry) =>
        this.deps.queue.publish({
          queue: entry.queue,
          payload: entry.payload,
          idempotencyKey: entry.idempotencyKey,
          priority: entry.priority,
        }),
      ),
    );
    const sent = known.filter((_, i) => published[i]?.status === 'fulfilled');
    await Promise.all(sent.map((entry) => this.deps.metadata.deleteOutbox(entry.id)));
    const failed = published.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return sent.length;
  }
}

function isQueueName(value: string): value is QueueName {
  return (QUEUES as readonly string[]).includes(value);
}
