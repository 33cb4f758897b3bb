/**
 * After a tree mutation the store has already appended the change; this nudges the
 * long-polls of every API instance with the owner's newest seq.
 */
import { announceChange } from '../../core/changes.js';
import type { Cache } from '../../core/ports/cache.js';
import type { MetadataStore } from '../../core/ports/metadata-store.js';

/** Best effort: the mutation is committed, so a failure here only costs latency (long-polls re-read). */
export async function announceLatest(
  deps: { metadata: MetadataStore; cache: Cache },
  ownerId: string,
): Promise<void> {
  let seq: number;
  try {
    seq = await deps.metadata.latestChangeSeq(ownerId);
  } catch {
    return;
  }
  await announceChange(deps.cache, ownerId, seq);
}
