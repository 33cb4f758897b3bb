/**
 * Small RabbitMQ helpers of `RabbitJobQueue`: confirmed sends, bounded calls, and logging
 * of the recovering connection's life.
 */
import type { ConfirmChannel, RecoveringChannelModel } from 'amqplib';
import { UnavailableError } from '../../../contract/errors.js';
import type { QueueLogger } from './logger.js';
import type { Outgoing } from './rabbit-topology.js';

/** How long a call may wait (e.g. for a reconnection) before it fails with `UnavailableError`. */
export const CALL_TIMEOUT_MS = 10_000;

/**
 * Runs `work`, failing with `UnavailableError` after `CALL_TIMEOUT_MS` or when it throws
 * (keeping the driver error as `cause`). `RangeError`s (caller mistakes) pass unchanged.
 */
export async function withTimeout<T>(what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new UnavailableError(`RabbitMQ did not answer (${what}).`)),
      CALL_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([work(), timeout]);
  } catch (err) {
    if (err instanceof UnavailableError || err instanceof RangeError) throw err;
    throw new UnavailableError(`RabbitMQ failed (${what}).`, err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a cleanup call (close, cancel) whose failure does not matter: amqplib throws
 * synchronously on a channel that is already closed, and rejects on one closing.
 */
export async function quietly(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch {
    // Already closed: nothing left to clean up.
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Sends to `queueName`; resolves once the broker confirmed, rejects on a nack or a closed channel. */
export function sendConfirmed(ch: ConfirmChannel, queueName: string, out: Outgoing): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    try {
      ch.sendToQueue(queueName, out.content, out.options, (err: unknown) => {
        if (err) reject(toError(err));
        else resolve();
      });
    } catch (err) {
      reject(toError(err));
    }
  });
}

/** Logs what the recovering connection goes through; its 'error' listener also keeps errors from being thrown. */
export function logConnectionEvents(conn: RecoveringChannelModel, log: QueueLogger): void {
  conn.on('error', (err: Error) => log.error({ err }, 'rabbit: connection error'));
  conn.on('handler-error', (err: Error, event: string) =>
    log.error({ err, event }, 'rabbit: listener threw'),
  );
  conn.on('disconnect', (err: Error) => log.warn({ err }, 'rabbit: connection lost; reconnecting'));
  conn.on('connect-failed', (err: Error) => log.warn({ err }, 'rabbit: connection attempt failed'));
  conn.on('reconnect-scheduled', (info: { attempt: number; delay: number; error: Error }) =>
    log.warn({ attempt: info.attempt, delayMs: info.delay, err: info.error }, 'rabbit: reconnect scheduled'),
  );
  conn.on('reconnect-failed', (err: Error) => log.error({ err }, 'rabbit: gave up reconnecting'));
  conn.on('blocked', (reason: string) => log.warn({ reason }, 'rabbit: broker blocked publishing'));
}
