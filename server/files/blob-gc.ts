/**
 * Deleting blobs once nothing references them (after a purge or dropped revisions).
 */
import type { BlobStore } from '../../core/ports/blob-store.js';
import type { MetadataStore } from '../../core/ports/metadata-store.js';

/**
 * Deletes each blob of `sha256s` that no revision of any user references any more;
 * returns how many were deleted. Blobs are content-addressed and shared, so the
 * reference check is global, not per owner.
 */
export async function deleteUnreferencedBlobs(
  deps: { metadata: MetadataStore; blobs: BlobStore },
  sha256s: readonly string[],
): Promise<number> {
  let deleted = 0;
  for (const sha256 of new Set(sha256s)) {
    if (await deps.metadata.isBlobReferenced(sha256)) continue;
    await deps.blobs.delete(sha256);
    deleted += 1;
  }
  return deleted;
}
