/**
 * tus 1.0 request headers, validated at the edge before any handler runs. Each check
 * quotes the part of the spec (https://tus.io/protocols/resumable-upload) it follows.
 */
import type { Request, RequestHandler } from 'express';
import { AppError } from '../../contract/errors.js';
import { TUS_CONTENT_TYPE, TUS_EXTENSIONS, TUS_VERSION } from '../../contract/schemas/uploads.js';

/** Headers a browser tus client must be able to read from cross-origin answers. */
export const EXPOSED_HEADERS = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Expires',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Aio-Upload-Status',
  'Aio-Upload-Sha256',
];

const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Checksum',
  'Aio-Upload-Sha256',
  'X-Request-Id',
  'X-HTTP-Method-Override',
];

/**
 * Extensions beyond the creation/termination/expiration set: `checksum` (an
 * `Upload-Checksum` header on a PATCH) and `checksum-trailer` (the same as an HTTP
 * trailer of a chunked PATCH, so a client can hash while it sends).
 */
const CHECKSUM_EXTENSIONS = ['checksum', 'checksum-trailer'];
/** "Tus-Checksum-Algorithm … a comma-separated list of the checksum algorithms supported by the server." */
export const CHECKSUM_ALGORITHMS = ['sha256'];
/** AIO's header (or trailer) on the PATCH that completes an upload: the hex sha256 of the whole upload. */
export const UPLOAD_SHA256_HEADER = 'Aio-Upload-Sha256';

/**
 * Sets `Tus-Resumable` on every answer — "The Tus-Resumable header MUST be included in
 * every request and response except for OPTIONS requests" — plus the CORS headers
 * browser clients need, and refuses requests of another protocol version: "If the
 * version specified by the Client is not supported by the Server, it MUST respond with
 * the 412 Precondition Failed status and MUST include the Tus-Version header".
 */
export function tusProtocol(): RequestHandler {
  return (req, res, next) => {
    res.setHeader('Tus-Resumable', TUS_VERSION);
    const origin = req.get('origin');
    if (origin !== undefined) {
      // Authorisation is a bearer token, never a cookie, so any origin may call the API.
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS.join(', '));
    }
    // OPTIONS is exempt by the spec; GET (the JSON status of an upload) is not a tus request.
    if (req.method === 'OPTIONS' || req.method === 'GET') {
      next();
      return;
    }
    const version = req.get('tus-resumable');
    if (version !== TUS_VERSION) {
      throw new AppError(
        'PRECONDITION_FAILED',
        version === undefined ? 'Tus-Resumable is missing.' : `Tus-Resumable ${version} is not supported.`,
        { headers: { 'Tus-Version': TUS_VERSION } },
      );
    }
    next();
  };
}

/**
 * OPTIONS (the discovery request, also a CORS preflight): "A successful response
 * indicated by the 204 No Content or 200 OK status MUST contain the Tus-Version header.
 * It MAY include the Tus-Extension and Tus-Max-Size headers." It needs no token: a
 * browser sends preflights without one.
 */
export function tusOptions(maxSize: number): RequestHandler {
  return (req, res) => {
    res.setHeader('Tus-Version', TUS_VERSION);
    res.setHeader('Tus-Extension', [...TUS_EXTENSIONS, ...CHECKSUM_EXTENSIONS].join(','));
    res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    res.setHeader('Tus-Max-Size', String(maxSize));
    if (req.get('origin') !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', 'POST, GET, HEAD, PATCH, DELETE, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS.join(', '));
      res.setHeader('Access-Control-Max-Age', '86400');
    }
    res.status(204).end();
  };
}

const NON_NEGATIVE_INTEGER = /^(0|[1-9][0-9]{0,15})$/u;

/** A header that must be a non-negative integer; `undefined` when absent. */
function integerHeader(req: Request, name: string): number | undefined {
  const raw = req.get(name);
  if (raw === undefined) return undefined;
  const value = raw.trim();
  if (!NON_NEGATIVE_INTEGER.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new AppError('BAD_REQUEST', `${name} must be a non-negative integer.`);
  }
  return Number(value);
}

/**
 * "The Upload-Length request and response header indicates the size of the entire
 * upload in bytes. The value MUST be a non-negative integer." Deferred lengths are not
 * offered (no `creation-defer-length`), so it is required.
 */
export function uploadLength(req: Request): number {
  const length = integerHeader(req, 'upload-length');
  if (length === undefined) throw new AppError('BAD_REQUEST', 'Upload-Length is required.');
  return length;
}

/** "The Upload-Offset request and response header indicates a byte offset within a resource. The value MUST be a non-negative integer." */
export function uploadOffset(req: Request): number {
  const offset = integerHeader(req, 'upload-offset');
  if (offset === undefined) throw new AppError('BAD_REQUEST', 'Upload-Offset is required.');
  return offset;
}

/** The declared body size, `undefined` for a chunked body. */
export function contentLength(req: Request): number | undefined {
  return integerHeader(req, 'content-length');
}

/** True when the request carries a body (a declared non-zero length, or chunked). */
export function hasBody(req: Request): boolean {
  const length = contentLength(req);
  return length === undefined ? req.get('transfer-encoding') !== undefined : length > 0;
}

/**
 * "All PATCH requests MUST use Content-Type: application/offset+octet-stream,
 * otherwise the server SHOULD return a 415 Unsupported Media Type status."
 */
export function requireOffsetOctetStream(req: Request): void {
  const type = req.get('content-type')?.split(';', 1)[0]?.trim().toLowerCase();
  if (type !== TUS_CONTENT_TYPE) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `Content-Type must be ${TUS_CONTENT_TYPE}.`);
  }
}

/** Checksums a PATCH states for its bytes (`chunk`, hex) and for the whole upload (`upload`, hex). */
export interface StatedChecksums {
  chunk?: string;
  upload?: string;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/u;
const BASE64_SHA256 = /^[A-Za-z0-9+/]{43}=$/u;

/** A header, else the trailer of that name (trailers are known once the body was read). */
function headerOrTrailer(req: Request, name: string): string | undefined {
  const header = req.get(name);
  if (header !== undefined) return header;
  const trailer = req.trailers[name.toLowerCase()];
  return typeof trailer === 'string' ? trailer : undefined;
}

/**
 * The checksums of a PATCH, read after its body (a trailer arrives after the last byte).
 * `Upload-Checksum`: "The value of this header MUST be the name of the used checksum
 * algorithm, followed by a space and the Base64 encoded checksum" — "If the hash
 * algorithm is not supported by the server, it MUST respond with the 400 Bad Request".
 * `Aio-Upload-Sha256`: the hex sha256 of the whole upload.
 */
export function statedChecksums(req: Request): StatedChecksums {
  const stated: StatedChecksums = {};
  const checksum = headerOrTrailer(req, 'upload-checksum')?.trim();
  if (checksum !== undefined) {
    const [algorithm, value, ...rest] = checksum.split(/\s+/u);
    if (algorithm?.toLowerCase() !== 'sha256' || rest.length > 0) {
      throw new AppError(
        'BAD_REQUEST',
        `Upload-Checksum: only ${CHECKSUM_ALGORITHMS.join(', ')} is supported.`,
      );
    }
    if (value === undefined || !BASE64_SHA256.test(value)) {
      throw new AppError('BAD_REQUEST', 'Upload-Checksum must be "sha256 <base64 digest>".');
    }
    stated.chunk = Buffer.from(value, 'base64').toString('hex');
  }
  const whole = headerOrTrailer(req, UPLOAD_SHA256_HEADER)?.trim().toLowerCase();
  if (whole !== undefined) {
    if (!HEX_SHA256.test(whole))
      throw new AppError('BAD_REQUEST', `${UPLOAD_SHA256_HEADER} must be a hex sha256.`);
    stated.upload = whole;
  }
  return stated;
}

/** "The value of the Upload-Expires header MUST be in RFC 9110 datetime format." */
export function httpDate(date: Date): string {
  return date.toUTCString();
}
