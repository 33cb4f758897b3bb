/**
 * Change notifications across processes: whoever commits a tree change (API instance
 * or worker) publishes the owner's new seq on the Cache; long-polls on any API
 * instance wake on it. The feed itself lives in the MetadataStore; this is only a nudge,
 * so a lost message costs latency (the long-poll also re-reads on its own), never data.
 */
import type { Cache } from './ports/cache.js';

export function changesChannel(ownerId: string): string {
  return `changes:${ownerId}`;
}

/** Best effort: a Cache outage must not fail the commit that already happened. */
export async function announceChange(cache: Cache, ownerId: string, seq: number): Promise<void> {
  try {
    await cache.publish(changesChannel(ownerId), String(seq));
  } catch {
    // Long-polls fall back to re-reading the store periodically.
  }
}

export function uploadChannel(uploadId: string): string {
  return `upload:${uploadId}`;
}

/** Tells waiters (GET /uploads/:id?wait=N) that an upload reached a final status. Best effort. */
export async function announceUpload(cache: Cache, uploadId: string, status: string): Promise<void> {
  try {
    await cache.publish(uploadChannel(uploadId), status);
  } catch {
    // Waiters re-check on their own.
  }
}

export function batchChannel(batchId: string): string {
  return `upload-batch:${batchId}`;
}

/** Tells waiters (GET /uploads/batch/:id?wait=N) that a batch's files were committed. Best effort. */
export async function announceBatch(cache: Cache, batchId: string): Promise<void> {
  try {
    await cache.publish(batchChannel(batchId), 'done');
  } catch {
    // Waiters re-check on their own.
  }
}
