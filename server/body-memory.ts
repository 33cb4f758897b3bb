/**
 * Frees the socket buffers of big request bodies promptly, and the garbage of big
 * downloads' many ranged requests (`sent`, see `COMPACT_EVERY_SENT_BYTES`).
 *
 * Node's HTTP parser copies every piece of a request body (up to 64 KiB) into a fresh
 * buffer. Once written to disk those buffers are dead, but their memory is released only
 * when V8 collects their (tiny) JavaScript objects, and the young generation fills so
 * slowly that the collection comes from V8's external-memory accounting instead, after
 * ~30–50 MiB of them. A 1 GiB upload held 30–60 MiB of dead buffers at any time.
 *
 * A young-generation collection (about 1 ms here) every 8 MiB of body frees them while
 * they are still young: a 1 GiB upload's server peak went from 145–156 MiB to 117–132 MiB,
 * and it got no slower (15 interleaved probes; reusing freed memory is cheaper than
 * touching new pages). Every 4 MiB was twice as slow (buffers of the batch being written
 * survived two collections and moved to the old generation; the staging writer has since
 * stopped holding a batch, it copies each piece into its block at once); every 16 MiB
 * saved half as much.
 *
 * The collection needs `gc` exposed (`--expose-gc`: `bin/aio-server`'s `#!` line and
 * `npm start` pass it). Without it, nothing is collected early and nothing else changes.
 */
import { exposedGc } from '../core/gc.js';

/** Bytes of request body between two young-generation collections. */
export const RECLAIM_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * Bytes of response body (blobs sent) between two full collections.
 *
 * Why: a big download arrives as many ranged requests (`aio download`: one per 8 MiB),
 * and each leaves a little garbage in the old generation (objects of a request that
 * lived across a young collection), which V8 lets grow to 30–40 MB before it collects
 * it. Ten downloads of 1 GiB in a row took the server from 128 to 151–155 MiB of RSS
 * (the W1 target is 150 MB); with a full collection (4–5 ms here, on a task of its own)
 * every GiB sent it stayed at 139–142 MiB. docs/performance.md, sixteenth pass.
 */
export const COMPACT_EVERY_SENT_BYTES = 1024 * 1024 * 1024;

export class BodyMemory {
  private sinceCollect = 0;
  private sinceCompact = 0;

  /**
   * @param collect runs a young-generation collection (see `exposedGc`).
   * @param everyBytes bytes of body between two collections, in all requests together.
   * @param compact runs a full collection (see `exposedGc`); none when absent.
   * @param compactEveryBytes bytes sent between two full collections, in all responses together.
   */
  constructor(
    private readonly collect: () => void,
    private readonly everyBytes = RECLAIM_EVERY_BYTES,
    private readonly compact?: () => void,
    private readonly compactEveryBytes = COMPACT_EVERY_SENT_BYTES,
  ) {}

  /** Notes `bytes` of request body handed on (written, or about to be). */
  received(bytes: number): void {
    this.sinceCollect += bytes;
    if (this.sinceCollect < this.everyBytes) return;
    // One collection however big the chunk; the bytes past the interval count towards the next.
    this.sinceCollect %= this.everyBytes;
    this.collect();
  }

  /** Notes `bytes` of response body sent (a blob or a range of one). */
  sent(bytes: number): void {
    if (!this.compact) return;
    this.sinceCompact += bytes;
    if (this.sinceCompact < this.compactEveryBytes) return;
    this.sinceCompact %= this.compactEveryBytes;
    this.compact();
  }
}

/** A young-generation collection, when node runs with `--expose-gc`; `null` otherwise. */
export function exposedMinorGc(scope: object = globalThis): (() => void) | null {
  const gc = exposedGc(scope);
  return gc && (() => void gc({ type: 'minor' }));
}

/**
 * A full collection run on a task of its own (not inside the caller's callback), when
 * node runs with `--expose-gc`; `null` otherwise.
 */
export function exposedMajorGc(scope: object = globalThis): (() => void) | null {
  const gc = exposedGc(scope);
  return gc && (() => void Promise.resolve(gc({ type: 'major', execution: 'async' })).catch(() => undefined));
}
