/**
 * One `consume()` of `RabbitJobQueue`: its own channel (prefetch = concurrency), manual
 * acks only after the handler settled, and failed deliveries forwarded (confirmed) to a
 * retry queue or the dead-letter queue BEFORE the original is acked — a crash in between
 * duplicates a job, never loses it. Restarted on every (re)connection.
 */
import type { Channel, ChannelModel, ConsumeMessage, Message } from 'amqplib';
import type { Consumer, Job, JobHandler, QueueName } from '../../ports/job-queue.js';
import { PermanentJobError } from '../../ports/job-queue.js';
import type { RetryPolicy } from './backoff.js';
import { errorMessage, onFailure } from './backoff.js';
import type { QueueLogger } from './logger.js';
import { quietly } from './rabbit-confirm.js';
import type { QueueNames } from './rabbit-topology.js';
import { attemptOf, declareQueue, decodeJob } from './rabbit-topology.js';

export interface RabbitConsumerOptions {
  queue: QueueName;
  names: QueueNames;
  handler: JobHandler;
  policy: RetryPolicy;
  logger: QueueLogger;
  /** Publishes `msg` as attempt `nextAttempt` to the retry queue for `delayMs`; resolves once confirmed. */
  retry(msg: Message, nextAttempt: number, delayMs: number, error: string): Promise<void>;
  /** Publishes `msg` to the dead-letter queue with `error`; resolves once confirmed. */
  bury(msg: Message, error: string): Promise<void>;
  /** Called (after a pause) when the channel closed while the consumer should still run. */
  onChannelLost(consumer: RabbitConsumer): void;
}

/** Pause before handing back a message we could not forward, so a broken broker is not hammered. */
const REQUEUE_PAUSE_MS = 1000;

export class RabbitConsumer implements Consumer {
  private stopped = false;
  private model: ChannelModel | null = null;
  private channel: Channel | null = null;
  private consumerTag: string | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: RabbitConsumerOptions) {}

  get queue(): QueueName {
    return this.o.queue;
  }

  /** Handlers of this consumer running now. */
  get running(): number {
    return this.inFlight.size;
  }

  /**
   * Opens a channel on `model` and starts consuming; a no-op when already running on it
   * or stopped. Rejects when the channel or the declarations fail.
   */
  async start(model: ChannelModel): Promise<void> {
    if (this.stopped || this.model === model) return;
    this.model = model;
    let ch: Channel;
    try {
      ch = await model.createChannel();
    } catch (err) {
      if (this.model === model) this.model = null;
      throw err;
    }
    ch.on('error', (err: Error) =>
      this.o.logger.error({ err, queue: this.o.names.main }, 'rabbit: consumer channel error'),
    );
    ch.on('close', () => {
      if (this.channel !== ch) return;
      this.channel = null;
      this.consumerTag = null;
      // Let the next (re)connection start it again, or restart it now if only the channel died.
      if (this.model === model) this.model = null;
      if (!this.stopped) setTimeout(() => this.o.onChannelLost(this), REQUEUE_PAUSE_MS).unref();
    });
    try {
      await declareQueue(ch, this.o.names);
      await ch.prefetch(this.o.policy.concurrency);
      this.channel = ch;
      const { consumerTag } = await ch.consume(this.o.names.main, (msg) => this.onMessage(ch, msg), {
        noAck: false,
      });
      this.consumerTag = consumerTag;
    } catch (err) {
      if (this.model === model) this.model = null;
      await quietly(() => ch.close());
      throw err;
    }
    // stop() may have run while we were starting.
    if (this.stopped) await this.shutChannel();
  }

  /** Cancels the subscription, waits for running handlers (and their acks), then closes the channel. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      const ch = this.channel;
      const tag = this.consumerTag;
      if (ch && tag) await quietly(() => ch.cancel(tag));
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.shutChannel();
    })();
    return this.stopping;
  }

  /** Stops taking jobs without waiting; the connection's closing returns unacked messages to the broker. */
  abandon(): void {
    this.stopped = true;
  }

  private async shutChannel(): Promise<void> {
    const ch = this.channel;
    this.channel = null;
    this.consumerTag = null;
    if (ch) await quietly(() => ch.close());
  }

  private onMessage(ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled us (the queue was deleted): start again, which redeclares it.
      this.o.logger.error(
        { queue: this.o.names.main },
        'rabbit: consumer cancelled by the broker; restarting',
      );
      this.model = null;
      this.channel = null;
      this.consumerTag = null;
      void quietly(() => ch.close());
      if (!this.stopped) setTimeout(() => this.o.onChannelLost(this), REQUEUE_PAUSE_MS).unref();
      return;
    }
    if (this.stopped) {
      this.settle(ch, msg, 'requeue');
      return;
    }
    const task = this.handle(ch, msg);
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  private async handle(ch: Channel, msg: ConsumeMessage): Promise<void> {
    let job: Job;
    try {
      job = decodeJob(this.o.queue, msg);
    } catch (err) {
      await this.fail(
        ch,
        msg,
        new PermanentJobError(`undecodable message: ${errorMessage(err)}`, { cause: err }),
      );
      return;
    }
    try {
      await this.o.handler(job);
    } catch (err) {
      await this.fail(ch, msg, err);
      return;
    }
    this.settle(ch, msg, 'ack');
  }

  private async fail(ch: Channel, msg: ConsumeMessage, err: unknown): Promise<void> {
    const attempt = attemptOf(msg);
    const outcome = onFailure(err, attempt, this.o.policy);
    const message = errorMessage(err);
    try {
      if (outcome.kind === 'dead') await this.o.bury(msg, message);
      else await this.o.retry(msg, attempt + 1, outcome.delayMs, message);
    } catch (forwardErr) {
      this.o.logger.error(
        { err: forwardErr, queue: this.o.names.main, messageId: msg.properties.messageId },
        'rabbit: could not forward a failed job; handing it back to the broker',
      );
      await new Promise((resolve) => setTimeout(resolve, REQUEUE_PAUSE_MS));
      this.settle(ch, msg, 'requeue');
      return;
    }
    this.settle(ch, msg, 'ack');
  }

  /** Acks or requeues on the delivery's own channel; if that channel is gone, the broker redelivers anyway. */
  private settle(ch: Channel, msg: Message, how: 'ack' | 'requeue'): void {
    try {
      if (how === 'ack') ch.ack(msg);
      else ch.nack(msg, false, true);
    } catch (err) {
      this.o.logger.warn(
        { err, queue: this.o.names.main, messageId: msg.properties.messageId },
        'rabbit: channel closed before the outcome was sent; the job will be delivered again',
      );
    }
  }
}
