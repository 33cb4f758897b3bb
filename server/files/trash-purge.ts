/**
 * `TrashPurge`: empties the trash of items older than the retention (30 days by
 * default), for every owner, and deletes the blobs nothing references any more; then
 * deletes the blobs whose keeps expired (zips whose URL is no longer valid) unless
 * something else references them. Several API instances may run one each: a Cache lock
 * lets only one sweep at a time.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/domain/clock.js';
import type { BlobStore } from '../../core/ports/blob-store.js';
import type { Cache } from '../../core/ports/cache.js';
import type { MetadataStore } from '../../core/ports/metadata-store.js';
import { announceLatest } from './announce.js';
import { deleteBlobIfUnreferenced } from '../../core/blob-holds.js';
import { deleteUnreferencedBlobs } from './blob-gc.js';

export const TRASH_RETENTION_MS = 30 * 86_400_000;

export interface TrashPurgeOptions {
  metadata: MetadataStore;
  blobs: BlobStore;
  cache: Cache;
  clock: Clock;
  logger?: Logger;
  /** How long an item stays in the trash. Default 30 days. */
  retentionMs?: number;
  /** Time between sweeps. Default 1 h. */
  intervalMs?: number;
  /** Nodes fetched per batch of a sweep. Default 100. */
  batchSize?: number;
}

export interface PurgeResult {
  purged: number;
  /** Blobs deleted, of purged nodes and of expired keeps. */
  blobsDeleted: number;
  /** Expired keeps dropped (`keepBlob`: zips past their URL's validity). */
  keepsExpired: number;
}

const LOCK_KEY = 'lock:trash-purge';

export class TrashPurge {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PurgeResult> | undefined;
  private stopped = true;

  constructor(private readonly options: TrashPurgeOptions) {}

  /** Sweeps once now, then every `intervalMs`. The timer does not keep the process alive. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = (): void => {
      this.runOnce()
        .catch((err: unknown) => this.options.logger?.error({ err }, 'trash purge failed'))
        .finally(() => {
          if (this.stopped) return;
          this.timer = setTimeout(tick, this.options.intervalMs ?? 3_600_000);
          this.timer.unref();
        });
    };
    tick();
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One sweep (skipped, with zero counts, while another instance holds the lock). */
  runOnce(): Promise<PurgeResult> {
    this.running ??= this.sweep().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweep(): Promise<PurgeResult> {
    const { metadata, cache, clock } = this.options;
    const retention = this.options.retentionMs ?? TRASH_RETENTION_MS;
    const batch = this.options.batchSize ?? 100;
    let lock: Awaited<ReturnType<Cache['tryLock']>> = null;
    try {
      lock = await cache.tryLock(LOCK_KEY, 10 * 60_000);
      if (lock === null) return { purged: 0, blobsDeleted: 0, keepsExpired: 0 };
    } catch (err) {
      // Without the Cache there is no lock; purging is idempotent, so go on alone.
      this.options.logger?.warn({ err }, 'trash purge runs without a lock');
    }
    const result: PurgeResult = { purged: 0, blobsDeleted: 0, keepsExpired: 0 };
    try {
      const before = new Date(clock.now().getTime() - retention);
      // A node restored or purged meanwhile, or broken, is skipped in this sweep.
      await drain(
        batch,
        (limit) => metadata.listTrashedBefore(before, limit),
        (node) => node.id,
        async (node) => {
          const { droppedBlobs } = await metadata.purgeNode(node.ownerId, node.id);
          result.purged += 1;
          result.blobsDeleted += await deleteUnreferencedBlobs(this.options, droppedBlobs);
          await announceLatest(this.options, node.ownerId);
        },
        (err, node) => this.options.logger?.warn({ err, nodeId: node.id }, 'could not purge a trashed node'),
      );
      // Each expired keep's blob goes unless something else references it, then the keep
      // (in that order: a failed delete leaves the keep for the next sweep).
      await drain(
        batch,
        (limit) => metadata.listExpiredBlobKeeps(clock.now(), limit),
        (keep) => `${keep.sha256}:${keep.holder}`,
        async (keep) => {
          if (await deleteBlobIfUnreferenced(this.options, keep.sha256)) result.blobsDeleted += 1;
          await metadata.dropBlobKeep(keep.holder, keep.sha256);
          result.keepsExpired += 1;
        },
        (err, keep) =>
          this.options.logger?.warn({ err, sha256: keep.sha256 }, 'could not sweep an expired blob keep'),
      );
    } finally {
      await lock?.release().catch(() => undefined);
    }
    return result;
  }
}

/**
 * Handles every item `list` gives, `batch` at a time, until it gives none. An item whose
 * handling failed is reported and left out for the rest of this sweep (the list is asked
 * for as many more, so the failed ones cannot fill a page).
 */
async function drain<T>(
  batch: number,
  list: (limit: number) => Promise<T[]>,
  keyOf: (item: T) => string,
  handle: (item: T) => Promise<void>,
  report: (err: unknown, item: T) => void,
): Promise<void> {
  const failed = new Set<string>();
  for (;;) {
    const items = (await list(batch + failed.size)).filter((item) => !failed.has(keyOf(item)));
    if (items.length === 0) return;
    for (const item of items.slice(0, batch)) {
      try {
        await handle(item);
      } catch (err) {
        failed.add(keyOf(item));
        report(err, item);
      }
    }
  }
}
