/**
 * UploadExpiry: every few minutes, marks `receiving` uploads whose `expiresAt` has
 * passed as `expired` and deletes their staging bytes (tus expiration: "the Server MAY
 * remove unfinished uploads once they expire"). An upload whose bytes are being written
 * right now (its lock is held) is left for the next round. Safe in several processes:
 * the lock and the status re-check make each upload expire once.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/domain/clock.js';
import type { BlobStore } from '../core/ports/blob-store.js';
import type { Cache } from '../core/ports/cache.js';
import type { MetadataStore } from '../core/ports/metadata-store.js';
import type { BackgroundTask } from './lifecycle.js';
import { progressKey } from './uploads/session.js';
import { uploadLockKey } from './uploads/upload-lock.js';

export interface UploadExpiryDeps {
  metadata: MetadataStore;
  blobs: BlobStore;
  cache: Cache;
  clock: Clock;
  logger: Logger;
}

export interface UploadExpiryOptions {
  /** Time between sweeps, ms. Default 5 minutes. */
  intervalMs?: number;
  /** Uploads expired per query. Default 100. */
  batchSize?: number;
}

const SWEEP_LOCK_TTL_MS = 60_000;

export class UploadExpiry implements BackgroundTask {
  readonly name = 'upload-expiry';
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly deps: UploadExpiryDeps,
    options: UploadExpiryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5 * 60_000;
    this.batchSize = options.batchSize ?? 100;
  }

  /** Sweeps now, then every `intervalMs`. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Expires everything due now; returns how many uploads expired. */
  sweep(): Promise<number> {
    this.running ??= this.sweepAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async tick(): Promise<void> {
    try {
      await this.sweep();
    } catch (err) {
      this.deps.logger.error({ err }, 'upload expiry: sweep failed; retrying on the next round');
    }
  }

  private async sweepAll(): Promise<number> {
    let expired = 0;
    const skipped = new Set<string>();
    for (;;) {
      const due = (
        await this.deps.metadata.listExpiredUploads(this.deps.clock.now(), this.batchSize + skipped.size)
      ).filter((u) => !skipped.has(u.id));
      if (due.length === 0) return expired;
      for (const upload of due) {
        if (await this.expire(upload.id)) expired += 1;
        else skipped.add(upload.id);
      }
    }
  }

  /** False when the upload is busy (locked) or no longer due. */
  private async expire(id: string): Promise<boolean> {
    const lock = await this.deps.cache.tryLock(uploadLockKey(id), SWEEP_LOCK_TTL_MS);
    if (!lock) return false;
    try {
      const upload = await this.deps.metadata.getUploadById(id);
      if (!upload || upload.status !== 'receiving' || upload.expiresAt >= this.deps.clock.now()) return false;
      await this.deps.metadata.setUploadStatus(id, 'expired');
      await this.deps.blobs.deleteStaging(id);
      await this.deps.cache.del(progressKey(id)).catch(() => undefined);
      this.deps.logger.info({ uploadId: id, offset: upload.offset, length: upload.length }, 'upload expired');
      return true;
    } finally {
      await lock.release().catch(() => undefined);
    }
  }
}
