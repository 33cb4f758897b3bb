/**
 * Short-lived signed download tokens, so plain `curl` can fetch a file or a folder zip
 * without an Authorization header. A token is `<base64url payload>.<base64url HMAC-SHA256>`
 * over the payload with the server secret; it names the blob, the download file name,
 * the owner and the expiry. Verification is constant-time and checks expiry.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../contract/errors.js';

export interface DownloadGrant {
  /** Blob to serve (sha256 hex). */
  sha256: string;
  /** File name for Content-Disposition. */
  name: string;
  /** Media type to send (served as attachment regardless). */
  mediaType: string;
  ownerId: string;
  /** Expiry, ms since epoch. */
  exp: number;
}

const CONTEXT = 'aio-download-v1';

function mac(secret: Uint8Array, payload: string): Buffer {
  return createHmac('sha256', secret).update(CONTEXT).update('\0').update(payload).digest();
}

export function signDownload(secret: Uint8Array, grant: DownloadGrant): string {
  const payload = Buffer.from(JSON.stringify(grant), 'utf8').toString('base64url');
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

/** Throws `NOT_FOUND` for a malformed or forged token, `GONE` for an expired one. */
export function verifyDownload(secret: Uint8Array, token: string, now: Date): DownloadGrant {
  const match = /^([A-Za-z0-9_-]{16,4096})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) throw new AppError('NOT_FOUND');
  const [, payload = '', sig = ''] = match;
  const expected = mac(secret, payload);
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AppError('NOT_FOUND');
  let grant: DownloadGrant;
  try {
    grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as DownloadGrant;
  } catch (err) {
    throw new AppError('NOT_FOUND', undefined, { cause: err });
  }
  if (typeof grant.exp !== 'number' || grant.exp <= now.getTime())
    throw new AppError('GONE', 'The link has expired.');
  return grant;
}
