/**
 * Reading the change feed with an optional long-poll. To never miss a wake-up the
 * waiter subscribes to the owner's channel *before* it re-reads the store; it also
 * re-reads every `fallbackMs` on its own, so a Cache outage (or a lost message) costs
 * at most that much latency, never a change.
 */
import { changesChannel } from '../../core/changes.js';
import type { Cache } from '../../core/ports/cache.js';
import type { Change, MetadataStore } from '../../core/ports/metadata-store.js';
import { waitOnChannel } from '../long-poll.js';

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
  const { ownerId, cursor, limit } = options;
  return waitOnChannel(
    cache,
    changesChannel(ownerId),
    () => metadata.listChanges(ownerId, cursor, limit),
    (changes) => changes.length > 0,
    { waitMs: options.waitMs, fallbackMs: options.fallbackMs, signal: options.signal },
  );
}
