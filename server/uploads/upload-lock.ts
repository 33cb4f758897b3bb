/**
 * The per-upload write lock: one request at a time may write an upload's bytes or end
 * it, across every API instance (the lock lives in the shared Cache). It expires on its
 * own when its holder dies, and is kept alive while its holder streams a long body.
 */
import { AppError } from '../../contract/errors.js';
import type { Cache } from '../../core/ports/cache.js';

/** Lifetime of the lock without renewal: how long a crashed holder blocks the upload. */
export const UPLOAD_LOCK_TTL_MS = 30_000;

export function uploadLockKey(uploadId: string): string {
  return `upload:${uploadId}`;
}

export interface HeldUploadLock {
  /** Stops renewing and releases (only if still ours). Never rejects. */
  release(): Promise<void>;
}

/**
 * Takes the lock or throws `AppError('UPLOAD_LOCKED')` (423) when another request holds
 * it. While held it is renewed every third of its lifetime.
 *
 * Renewal: the `Cache` port has no "extend"; both adapters keep a lock's token as the
 * key's value in the shared keyspace, so the holder reads its token right after taking
 * the lock and, on each renewal, rewrites the key with a fresh TTL only while it still
 * holds that token. The check and the write are two commands; the gap is milliseconds
 * against a TTL of seconds, and a writer that lost the lock is still stopped by the
 * blob store's offset check and the metadata offset CAS.
 */
export async function lockUpload(
  cache: Cache,
  uploadId: string,
  ttlMs = UPLOAD_LOCK_TTL_MS,
): Promise<HeldUploadLock> {
  const key = uploadLockKey(uploadId);
  const lock = await cache.tryLock(key, ttlMs);
  if (!lock) throw new AppError('UPLOAD_LOCKED', undefined, { headers: { 'Retry-After': '1' } });
  const token = await cache.get(key).catch(() => null);
  let renewing: Promise<void> | undefined;
  const timer =
    token === null
      ? undefined
      : setInterval(
          () => {
            renewing ??= (async () => {
              try {
                if ((await cache.get(key)) === token) await cache.set(key, token, ttlMs);
              } catch {
                // A Cache hiccup costs at most the lock's remaining lifetime.
              } finally {
                renewing = undefined;
              }
            })();
          },
          Math.max(10, Math.floor(ttlMs / 3)),
        );
  timer?.unref();
  return {
    async release() {
      if (timer) clearInterval(timer);
      await renewing;
      await lock.release().catch(() => undefined);
    },
  };
}
