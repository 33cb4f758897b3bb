/**
 * Blobs are content-addressed and shared by every revision with the same bytes, so a
 * blob whose last reference goes can be deleted while another upload of the same bytes
 * is between "the blob is there" (it moved its bytes in, or found them there) and
 * committing its reference — in this process or another. Without coordination the
 * deleter's "unreferenced?" check and its delete straddle that commit, and the new
 * revision points at nothing.
 *
 * The rule, kept by the metadata store's transactions (`holdBlobs`, `claimBlobDeletion`):
 * - whoever commits a reference to a blob first holds it (`withBlobHold`), then checks
 *   or puts its bytes, then commits, then releases;
 * - whoever deletes a blob first claims it (`deleteBlobIfUnreferenced`), which succeeds
 *   only when no revision references it and no one holds it; a hold waits while a claim
 *   stands.
 * So either the deleter sees the hold or the reference and keeps the blob, or the
 * deletion happens wholly before the hold, and the holder then finds the blob gone and
 * puts (or asks for) the bytes again. Holds and claims expire, so a crashed process
 * blocks nothing for long.
 */
import { randomUUID } from 'node:crypto';
import { UnavailableError } from '../contract/errors.js';
import type { Clock } from './domain/clock.js';
import type { BlobStore } from './ports/blob-store.js';
import type { MetadataStore } from './ports/metadata-store.js';

/** How long a hold lasts unless released (a crashed holder); a commit takes milliseconds. */
const HOLD_TTL_MS = 15 * 60_000;
/** How long a deletion claim lasts unless released; a delete takes milliseconds. */
const CLAIM_TTL_MS = 60_000;
/** How long a hold waits for a deletion claim to go (it expires after `CLAIM_TTL_MS`). */
const HOLD_WAIT_MS = CLAIM_TTL_MS + 5_000;

type Deps = { metadata: MetadataStore; clock: Clock };

/**
 * Holds the blobs for `holder` (renewing its holds), waiting while any of them is being
 * deleted. Throws `UnavailableError` only if a claim outlives its own expiry.
 */
export async function holdBlobs(deps: Deps, holder: string, sha256s: readonly string[]): Promise<void> {
  if (sha256s.length === 0) return;
  let pause = 5;
  const started = Date.now();
  for (;;) {
    const now = deps.clock.now();
    if (await deps.metadata.holdBlobs(holder, sha256s, now, new Date(now.getTime() + HOLD_TTL_MS))) return;
    if (Date.now() - started > HOLD_WAIT_MS) throw new UnavailableError('A blob stays claimed for deletion.');
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 500);
  }
}

/** The holder of a batch's blobs: the API holds them as it stores them, the worker releases them after its commit. */
export function batchHolder(batchId: string): string {
  return `batch:${batchId}`;
}

/** The holder of a single upload's blob, from the move of its bytes to its commit. */
export function uploadHolder(uploadId: string): string {
  return `upload:${uploadId}`;
}

/** Releases every hold of `holder`; a failure only leaves the holds to expire. */
export async function releaseBlobs(deps: Deps, holder: string): Promise<void> {
  await deps.metadata.releaseBlobs(holder, deps.clock.now()).catch(() => undefined);
}

/**
 * Runs `fn` while `holder` holds the blobs (see the rule above): `fn` checks or puts their
 * bytes and commits the references. Every hold of `holder` is released afterwards,
 * whatever `fn` did; delete what `fn` left unreferenced only after that.
 */
export async function withBlobHold<T>(
  deps: Deps,
  holder: string,
  sha256s: readonly string[],
  fn: () => Promise<T>,
): Promise<T> {
  await holdBlobs(deps, holder, sha256s);
  try {
    return await fn();
  } finally {
    await releaseBlobs(deps, holder);
  }
}

/**
 * Deletes the blob if nothing references it (a revision, or a transcode record as its
 * poster or preview) and no one holds it, under a deletion claim; true when it was
 * deleted. What was derived from it goes with it: its transcode record, then the poster
 * and preview blobs that nothing else references. Call it after releasing your own hold
 * on it.
 */
export async function deleteBlobIfUnreferenced(
  deps: Deps & { blobs: BlobStore },
  sha256: string,
): Promise<boolean> {
  const holder = `delete:${randomUUID()}`;
  const now = deps.clock.now();
  if (!(await deps.metadata.claimBlobDeletion(holder, sha256, now, new Date(now.getTime() + CLAIM_TTL_MS))))
    return false;
  try {
    await deps.blobs.delete(sha256);
  } finally {
    await releaseBlobs(deps, holder);
  }
  // Read first: most blobs have no record, and a read costs no commit.
  if ((await deps.metadata.getTranscode(sha256)) !== null) {
    const record = await deps.metadata.deleteTranscode(sha256);
    for (const output of [record?.posterSha256, record?.previewSha256])
      if (output) await deleteBlobIfUnreferenced(deps, output);
  }
  return true;
}
