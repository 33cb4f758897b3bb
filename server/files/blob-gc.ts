/**
 * Deleting blobs once nothing references them (after a purge or dropped revisions).
 */
import { deleteBlobIfUnreferenced } from '../../core/blob-holds.js';
import type { Clock } from '../../core/domain/clock.js';
import type { BlobStore } from '../../core/ports/blob-store.js';
import type { MetadataStore } from '../../core/ports/metadata-store.js';

/**
 * Deletes each blob of `sha256s` that no revision of any user references any more and
 * that no upload holds (`core/blob-holds.ts`); returns how many were deleted. Blobs are
 * content-addressed and shared, so the reference check is global, not per owner.
 */
export async function deleteUnreferencedBlobs(
  deps: { metadata: MetadataStore; blobs: BlobStore; clock: Clock },
  sha256s: readonly string[],
): Promise<number> {
  let deleted = 0;
  for (const sha256 of new Set(sha256s)) {
    if (await deleteBlobIfUnreferenced(deps, sha256)) deleted += 1;
  }
  return deleted;
}
