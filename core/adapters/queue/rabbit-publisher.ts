/**
 * The publishing side of `RabbitJobQueue`: one shared confirm channel (re-created after
 * it or its connection closed), the declarations it has made, and the three kinds of
 * sends — a new job, a retry, a dead letter. Every send resolves only once the broker
 * confirmed it, and fails with `UnavailableError` (after at most `CALL_TIMEOUT_MS`).
 */
import type { Channel, ConfirmChannel, Message } from 'amqplib';
import type { QueueName } from '../../ports/job-queue.js';
import type { QueueLogger } from './logger.js';
import { sendConfirmed, withTimeout } from './rabbit-confirm.js';
import type { Outgoing } from './rabbit-topology.js';
import { declareQueue, declareRetryQueue, forward, queueNames } from './rabbit-topology.js';

export class RabbitPublisher {
  private channel: Promise<ConfirmChannel> | null = null;
  /** Main queues declared on the current channel. */
  private readonly declared = new Set<string>();
  /** Every queue name declared by this instance (for tooling and tests that remove them). */
  readonly touched = new Set<string>();
  /** The retry delays used per job queue, so `depth` can count delayed jobs. */
  readonly retryDelays = new Map<QueueName, Set<number>>();

  constructor(
    private readonly prefix: string,
    private readonly logger: QueueLogger,
    /** Opens a confirm channel on the live connection (waiting for one if needed). */
    private readonly open: () => Promise<ConfirmChannel>,
  ) {}

  /** Forgets the channel and declarations (a new connection came up or the old one died). */
  reset(): void {
    this.channel = null;
    this.declared.clear();
  }

  touch(...names: string[]): void {
    for (const name of names) this.touched.add(name);
  }

  /** Publishes a new job's message to its queue. */
  async publish(queue: QueueName, out: Outgoing): Promise<void> {
    await withTimeout('publish', async () => {
      const ch = await this.confirmChannel();
      await this.ensureDeclared(ch, queue);
      await sendConfirmed(ch, queueNames(this.prefix, queue).main, out);
    });
  }

  /** Sends a failed delivery to the retry queue for `delayMs` as attempt `attempt`. */
  async retry(
    queue: QueueName,
    msg: Message,
    attempt: number,
    delayMs: number,
    error: string,
  ): Promise<void> {
    const names = queueNames(this.prefix, queue);
    await withTimeout('retry', async () => {
      const ch = await this.confirmChannel();
      // Redeclared on every retry: this renews the retry queue's idle expiry.
      const { name } = await declareRetryQueue(ch, names, delayMs);
      this.touch(name);
      let delays = this.retryDelays.get(queue);
      if (!delays) this.retryDelays.set(queue, (delays = new Set()));
      delays.add(delayMs);
      await sendConfirmed(ch, name, forward(msg, { 'x-attempt': attempt, 'x-last-error': error }));
    });
  }

  /** Sends a failed delivery to the dead-letter queue with its error. */
  async bury(queue: QueueName, msg: Message, error: string): Promise<void> {
    await withTimeout('dead-letter', async () => {
      const ch = await this.confirmChannel();
      await this.ensureDeclared(ch, queue);
      const out = forward(msg, { 'x-error': error, 'x-failed-at': Date.now() });
      await sendConfirmed(ch, queueNames(this.prefix, queue).dead, out);
    });
  }

  private confirmChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const created: Promise<ConfirmChannel> = this.open().then((ch) => {
      ch.on('error', (err: Error) => this.logger.error({ err }, 'rabbit: publish channel error'));
      ch.on('close', () => {
        if (this.channel === created) this.reset();
      });
      return ch;
    });
    created.catch(() => {
      if (this.channel === created) this.channel = null;
    });
    this.channel = created;
    return created;
  }

  private async ensureDeclared(ch: Channel, queue: QueueName): Promise<void> {
    const names = queueNames(this.prefix, queue);
    if (this.declared.has(names.main)) return;
    await declareQueue(ch, names);
    this.touch(names.main, names.dead);
    this.declared.add(names.main);
  }
}
