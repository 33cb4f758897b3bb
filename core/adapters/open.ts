/**
 * `openAdapters(config)`: configuration → one adapter per port. Each port is chosen on
 * its own by its variable (`MONGODB_URI`, `AMQP_URL`, `REDIS_URL`; unset = embedded),
 * so any mix runs. Drivers are imported lazily, so a process loads only the drivers it
 * uses (no mongoose in the embedded mode, no better-sqlite3 with MongoDB + RabbitMQ).
 *
 * The SQLite file `<dataDir>/aio.db` is opened once and shared by the SQLite metadata
 * store and the embedded queue, so a job and its metadata can commit together.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { UnavailableError } from '../../contract/errors.js';
import type { Config } from '../config.js';
import type { Clock } from '../domain/clock.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { Cache } from '../ports/cache.js';
import type { JobQueue } from '../ports/job-queue.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { SqliteDatabase } from '../sqlite.js';

export interface AdapterKinds {
  metadata: 'sqlite' | 'mongodb';
  queue: 'embedded' | 'rabbitmq';
  cache: 'memory' | 'redis';
}

export interface Adapters {
  metadata: MetadataStore;
  queue: JobQueue;
  cache: Cache;
  blobs: BlobStore;
  kinds: AdapterKinds;
  /** Closes queue (stopping its consumers), blob store, cache, metadata, then the SQLite file. Safe to call twice. */
  close(): Promise<void>;
}

export interface OpenAdaptersOptions {
  logger: Logger;
  clock: Clock;
}

/** The SQLite file of the embedded mode, inside the data dir. */
export function sqliteFile(config: Readonly<Config>): string {
  return path.join(config.dataDir, 'aio.db');
}

/** A URL with any `user:password@` removed, for messages and logs. */
export function redactUrlCredentials(url: string): string {
  const scheme = url.indexOf('://');
  if (scheme < 0) return url;
  const rest = url.slice(scheme + 3);
  const authorityEnd = rest.search(/[?#]/);
  const beforeQuery = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  // The last '@' before the query ends the credentials (a password may hold an unescaped '@' or '/').
  const at = beforeQuery.lastIndexOf('@');
  return at < 0 ? url : `${url.slice(0, scheme + 3)}${rest.slice(at + 1)}`;
}

/**
 * Opens every adapter. When one fails, the ones already open are closed and an
 * `UnavailableError` names the component and its URL (without credentials).
 */
export async function openAdapters(
  config: Readonly<Config>,
  options: OpenAdaptersOptions,
): Promise<Adapters> {
  const { logger, clock } = options;
  const kinds: AdapterKinds = {
    metadata: config.mongodbUri ? 'mongodb' : 'sqlite',
    queue: config.amqpUrl ? 'rabbitmq' : 'embedded',
    cache: config.redisUrl ? 'redis' : 'memory',
  };
  // Closers of what is open so far, run in reverse order of registration.
  const closers: Array<{ name: string; close: () => Promise<void> | void }> = [];

  const closeAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    while (closers.length > 0) {
      const closer = closers.pop() as (typeof closers)[number];
      try {
        await closer.close();
      } catch (err) {
        logger.error({ err, component: closer.name }, 'closing an adapter failed');
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'closing the adapters failed');
  };

  const step = async <T>(
    component: string,
    where: string | undefined,
    open: () => Promise<T>,
  ): Promise<T> => {
    try {
      return await open();
    } catch (err) {
      await closeAll().catch(() => undefined);
      throw openError(component, where, err);
    }
  };

  // Registered first, so it closes last: both SQLite users must be closed before their database.
  let db: SqliteDatabase | undefined;
  if (kinds.metadata === 'sqlite' || kinds.queue === 'embedded') {
    const file = sqliteFile(config);
    db = await step('SQLite database', file, async () => {
      const { openSqlite } = await import('../sqlite.js');
      return openSqlite(file);
    });
    const opened = db;
    closers.push({
      name: 'sqlite',
      close: () => {
        if (opened.open) opened.close();
      },
    });
  }
  const sharedDb = db;

  const metadata = await step('metadata store', config.mongodbUri ?? sqliteFile(config), async () => {
    if (config.mongodbUri) {
      const { MongoMetadataStore } = await import('./metadata/mongo.js');
      return MongoMetadataStore.connect(config.mongodbUri, { clock });
    }
    const { SqliteMetadataStore } = await import('./metadata/sqlite.js');
    return new SqliteMetadataStore(sharedDb as SqliteDatabase, { clock });
  });
  closers.push({ name: 'metadata', close: () => metadata.close() });

  const cache = await step('cache', config.redisUrl ?? 'memory', async (): Promise<Cache> => {
    if (config.redisUrl) {
      const { RedisCache } = await import('./cache/redis.js');
      return RedisCache.connect(config.redisUrl);
    }
    const { MemoryCache } = await import('./cache/memory.js');
    return new MemoryCache({ clock });
  });
  closers.push({ name: 'cache', close: () => cache.close() });

  // Opened before the queue, so it closes after the queue has stopped its consumers.
  const blobs = await step('blob store', config.storageDir, async () => {
    const { LocalBlobStore } = await import('./blob/local.js');
    return LocalBlobStore.open(config.storageDir);
  });
  closers.push({ name: 'blob store', close: () => blobs.close() });

  const queue = await step('job queue', config.amqpUrl ?? sqliteFile(config), async (): Promise<JobQueue> => {
    if (config.amqpUrl) {
      const { RabbitJobQueue } = await import('./queue/rabbit.js');
      return RabbitJobQueue.connect(config.amqpUrl, { logger });
    }
    const { EmbeddedJobQueue } = await import('./queue/embedded.js');
    return new EmbeddedJobQueue(sharedDb as SqliteDatabase, { clock, logger });
  });
  closers.push({ name: 'queue', close: () => queue.close() });

  let closing: Promise<void> | undefined;
  return {
    metadata,
    queue,
    cache,
    blobs,
    kinds,
    close() {
      closing ??= closeAll();
      return closing;
    },
  };
}

function openError(component: string, where: string | undefined, err: unknown): UnavailableError {
  const safe = where === undefined ? undefined : redactUrlCredentials(where);
  let reason = err instanceof Error ? err.message : String(err);
  // Driver messages sometimes repeat the URL they were given, credentials included.
  if (where !== undefined && safe !== where) reason = reason.split(where).join(safe ?? '');
  return new UnavailableError(`Cannot open the ${component}${safe ? ` at ${safe}` : ''}: ${reason}`, err);
}
