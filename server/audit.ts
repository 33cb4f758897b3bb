/**
 * `audit(deps, req, action, details)`: appends one entry to the audit log with the
 * caller's ip and user agent. The user is `req.auth`'s unless `options.userId` names
 * one (login, register: nobody is authenticated yet; `null` for an unknown account).
 * Details must never hold secrets (passwords, tokens, hashes).
 *
 * Errors: rejects when the metadata store does (the caller's request fails with it:
 * a security event that cannot be recorded is not silently dropped).
 */
import type { Request } from 'express';
import type { AuditEntry } from '../core/ports/metadata-store.js';
import type { AppDeps } from './deps.js';

const MAX_USER_AGENT = 512;

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

/** The caller's ip (honouring `trust proxy`) and user agent (truncated). */
export function clientOf(req: Request): ClientInfo {
  const agent = req.get('user-agent');
  return {
    ip: req.ip ?? null,
    userAgent: agent === undefined || agent === '' ? null : agent.slice(0, MAX_USER_AGENT),
  };
}

export async function audit(
  deps: Pick<AppDeps, 'metadata' | 'clock'>,
  req: Request,
  action: string,
  details: Record<string, unknown> = {},
  options: { userId?: string | null } = {},
): Promise<AuditEntry> {
  const { ip, userAgent } = clientOf(req);
  const userId = options.userId !== undefined ? options.userId : (req.auth?.user.id ?? null);
  return deps.metadata.appendAudit({ userId, action, ip, userAgent, details, createdAt: deps.clock.now() });
}
