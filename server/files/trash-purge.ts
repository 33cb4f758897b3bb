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
      const failed = new Set<string>();
      for (;;) {
        const nodes = (await metadata.listTrashedBefore(before, batch + failed.size)).filter(
          (n) => !failed.has(n.id),
        );
        if (nodes.length === 0) break;
        for (const node of nodes.slice(0, batch)) {
          try {
            const { droppedBlobs } = await metadata.purgeNode(node.ownerId, node.id);
            result.purged += 1;
            result.blobsDeleted += await deleteUnreferencedBlobs(this.options, droppedBlobs);
            await announceLatest(this.options, node.ownerId);
          } catch (err) {
            // Restored or purged meanwhile, or broken: skip it in this sweep.
            failed.add(node.id);
            this.options.logger?.warn({ err, nodeId: node.id }, 'could not purge a trashed node');
          }
        }
      }
      await this.sweepExpiredKeeps(batch, result);
    } finally {
      await lock?.release().catch(() => undefined);
    }
    return result;
  }

  /**
   * Deletes the blob of each expired keep unless something else references it, then drops
   * the keep (in that order: a failed delete leaves the keep for the next sweep).
   */
  private async sweepExpiredKeeps(batch: number, result: PurgeResult): Promise<void> {
    const { metadata, clock } = this.options;
    const failed = new Set<string>();
    for (;;) {
      const keeps = (await metadata.listExpiredBlobKeeps(clock.now(), batch + failed.size)).filter(
        (k) => !failed.has(`${k.sha256}:${k.holder}`),
      );
      if (keeps.length === 0) return;
      for (const keep of keeps.slice(0, batch)) {
        try {
          if (await deleteBlobIfUnreferenced(this.options, keep.sha256)) result.blobsDeleted += 1;
          await metadata.dropBlobKeep(keep.holder, keep.sha256);
          result.keepsExpired += 1;
        } catch (err) {
          failed.add(`${keep.sha256}:${keep.holder}`);
          this.options.logger?.warn({ err, sha256: keep.sha256 }, 'could not sweep an expired blob keep');
        }
      }
    }
  }
}
