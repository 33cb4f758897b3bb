/**
 * Everything the HTTP app needs, passed in by `server/main.ts` (or a test) — no
 * module-level singletons.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { Clock } from '../core/domain/clock.js';
import type { BlobStore } from '../core/ports/blob-store.js';
import type { Cache } from '../core/ports/cache.js';
import type { JobQueue } from '../core/ports/job-queue.js';
import type { MetadataStore } from '../core/ports/metadata-store.js';
import type { BodyMemory } from './body-memory.js';
import type { Metrics } from './metrics.js';

export interface AppDeps {
  config: Readonly<Config>;
  /** The HMAC key for access tokens and signed URLs (from config or the data dir). */
  jwtSecret: Uint8Array;
  metadata: MetadataStore;
  queue: JobQueue;
  cache: Cache;
  blobs: BlobStore;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Collects request-body buffers early (absent: V8 decides alone); see body-memory.ts. */
  bodyMemory?: BodyMemory;
}
