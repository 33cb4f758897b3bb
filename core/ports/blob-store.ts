/**
 * BlobStore: the bytes. Committed blobs are content-addressed by sha256 (hex), so a
 * user-given name never reaches the filesystem and identical content is stored once.
 * Uploads first land in a staging area under an id the server chose.
 *
 * Adapter: `LocalBlobStore` (a directory). Passes `core/testing/blob-store.suite.ts`.
 */
import type { Readable } from 'node:stream';

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStat {
  size: number;
}

/** What `appendStaging` appended. */
export interface AppendedBytes {
  /** The staging file's size after the append. */
  size: number;
  /** sha256 (hex) of the bytes this append wrote (of nothing when it wrote none). */
  sha256: string;
}

export interface AppendOptions {
  /**
   * Told the size of every chunk read from the source, as it is read and before it is cut
   * to `maxBytes` (so a source longer than allowed shows). Must not throw.
   */
  onChunk?: (bytes: number) => void;
}

export interface BlobStore {
  /** Current size of a staging file, or `null` when it does not exist. */
  stagingSize(id: string): Promise<number | null>;
  /**
   * Appends `source` to staging file `id` (created when absent) at `offset`, which must
   * equal its current size, writing at most `maxBytes`; the data is fsynced before the
   * promise resolves. Returns the new size and the sha256 of exactly the bytes this call
   * appended (the store hashes what it writes, where it is cheapest). When the source
   * errors or ends early, what arrived is kept (fsynced) and counted.
   *
   * A Node `Readable` (a request body) may be read through its events rather than
   * iterated; then it is left paused, not destroyed, once `maxBytes` were taken: the
   * rest (a longer body, its trailers) is still there for the caller, who resumes it.
   */
  appendStaging(
    id: string,
    offset: number,
    source: AsyncIterable<Uint8Array>,
    maxBytes: number,
    options?: AppendOptions,
  ): Promise<AppendedBytes>;
  /** Streams a staging file (for hashing and type sniffing). */
  readStaging(id: string, range?: ByteRange): Readable;
  /** sha256 hex of the staging file, streamed. */
  hashStaging(id: string): Promise<{ sha256: string; size: number }>;
  /**
   * Moves staging `id` to the blob `sha256`: fsync file, rename, fsync directory.
   * When the blob exists already, the staging file is just removed. Never leaves a
   * partial file at the final path.
   */
  commitStaging(id: string, sha256: string): Promise<BlobStat>;
  deleteStaging(id: string): Promise<void>;
  /**
   * Stores many small contents at once (batch uploads): each is written, fsynced and
   * renamed to its sha256 like `put`, but the folders' fsyncs are shared by the whole
   * batch. Contents already stored are left alone. Returns each one's sha256 and size,
   * in order; on an error nothing is left at a final path that is not complete.
   */
  putMany(contents: readonly Uint8Array[]): Promise<Array<{ sha256: string; size: number }>>;
  /** Writes a whole blob from a stream (zips, previews), hashing on the way. */
  put(source: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }>;
  /** Streams a blob or a byte range of it. Throws `NotFoundError` when absent. */
  read(sha256: string, range?: ByteRange): Promise<Readable>;
  stat(sha256: string): Promise<BlobStat | null>;
  delete(sha256: string): Promise<void>;
  /**
   * Absolute path of a committed blob that is a file of its own on a local filesystem
   * (for ffmpeg and `sendfile`-style sending); null when it is not (packed with other
   * small blobs, or a remote store): read it with `read`.
   */
  localPath(sha256: string): string | null;
  ping(): Promise<void>;
  /** Releases what the store holds open (its index). Calls after it fail. */
  close(): Promise<void>;
}
