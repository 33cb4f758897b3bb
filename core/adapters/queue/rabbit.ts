/**
 * RabbitJobQueue: the job queue of the distributed mode, on RabbitMQ via amqplib.
 *
 * Topology and message format: see `rabbit-topology.ts` (durable priority queue, one
 * TTL retry queue per backoff delay dead-lettering back, and a `.dead` queue). Messages
 * are persistent and published on a confirm channel: `publish` resolves only after the
 * broker confirmed. Consumers ack manually after their handler resolved (see
 * `rabbit-consumer.ts`).
 *
 * The connection recovers by itself (amqplib's recovery, exponential backoff with
 * jitter): after each reconnection the topology is declared again and every consumer
 * restarted. Connection and channel errors are logged, never thrown at the process.
 * Calls made while disconnected wait for the connection up to 10 s, then fail with
 * `UnavailableError`.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import type { Channel, ChannelModel, RecoveringChannelModel } from 'amqplib';
import { UnavailableError } from '../../../contract/errors.js';
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
import { jobPriority, retryPolicy } from './backoff.js';
import type { QueueLogger } from './logger.js';
import { consoleQueueLogger } from './logger.js';
import { logConnectionEvents, quietly, withTimeout } from './rabbit-confirm.js';
import { RabbitConsumer } from './rabbit-consumer.js';
import { RabbitPublisher } from './rabbit-publisher.js';
import { declareQueue, declareRetryQueue, decodeDead, encodeJob, queueNames } from './rabbit-topology.js';

export interface RabbitJobQueueOptions {
  /** Prepended to every queue name (test isolation, several installations on one vhost). */
  prefix?: string;
  logger?: QueueLogger;
}

export class RabbitJobQueue implements JobQueue {
  private conn: RecoveringChannelModel | null = null;
  /** The live connection, set while connected. */
  private model: ChannelModel | null = null;
  private readonly publisher: RabbitPublisher;
  private readonly consumers = new Set<RabbitConsumer>();
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly prefix: string,
    private readonly logger: QueueLogger,
  ) {
    this.publisher = new RabbitPublisher(prefix, logger, () => {
      const conn = this.model ?? this.conn;
      if (!conn) return Promise.reject(new UnavailableError('Not connected to RabbitMQ.'));
      return conn.createConfirmChannel();
    });
  }

  /**
   * Connects (retrying a few times, then `UnavailableError`) and returns the queue. Once
   * connected it reconnects forever on connection loss.
   */
  static async connect(url: string, options: RabbitJobQueueOptions = {}): Promise<RabbitJobQueue> {
    const queue = new RabbitJobQueue(options.prefix ?? '', options.logger ?? consoleQueueLogger);
    try {
      const conn = await connect(url, {
        recovery: {
          initialDelay: 200,
          maxDelay: 10_000,
          initialMaxRetries: 3,
          maxRetries: Infinity,
          waitForConnect: false,
          setup: (model: ChannelModel) => queue.onConnect(model),
        },
      });
      queue.conn = conn;
      logConnectionEvents(conn, queue.logger);
      conn.on('connect-failed', () => (queue.model = null));
      await conn.waitForConnect();
    } catch (err) {
      throw new UnavailableError('Cannot connect to RabbitMQ.', err);
    }
    return queue;
  }

  /** Every queue name this instance declared (for tests and tooling that remove them). */
  get declaredQueues(): string[] {
    return [...this.publisher.touched];
  }

  async publish(spec: JobSpec): Promise<{ id: string }> {
    this.assertOpen();
    const priority = jobPriority(spec);
    const id = randomUUID();
    const out = encodeJob(id, spec.payload, spec.idempotencyKey, priority, Date.now());
    await this.publisher.publish(spec.queue, out);
    return { id };
  }

  async consume(queue: QueueName, handler: JobHandler, options?: ConsumeOptions): Promise<Consumer> {
    this.assertOpen();
    const names = queueNames(this.prefix, queue);
    this.publisher.touch(names.main, names.dead);
    const consumer = new RabbitConsumer({
      queue,
      names,
      handler,
      policy: retryPolicy(options),
      logger: this.logger,
      retry: (msg, nextAttempt, delayMs, error) =>
        this.publisher.retry(queue, msg, nextAttempt, delayMs, error),
      bury: (msg, error) => this.publisher.bury(queue, msg, error),
      onChannelLost: (c) => this.restart(c),
    });
    this.consumers.add(consumer);
    // While disconnected the consumer starts with the next connection (see onConnect).
    if (this.model) {
      try {
        await consumer.start(this.model);
      } catch (err) {
        this.consumers.delete(consumer);
        consumer.abandon();
        throw new UnavailableError(`Cannot consume ${names.main}.`, err);
      }
    }
    return {
      stop: async () => {
        await consumer.stop();
        this.consumers.delete(consumer);
      },
    };
  }

  /**
   * Reads up to `limit` messages of `Q.dead` with `basic.get` WITHOUT acking them on a
   * throw-away channel, then closes that channel: the broker puts unacked messages back
   * at their original positions, so nothing is removed.
   */
  async listDead(queue: QueueName, limit: number): Promise<DeadJob[]> {
    const names = queueNames(this.prefix, queue);
    return withTimeout('listDead', () =>
      this.withChannel(async (ch) => {
        await declareQueue(ch, names);
        const dead: DeadJob[] = [];
        while (dead.length < limit) {
          const msg = await ch.get(names.dead, { noAck: false });
          if (msg === false) break;
          dead.push(decodeDead(queue, msg));
        }
        return dead;
      }),
    );
  }

  /**
   * Declares the queue's topology when missing, then: `ready` and `dead` come from the
   * broker (checkQueue); `delayed` counts the retry queues
   * this instance has used; `inFlight` the handlers of this instance running now.
   */
  async depth(queue: QueueName): Promise<QueueDepth> {
    const names = queueNames(this.prefix, queue);
    return withTimeout('depth', () =>
      this.withChannel(async (ch) => {
        await declareQueue(ch, names);
        const ready = (await ch.checkQueue(names.main)).messageCount;
        const dead = (await ch.checkQueue(names.dead)).messageCount;
        let delayed = 0;
        for (const delayMs of this.publisher.retryDelays.get(queue) ?? []) {
          delayed += (await declareRetryQueue(ch, names, delayMs)).messageCount;
        }
        let inFlight = 0;
        for (const c of this.consumers) if (c.queue === queue) inFlight += c.running;
        return { ready, delayed, inFlight, dead };
      }),
    );
  }

  async ping(): Promise<void> {
    await withTimeout('ping', () => this.withChannel(async () => undefined));
  }

  /** Stops the consumers (waiting for in-flight handlers and their acks), then closes channels and connection. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await Promise.all([...this.consumers].map((c) => c.stop()));
      this.consumers.clear();
      // Closing the connection closes the publish channel too, and unlike awaiting that
      // channel it cannot hang while a reconnection is pending.
      this.publisher.reset();
      const conn = this.conn;
      if (conn) await quietly(() => conn.close());
    })();
    return this.closing;
  }

  /**
   * Drops the connection at once without waiting for in-flight handlers, as a crash would
   * (e.g. after a shutdown deadline). The broker gives their unacked messages to other consumers.
   */
  async abandon(): Promise<void> {
    this.closed = true;
    for (const c of this.consumers) c.abandon();
    this.consumers.clear();
    this.publisher.reset();
    const conn = this.conn;
    if (conn) await quietly(() => conn.close());
  }

  // ---------- connection life ----------

  /** Runs after every (re)connection, before the connection is used (amqplib's recovery `setup`). */
  private async onConnect(model: ChannelModel): Promise<void> {
    model.on('error', (err: Error) => this.logger.error({ err }, 'rabbit: connection error'));
    model.on('close', () => {
      if (this.model !== model) return;
      this.model = null;
      this.publisher.reset();
    });
    this.model = model;
    this.publisher.reset();
    // A failure here makes amqplib close this connection and try again later.
    for (const consumer of this.consumers) await consumer.start(model);
  }

  private restart(consumer: RabbitConsumer): void {
    if (this.closed || !this.model || !this.consumers.has(consumer)) return;
    consumer.start(this.model).catch((err: unknown) => {
      this.logger.error(
        { err, queue: consumer.queue },
        'rabbit: restarting a consumer failed; retrying on reconnect',
      );
    });
  }

  // ---------- channels and publishing ----------

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('The job queue is closed.');
  }

  private openChannel(): Promise<Channel> {
    if (this.model) return this.model.createChannel();
    if (!this.conn) return Promise.reject(new UnavailableError('Not connected to RabbitMQ.'));
    return this.conn.createChannel();
  }

  private async withChannel<T>(work: (ch: Channel) => Promise<T>): Promise<T> {
    const ch = await this.openChannel();
    ch.on('error', (err: Error) => this.logger.warn({ err }, 'rabbit: channel error'));
    try {
      return await work(ch);
    } finally {
      await quietly(() => ch.close());
    }
  }
}
