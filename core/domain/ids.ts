/**
 * Time-ordered random ids. Rows inserted together get ids with a common prefix (the
 * creation time comes first), so they land side by side in a B-tree index instead of
 * one random leaf page each.
 *
 * Why: a batch commit of 100 new files with random (v4) UUIDs dirtied a separate leaf
 * page per file in each index keyed by an id, and SQLite's WAL then wrote ~1,500 pages
 * per W3 sync; ids that share a prefix touch a few pages. MongoDB's `_id` index gains
 * the same way. The random part keeps them unguessable (74 bits for a UUID, 80 for an
 * upload id).
 */
import { randomFillSync } from 'node:crypto';

/**
 * Random bytes are drawn 4 KiB at a time and handed out 16 at a time, as Node's own
 * `randomUUID` does: `randomBytes(16)` per id cost ~5 µs here (the CSPRNG call and a
 * buffer), a slice of the pool ~1 µs, and a batch commit makes about five ids per file.
 * Each byte is handed out once; the pool never leaves this module.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolAt = POOL_BYTES;

/** 16 fresh random bytes in a new buffer. */
function random16(): Buffer {
  if (poolAt + 16 > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const bytes = Buffer.allocUnsafe(16);
  pool.copy(bytes, 0, poolAt, poolAt + 16);
  poolAt += 16;
  return bytes;
}

/** Writes the current time in ms as 6 big-endian bytes at the start of `bytes`. */
function stampTime(bytes: Buffer, now: number): void {
  bytes.writeUIntBE(now, 0, 6);
}

/** A UUID version 7 (RFC 9562): 48-bit Unix ms timestamp, then 74 random bits. */
export function uuidv7(now: number = Date.now()): string {
  const bytes = random16();
  stampTime(bytes, now);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** 16 bytes (6 of time, 10 random) as 22 base64url characters. */
export function timeOrderedToken(now: number = Date.now()): string {
  const bytes = random16();
  stampTime(bytes, now);
  return bytes.toString('base64url');
}
