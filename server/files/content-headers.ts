/**
 * Response headers that make a download safe to hand to a browser: always an
 * attachment, never sniffed, never rendered as active content.
 */

/** Types a browser would render as a page or run; they are sent as application/octet-stream. */
const ACTIVE = /(?:html|xml|svg|javascript|ecmascript)/iu;
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/iu;

/**
 * The Content-Type the server sends for a stored media type: the bare `type/subtype`
 * (parameters dropped) when it is well-formed and passive, else `application/octet-stream`.
 */
export function safeContentType(mediaType: string | null | undefined): string {
  const bare = (mediaType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
  if (!MEDIA_TYPE.test(bare) || ACTIVE.test(bare)) return 'application/octet-stream';
  return bare;
}

/**
 * `Content-Disposition: attachment` with an ASCII fallback `filename="…"` and the exact
 * name as RFC 5987 `filename*=UTF-8''…` (RFC 6266 §4.3). The fallback replaces non-ASCII,
 * quotes, backslashes and controls with `_`.
 */
export function attachmentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/gu, '_') || 'download';
  const encoded = encodeURIComponent(name).replace(
    /[!'()*]/gu,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
