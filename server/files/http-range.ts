/**
 * The conditional and range request rules downloads follow (RFC 9110 §13, §14).
 */

export type RangeDecision =
  /** Serve the whole representation (no Range, an ignored one, or several ranges). */
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  /** 416 with `Content-Range: bytes *\/size`. */
  | { kind: 'unsatisfiable' };

const SINGLE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/iu;

/**
 * Interprets a `Range` header against a representation of `size` bytes. Only one
 * byte range is honoured: several ranges (`bytes=0-1,5-6`) are answered with the full
 * content, which §14.2 allows. A header that does not parse is ignored (§14.2: "a server
 * MAY ignore the Range header field"). Ranges: `a-b` (clamped to the end), `a-` (open),
 * `-n` (the last n bytes).
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined || header.trim() === '') return { kind: 'full' };
  if (header.includes(',')) return { kind: 'full' };
  const match = SINGLE.exec(header.trim());
  if (!match) return { kind: 'full' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    // Suffix range: the last n bytes; n = 0 is unsatisfiable (§14.1.3).
    const n = Number(last);
    if (!Number.isSafeInteger(n) || n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? Number.MAX_SAFE_INTEGER : Number(last);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return { kind: 'full' };
  if (end < start) return { kind: 'full' }; // invalid range-spec: ignore the header
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

/** The entity tags listed in `If-None-Match`-style header, `*` kept as is. */
function listTags(header: string): string[] {
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
}

/** `If-None-Match` uses the weak comparison (§13.1.2): `W/"x"` matches `"x"`. */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const tags = listTags(header);
  return tags.some((tag) => tag === '*' || tag.replace(/^W\//u, '') === etag);
}

/**
 * `If-Range` (§13.1.5): the range applies only when the validator is a strong entity
 * tag equal to the current one. A date or a weak tag means "send it all".
 */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  if (header === undefined) return true;
  return header.trim() === etag;
}
