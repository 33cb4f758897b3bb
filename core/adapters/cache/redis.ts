/**
 * RedisCache: the distributed `Cache` over ioredis. Shared by every API instance and
 * worker pointing at the same Redis (rate-limit counters, upload progress, token
 * denylist, download-URL cache, change notifications, locks).
 *
 * Failure model: no offline queue and a bounded command time, so while Redis is down
 * every method rejects within `commandTimeoutMs` (usually at once) with
 * `UnavailableError` instead of queueing or hanging. The client keeps reconnecting
 * in the background and the same instance works again once Redis is back.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { UnavailableError } from '../../../contract/errors.js';
import type { Cache, Counter, Lock, Unsubscribe } from '../../ports/cache.js';

export interface RedisCacheOptions {
  /** Upper bound for one command, in ms. Default 500. */
  commandTimeoutMs?: number;
  /** Prepended to every key and channel, so several deployments or test runs can share one Redis. */
  keyPrefix?: string;
}

/**
 * How long `connect` (and the lazy subscriber connection) may take before giving up; also
 * ioredis's own connect timeout. A refused connection fails at once; this only bounds a
 * silent host. It was 2 s with a 1 s ioredis timeout, and a loaded CI run once failed a
 * server's start against a healthy Redis with "Connection is closed" inside that second
 * (the likely cause: the timeout's timer handled before the connection's own event).
 */
const CONNECT_DEADLINE_MS = 5_000;

// INCR + PEXPIRE on the first hit + PTTL in one script, so concurrent hits never see
// a counter without a window. A counter left without expiry (set by hand) gets one.
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

// Compare-and-delete: a holder whose lock expired must not free someone else's lock.
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// Replies that mean "Redis is there but cannot serve now", not a programming error.
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/;

interface Subscription {
  handler: (message: string) => void;
}

export class RedisCache implements Cache {
  private readonly client: Redis;
  private readonly prefix: string;
  private subscriber: Redis | undefined;
  private subscriberConnecting: Promise<Redis> | undefined;
  private readonly channels = new Map<string, Set<Subscription>>();
  private closed = false;

  private constructor(client: Redis, prefix: string) {
    this.client = client;
    this.prefix = prefix;
  }

  /**
   * Connects and waits until Redis answers. Throws `UnavailableError` within about 2 s
   * when Redis is unreachable (and stops retrying in that case).
   */
  static async connect(url: string, options?: RedisCacheOptions): Promise<RedisCache> {
    const client = new Redis(url, clientOptions(options?.commandTimeoutMs ?? 500));
    watchErrors(client);
    await connectWithin(client, CONNECT_DEADLINE_MS, 'Redis');
    return new RedisCache(client, options?.keyPrefix ?? '');
  }

  async get(key: string): Promise<string | null> {
    return this.run('GET', (c) => c.get(this.key(key)));
  }

  /** `ttlMs` ≤ 0 stores nothing and removes the key, matching an already-expired entry. */
  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.run('SET', async (c) => {
      if (ttlMs === undefined) await c.set(this.key(key), value);
      else if (ttlMs <= 0) await c.del(this.key(key));
      else await c.set(this.key(key), value, 'PX', Math.ceil(ttlMs));
    });
  }

  async del(key: string): Promise<void> {
    await this.run('DEL', (c) => c.del(this.key(key)));
  }

  async hit(key: string, windowMs: number): Promise<Counter> {
    const reply = await this.run('HIT', (c) =>
      c.eval(HIT_SCRIPT, 1, this.key(key), Math.max(1, Math.ceil(windowMs))),
    );
    const [count, ttl] = reply as [number, number];
    return { count, resetMs: ttl };
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.run('PUBLISH', (c) => c.publish(this.key(channel), message));
  }

  /**
   * Subscribes on a separate connection (a subscribing Redis connection can run no other
   * commands), opened on first use. Resolves once Redis confirmed the subscription;
   * after a reconnect ioredis subscribes again by itself.
   */
  async subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe> {
    const subscriber = await this.openSubscriber();
    const name = this.key(channel);
    const subscription: Subscription = { handler };
    let subscribers = this.channels.get(name);
    const first = subscribers === undefined;
    if (subscribers === undefined) {
      subscribers = new Set();
      this.channels.set(name, subscribers);
    }
    subscribers.add(subscription);
    if (first) {
      try {
        await this.run('SUBSCRIBE', () => subscriber.subscribe(name), subscriber);
      } catch (err) {
        subscribers.delete(subscription);
        if (subscribers.size === 0) this.channels.delete(name);
        throw err;
      }
    }
    return async () => {
      const current = this.channels.get(name);
      if (current === undefined || !current.delete(subscription)) return;
      if (current.size > 0) return;
      this.channels.delete(name);
      await this.run('UNSUBSCRIBE', () => subscriber.unsubscribe(name), subscriber);
    };
  }

  async tryLock(key: string, ttlMs: number): Promise<Lock | null> {
    const name = this.key(key);
    const token = randomBytes(16).toString('hex');
    const reply = await this.run('LOCK', (c) =>
      c.set(name, token, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'),
    );
    if (reply !== 'OK') return null;
    return {
      release: async () => {
        await this.run('UNLOCK', (c) => c.eval(RELEASE_SCRIPT, 1, name, token));
      },
    };
  }

  /** Rejects with `UnavailableError` unless Redis answers PONG. */
  async ping(): Promise<void> {
    const reply = await this.run('PING', (c) => c.ping());
    if (reply !== 'PONG') throw new UnavailableError(`Redis answered PING with ${String(reply)}.`);
  }

  /** Quits both connections (waiting for pending replies when Redis is up; dropping them when it is not). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.channels.clear();
    const connecting = this.subscriberConnecting;
    const subscriber = this.subscriber ?? (await connecting?.catch(() => undefined));
    await Promise.all([quit(this.client), subscriber === undefined ? undefined : quit(subscriber)]);
  }

  private key(key: string): string {
    return this.prefix + key;
  }

  /** Runs one command, turning connection trouble into `UnavailableError`. */
  private async run<T>(command: string, fn: (client: Redis) => Promise<T>, client = this.client): Promise<T> {
    if (this.closed) throw new UnavailableError('The Redis cache is closed.');
    // Known down: fail at once without building a command.
    if (client.status !== 'ready') {
      throw new UnavailableError(`Redis is unavailable (${client.status}); ${command} not sent.`);
    }
    try {
      return await fn(client);
    } catch (err) {
      throw translate(err, command);
    }
  }

  private async openSubscriber(): Promise<Redis> {
    if (this.closed) throw new UnavailableError('The Redis cache is closed.');
    if (this.subscriber !== undefined) return this.subscriber;
    this.subscriberConnecting ??= (async () => {
      const subscriber = this.client.duplicate({ lazyConnect: true });
      watchErrors(subscriber);
      subscriber.on('message', (channel: string, message: string) => this.deliver(channel, message));
      try {
        await connectWithin(subscriber, CONNECT_DEADLINE_MS, 'Redis subscriber');
      } finally {
        this.subscriberConnecting = undefined;
      }
      if (this.closed) {
        await quit(subscriber);
        throw new UnavailableError('The Redis cache is closed.');
      }
      this.subscriber = subscriber;
      return subscriber;
    })();
    return this.subscriberConnecting;
  }

  private deliver(channel: string, message: string): void {
    const subscribers = this.channels.get(channel);
    if (subscribers === undefined) return;
    for (const subscription of [...subscribers]) {
      try {
        subscription.handler(message);
      } catch (err) {
        // A throwing handler would otherwise escape into ioredis's socket parser.
        process.emitWarning(`RedisCache subscriber on ${channel} threw: ${String(err)}`);
      }
    }
  }
}

function clientOptions(commandTimeoutMs: number): RedisOptions {
  return {
    // connect() then reports the first failure, instead of retrying silently from the constructor.
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    // Commands caught by a dropped connection fail at once rather than being replayed later.
    maxRetriesPerRequest: 0,
    connectTimeout: CONNECT_DEADLINE_MS,
    // Keep trying forever in the background, backing off to one attempt a second.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1_000),
  };
}

/** ioredis reports every failed reconnect as an 'error' event; unheard, Node would print them. */
function watchErrors(client: Redis): void {
  // Failures surface to callers as UnavailableError from the command that hit them.
  client.on('error', () => undefined);
}

/** Connects with a deadline; on failure stops the background retries and throws `UnavailableError`. */
async function connectWithin(client: Redis, deadlineMs: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ready = client.connect();
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    await Promise.race([ready, deadline]);
  } catch (err) {
    ready.catch(() => undefined);
    client.disconnect();
    throw new UnavailableError(`${what} is unreachable: ${errorMessage(err)}`, err);
  } finally {
    clearTimeout(timer);
  }
}

async function quit(client: Redis): Promise<void> {
  try {
    if (client.status === 'ready') {
      await client.quit();
      return;
    }
  } catch {
    // Redis went away while quitting; disconnect below drops the socket.
  }
  client.disconnect();
}

function translate(err: unknown, command: string): Error {
  if (err instanceof Error && err.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message)) return err;
  return new UnavailableError(`Redis ${command} failed: ${errorMessage(err)}`, err);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
