/**
 * RabbitMQ topology and message format of `RabbitJobQueue`.
 *
 * Per job queue Q (names carry the optional prefix):
 * - `Q`: durable classic queue, `x-max-priority: 9`; consumers read it.
 * - `Q.retry.<ms>`: one durable queue per backoff delay with `x-message-ttl: <ms>` that
 *   dead-letters expired messages back to `Q` through the default exchange. It expires
 *   (`x-expires`) a minute after its last declaration — every retry redeclares it, and its
 *   messages leave after `<ms>` — so unused delays do not pile up.
 * - `Q.dead`: durable queue of failed jobs, their error in the `x-error` header.
 *
 * A message is the JSON payload; `messageId` is the idempotency key, `priority` the
 * priority, and headers carry what survives retries: `x-job-id`, `x-attempt`,
 * `x-published-at` (ms), plus `x-last-error` on retries and `x-error`/`x-failed-at` (ms)
 * in the dead-letter queue.
 */
import type { Channel, Message, Options } from 'amqplib';
import type { DeadJob, Job, QueueName } from '../../ports/job-queue.js';

/** How long a retry queue outlives its last declaration beyond its delay. */
const RETRY_QUEUE_IDLE_MS = 60_000;

export interface QueueNames {
  main: string;
  dead: string;
  retry(delayMs: number): string;
}

export function queueNames(prefix: string, queue: QueueName): QueueNames {
  const main = `${prefix}${queue}`;
  return { main, dead: `${main}.dead`, retry: (delayMs) => `${main}.retry.${delayMs}` };
}

/** Declares `Q` and `Q.dead` (idempotent; a mismatch with existing arguments closes the channel). */
export async function declareQueue(ch: Channel, names: QueueNames): Promise<void> {
  await ch.assertQueue(names.main, { durable: true, arguments: { 'x-max-priority': 9 } });
  await ch.assertQueue(names.dead, { durable: true });
}

/** Declares (or renews) the retry queue for `delayMs` and returns its name and current message count. */
export async function declareRetryQueue(
  ch: Channel,
  names: QueueNames,
  delayMs: number,
): Promise<{ name: string; messageCount: number }> {
  const name = names.retry(delayMs);
  const reply = await ch.assertQueue(name, {
    durable: true,
    messageTtl: delayMs,
    deadLetterExchange: '',
    deadLetterRoutingKey: names.main,
    expires: delayMs + RETRY_QUEUE_IDLE_MS,
  });
  return { name, messageCount: reply.messageCount };
}

export interface Outgoing {
  content: Buffer;
  options: Options.Publish;
}

/** A new job's first message. */
export function encodeJob(
  id: string,
  payload: Record<string, unknown>,
  idempotencyKey: string,
  priority: number,
  publishedAt: number,
): Outgoing {
  return {
    content: Buffer.from(JSON.stringify(payload)),
    options: {
      persistent: true,
      contentType: 'application/json',
      messageId: idempotencyKey,
      priority,
      timestamp: Math.floor(publishedAt / 1000),
      headers: { 'x-job-id': id, 'x-attempt': 1, 'x-published-at': publishedAt },
    },
  };
}

/**
 * The same message for its next stop (a retry queue or the dead-letter queue): same body
 * and identity, fresh headers (dropping the broker's growing `x-death` list).
 */
export function forward(msg: Message, headers: Record<string, string | number>): Outgoing {
  const p = msg.properties;
  const old = p.headers ?? {};
  return {
    content: msg.content,
    options: {
      persistent: true,
      contentType: p.contentType as string | undefined,
      messageId: p.messageId as string | undefined,
      priority: p.priority as number | undefined,
      timestamp: p.timestamp as number | undefined,
      headers: {
        'x-job-id': old['x-job-id'] as unknown,
        'x-published-at': old['x-published-at'] as unknown,
        'x-attempt': old['x-attempt'] as unknown,
        ...headers,
      },
    },
  };
}

function numberHeader(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return null;
}

/** The attempt number a delivered message stands for (1 when the header is missing). */
export function attemptOf(msg: Message): number {
  return numberHeader(msg.properties.headers?.['x-attempt']) ?? 1;
}

/** Reads a job from a message. Throws (`SyntaxError`, `TypeError`) when the body is not a JSON object. */
export function decodeJob(queue: QueueName, msg: Message): Job {
  const payload: unknown = JSON.parse(msg.content.toString('utf8'));
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new TypeError('the message body is not a JSON object');
  }
  const headers = msg.properties.headers ?? {};
  const publishedAt =
    numberHeader(headers['x-published-at']) ?? (numberHeader(msg.properties.timestamp) ?? 0) * 1000;
  const id = headers['x-job-id'];
  return {
    id: typeof id === 'string' ? id : String(msg.properties.messageId ?? ''),
    queue,
    payload: payload as Record<string, unknown>,
    idempotencyKey: String(msg.properties.messageId ?? ''),
    priority: numberHeader(msg.properties.priority) ?? 0,
    attempt: attemptOf(msg),
    publishedAt: new Date(publishedAt),
  };
}

/** Reads a message of the dead-letter queue. A body that is not JSON shows as an empty payload. */
export function decodeDead(queue: QueueName, msg: Message): DeadJob {
  let job: Job;
  try {
    job = decodeJob(queue, msg);
  } catch {
    job = { ...decodeJob(queue, { ...msg, content: Buffer.from('{}') }) };
  }
  const headers = msg.properties.headers ?? {};
  const error = headers['x-error'];
  return {
    job,
    error: typeof error === 'string' ? error : String(error ?? ''),
    failedAt: new Date(numberHeader(headers['x-failed-at']) ?? job.publishedAt.getTime()),
  };
}
