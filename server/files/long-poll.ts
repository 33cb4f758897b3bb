/**
 * Reading the change feed with an optional long-poll. To never miss a wake-up the
 * waiter subscribes to the owner's channel *before* it re-reads the store; it also
 * re-reads every `fallbackMs` on its own, so a Cache outage (or a lost message) costs
 * at most that much latency, never a change.
 */
import { changesChannel } from '../../core/changes.js';
import type { Cache, Unsubscribe } from '../../core/ports/cache.js';
import type { Change, MetadataStore } from '../../core/ports/metadata-store.js';

export interface ReadChangesOptions {
  ownerId: string;
  /** Changes with `seq > cursor`. */
  cursor: number;
  limit: number;
  /** 0: answer at once. Otherwise wait up to this long for the first change. */
  waitMs: number;
  /** Aborts the wait (client disconnected); resolves with what is there. */
  signal?: AbortSignal;
  /** Re-read period while waiting. Default 1000 ms. */
  fallbackMs?: number;
}

/** Changes after `cursor`, ascending, at most `limit`; empty only when none came within `waitMs`. */
export async function readChanges(
  deps: { metadata: MetadataStore; cache: Cache },
  options: ReadChangesOptions,
): Promise<Change[]> {
  const { metadata, cache } = deps;
  const { ownerId, cursor, limit, signal } = options;
  const first = await metadata.listChanges(ownerId, cursor, limit);
  if (first.length > 0 || options.waitMs <= 0 || signal?.aborted) return first;

  const deadline = Date.now() + options.waitMs;
  const fallbackMs = options.fallbackMs ?? 1000;
  let nudged = false;
  let wake: () => void = () => undefined;
  let unsubscribe: Unsubscribe | null = null;
  try {
    unsubscribe = await cache.subscribe(changesChannel(ownerId), () => {
      nudged = true;
      wake();
    });
  } catch {
    // Cache down: the periodic re-read below still finds every change.
  }
  try {
    for (;;) {
      nudged = false;
      const changes = await metadata.listChanges(ownerId, cursor, limit);
      if (changes.length > 0 || signal?.aborted) return changes;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return changes;
      if (nudged) continue; // a message arrived while reading: read again at once
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(remaining, fallbackMs));
        function done(): void {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          wake = () => undefined;
          resolve();
        }
        wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    await unsubscribe?.().catch(() => undefined);
  }
}
