/**
 * Users, refresh sessions, API tokens and the audit log in SQLite — the account half of
 * `SqliteMetadataStore`. Methods are synchronous; the store wraps them in promises.
 */
import { randomUUID } from 'node:crypto';
import { uuidv7 } from '../../domain/ids.js';
import { NotFoundError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
import { cachedStatement, type SqliteDatabase } from '../../sqlite.js';
import type {
  ApiToken,
  AuditEntry,
  NewApiToken,
  NewAuditEntry,
  NewRefreshSession,
  NewUser,
  Page,
  RefreshSession,
  RotateResult,
  User,
  UserPatch,
} from '../../ports/metadata-store.js';
import { decodeCursor, encodeCursor, normalizeEmail, pageLimit } from './shared.js';
import {
  msOrNull,
  toApiToken,
  toAudit,
  toSession,
  toUser,
  translateSqliteError,
  type ApiTokenRow,
  type AuditRow,
  type SessionRow,
  type UserRow,
} from './sqlite-rows.js';

export class SqliteAccounts {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: Clock,
  ) {}

  createUser(input: NewUser): User {
    const now = this.clock.now().getTime();
    const row: UserRow = {
      id: randomUUID(),
      email: normalizeEmail(input.email),
      name: input.name,
      password_hash: input.passwordHash,
      token_version: 0,
      storage_used: 0,
      storage_quota: input.storageQuota,
      change_seq: 0,
      created_at: now,
      updated_at: now,
    };
    try {
      cachedStatement(
        this.db,
        `INSERT INTO users (id, email, name, password_hash, token_version, storage_used, storage_quota, change_seq, created_at, updated_at)
           VALUES (@id, @email, @name, @password_hash, @token_version, @storage_used, @storage_quota, @change_seq, @created_at, @updated_at)`,
      ).run(row);
    } catch (err) {
      translateSqliteError(err, 'EMAIL_TAKEN');
    }
    return toUser(row);
  }

  getUserById(id: string): User | null {
    const row = cachedStatement(this.db, 'SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  getUserByEmail(email: string): User | null {
    const row = cachedStatement(this.db, 'SELECT * FROM users WHERE email = ?').get(normalizeEmail(email)) as
      UserRow | undefined;
    return row ? toUser(row) : null;
  }

  /** A new password hash bumps `token_version` and revokes every session, in one transaction. */
  updateUser(id: string, patch: UserPatch): User {
    return this.db
      .transaction((): User => {
        const now = this.clock.now().getTime();
        const current = cachedStatement(this.db, 'SELECT * FROM users WHERE id = ?').get(id) as
          UserRow | undefined;
        if (!current) throw new NotFoundError('No such user.');
        const next: UserRow = { ...current, updated_at: now };
        if (patch.name !== undefined) next.name = patch.name;
        if (patch.passwordHash !== undefined) {
          next.password_hash = patch.passwordHash;
          next.token_version = current.token_version + 1;
          cachedStatement(
            this.db,
            'UPDATE refresh_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL',
          ).run(now, id);
        }
        cachedStatement(
          this.db,
          'UPDATE users SET name = @name, password_hash = @password_hash, token_version = @token_version, updated_at = @updated_at WHERE id = @id',
        ).run(next);
        return toUser(next);
      })
      .immediate();
  }

  createRefreshSession(input: NewRefreshSession): RefreshSession {
    const row: SessionRow = {
      id: randomUUID(),
      user_id: input.userId,
      family_id: input.familyId ?? randomUUID(),
      token_hash: input.tokenHash,
      created_at: this.clock.now().getTime(),
      expires_at: input.expiresAt.getTime(),
      rotated_at: null,
      revoked_at: null,
      ip: input.ip,
      user_agent: input.userAgent,
    };
    this.insertSession(row);
    return toSession(row);
  }

  rotateRefreshSession(
    tokenHash: string,
    next: { tokenHash: string; expiresAt: Date },
    now: Date,
  ): RotateResult {
    return this.db
      .transaction((): RotateResult => {
        const at = now.getTime();
        const row = cachedStatement(this.db, 'SELECT * FROM refresh_sessions WHERE token_hash = ?').get(
          tokenHash,
        ) as SessionRow | undefined;
        if (!row || row.revoked_at !== null) return { kind: 'invalid' };
        if (row.rotated_at !== null) {
          // A rotated token came back: someone holds a copy. Revoke the whole login.
          this.revokeFamilyTx(row.family_id, at);
          return { kind: 'reused', previous: toSession({ ...row, revoked_at: row.revoked_at ?? at }) };
        }
        if (row.expires_at <= at) return { kind: 'invalid' };
        cachedStatement(this.db, 'UPDATE refresh_sessions SET rotated_at = ? WHERE id = ?').run(at, row.id);
        const fresh: SessionRow = {
          ...row,
          id: randomUUID(),
          token_hash: next.tokenHash,
          created_at: at,
          expires_at: next.expiresAt.getTime(),
          rotated_at: null,
          revoked_at: null,
        };
        this.insertSession(fresh);
        return { kind: 'rotated', previous: toSession({ ...row, rotated_at: at }), next: toSession(fresh) };
      })
      .immediate();
  }

  getRefreshSessionByHash(tokenHash: string): RefreshSession | null {
    const row = cachedStatement(this.db, 'SELECT * FROM refresh_sessions WHERE token_hash = ?').get(
      tokenHash,
    ) as SessionRow | undefined;
    return row ? toSession(row) : null;
  }

  isSessionFamilyActive(familyId: string, now: Date): boolean {
    const row = cachedStatement(
      this.db,
      'SELECT 1 AS ok FROM refresh_sessions WHERE family_id = ? AND revoked_at IS NULL AND expires_at > ? LIMIT 1',
    ).get(familyId, now.getTime());
    return row !== undefined;
  }

  revokeSessionFamily(familyId: string, now: Date): void {
    this.revokeFamilyTx(familyId, now.getTime());
  }

  revokeAllSessions(userId: string, now: Date): void {
    cachedStatement(
      this.db,
      'UPDATE refresh_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL',
    ).run(now.getTime(), userId);
  }

  createApiToken(input: NewApiToken): ApiToken {
    const row: ApiTokenRow = {
      id: randomUUID(),
      user_id: input.userId,
      name: input.name,
      prefix: input.prefix,
      token_hash: input.tokenHash,
      scopes: JSON.stringify(input.scopes),
      created_at: this.clock.now().getTime(),
      expires_at: msOrNull(input.expiresAt),
      last_used_at: null,
      revoked_at: null,
    };
    try {
      cachedStatement(
        this.db,
        `INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, scopes, created_at, expires_at, last_used_at, revoked_at)
           VALUES (@id, @user_id, @name, @prefix, @token_hash, @scopes, @created_at, @expires_at, @last_used_at, @revoked_at)`,
      ).run(row);
    } catch (err) {
      translateSqliteError(err);
    }
    return toApiToken(row);
  }

  listApiTokens(userId: string): ApiToken[] {
    const rows = cachedStatement(
      this.db,
      'SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at ASC, id ASC',
    ).all(userId) as ApiTokenRow[];
    return rows.map(toApiToken);
  }

  getApiTokenByHash(tokenHash: string): ApiToken | null {
    const row = cachedStatement(this.db, 'SELECT * FROM api_tokens WHERE token_hash = ?').get(tokenHash) as
      ApiTokenRow | undefined;
    return row ? toApiToken(row) : null;
  }

  revokeApiToken(userId: string, id: string, now: Date): boolean {
    const result = cachedStatement(
      this.db,
      'UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL',
    ).run(now.getTime(), id, userId);
    return result.changes > 0;
  }

  touchApiToken(id: string, now: Date): void {
    cachedStatement(this.db, 'UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now.getTime(), id);
  }

  appendAudit(entry: NewAuditEntry): AuditEntry {
    const row = {
      id: uuidv7(),
      user_id: entry.userId,
      action: entry.action,
      ip: entry.ip,
      user_agent: entry.userAgent,
      details: JSON.stringify(entry.details),
      created_at: (entry.createdAt ?? this.clock.now()).getTime(),
    };
    // The rowid, not `RETURNING pk` (see `insertChange` on RETURNING's cost here).
    const { lastInsertRowid } = cachedStatement(
      this.db,
      `INSERT INTO audit_log (id, user_id, action, ip, user_agent, details, created_at)
         VALUES (@id, @user_id, @action, @ip, @user_agent, @details, @created_at)`,
    ).run(row);
    return toAudit({ ...row, pk: Number(lastInsertRowid) });
  }

  /** Newest first; the cursor is the (created_at, pk) of the last entry returned. */
  listAudit(userId: string, options: { limit: number; cursor?: string | null }): Page<AuditEntry> {
    const limit = pageLimit(options.limit);
    let rows: AuditRow[];
    if (options.cursor) {
      const { t, p } = decodeCursor(options.cursor, { t: 'number', p: 'number' });
      rows = cachedStatement(
        this.db,
        `SELECT * FROM audit_log WHERE user_id = ? AND (created_at < ? OR (created_at = ? AND pk < ?))
           ORDER BY created_at DESC, pk DESC LIMIT ?`,
      ).all(userId, t, t, p, limit + 1) as AuditRow[];
    } else {
      rows = cachedStatement(
        this.db,
        'SELECT * FROM audit_log WHERE user_id = ? ORDER BY created_at DESC, pk DESC LIMIT ?',
      ).all(userId, limit + 1) as AuditRow[];
    }
    const more = rows.length > limit;
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return {
      items: items.map(toAudit),
      nextCursor: more && last ? encodeCursor({ t: last.created_at, p: last.pk }) : null,
    };
  }

  private insertSession(row: SessionRow): void {
    try {
      cachedStatement(
        this.db,
        `INSERT INTO refresh_sessions (id, user_id, family_id, token_hash, created_at, expires_at, rotated_at, revoked_at, ip, user_agent)
           VALUES (@id, @user_id, @family_id, @token_hash, @created_at, @expires_at, @rotated_at, @revoked_at, @ip, @user_agent)`,
      ).run(row);
    } catch (err) {
      translateSqliteError(err);
    }
  }

  private revokeFamilyTx(familyId: string, at: number): void {
    cachedStatement(
      this.db,
      'UPDATE refresh_sessions SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL',
    ).run(at, familyId);
  }
}
