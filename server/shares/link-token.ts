/**
 * Public link tokens and the proof cookie of a password-protected link.
 *
 * A token is 32 random bytes (256 bits) in base64url (43 characters), shown once; the
 * store keeps only its sha256. The proof cookie is `<exp>.<HMAC-SHA256>` over the share
 * id, the password hash and the expiry with the server secret: it proves the password
 * was given without holding it, dies with its expiry, and stops working when the link's
 * password changes.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Share } from '../../core/ports/metadata-store.js';

export const LINK_TOKEN = /^[A-Za-z0-9_-]{43}$/u;
/** How long a password proof lasts (capped by the link's own expiry). */
export const PROOF_TTL_MS = 12 * 60 * 60 * 1000;
export const PROOF_COOKIE = 'aio_share_proof';

const CONTEXT = 'aio-share-proof-v1';

export function newLinkToken(): string {
  return randomBytes(32).toString('base64url');
}

function mac(secret: Uint8Array, share: Share, exp: number): Buffer {
  return createHmac('sha256', secret)
    .update(CONTEXT)
    .update('\0')
    .update(share.id)
    .update('\0')
    .update(share.passwordHash ?? '')
    .update('\0')
    .update(String(exp))
    .digest();
}

export function signProof(secret: Uint8Array, share: Share, exp: number): string {
  return `${exp}.${mac(secret, share, exp).toString('base64url')}`;
}

/** True for an unexpired proof made for this share (and its current password). */
export function verifyProof(secret: Uint8Array, share: Share, proof: string | undefined, now: Date): boolean {
  const match = /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/u.exec(proof ?? '');
  if (!match) return false;
  const exp = Number(match[1]);
  if (exp <= now.getTime()) return false;
  const given = Buffer.from(match[2] ?? '', 'base64url');
  const expected = mac(secret, share, exp);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** One cookie's value from a Cookie header (no cookie-parser needed for one name). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
