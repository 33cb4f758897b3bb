/**
 * What job handlers need, passed in by `worker/main.ts` or `server/main.ts`
 * (AIO_WORKER=inline) — no module-level singletons.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { Clock } from '../core/domain/clock.js';
import type { BlobStore } from '../core/ports/blob-store.js';
import type { Cache } from '../core/ports/cache.js';
import type { JobQueue } from '../core/ports/job-queue.js';
import type { MetadataStore } from '../core/ports/metadata-store.js';

export interface WorkerDeps {
  config: Readonly<Config>;
  /** HMAC key for signed download URLs (zips). */
  jwtSecret: Uint8Array;
  metadata: MetadataStore;
  queue: JobQueue;
  cache: Cache;
  blobs: BlobStore;
  logger: Logger;
  clock: Clock;
}
