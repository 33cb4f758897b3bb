/**
 * How users, API tokens and audit entries appear in responses (the shapes of
 * `contract/schemas/auth.ts`): never a hash, never a secret.
 */
import type { ApiTokenBody, UserBody } from '../../contract/schemas/auth.js';
import type { ApiToken, AuditEntry, User } from '../../core/ports/metadata-store.js';

export function userView(user: User): UserBody {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    storageUsed: user.storageUsed,
    storageQuota: user.storageQuota,
    createdAt: user.createdAt.toISOString(),
  };
}

export function apiTokenView(token: ApiToken): ApiTokenBody {
  return {
    id: token.id,
    name: token.name,
    prefix: token.prefix,
    scopes: token.scopes,
    createdAt: token.createdAt.toISOString(),
    expiresAt: token.expiresAt?.toISOString() ?? null,
    lastUsedAt: token.lastUsedAt?.toISOString() ?? null,
  };
}

export interface AuditEntryView {
  id: string;
  action: string;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
  createdAt: string;
}

export function auditEntryView(entry: AuditEntry): AuditEntryView {
  return {
    id: entry.id,
    action: entry.action,
    ip: entry.ip,
    userAgent: entry.userAgent,
    details: entry.details,
    createdAt: entry.createdAt.toISOString(),
  };
}
