/**
 * Users, refresh sessions, API tokens and the audit log in MongoDB — the account half of
 * `MongoMetadataStore`. Multi-document changes run in one transaction.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../../../contract/errors.js';
import type { Clock } from '../../domain/clock.js';
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
import { toApiToken, toAudit, toSession, toUser, translateMongoError } from './mongo-mappers.js';
import {
  op,
  orderedId,
  type AuditDoc,
  type MetadataModels,
  type RunTx,
  type SessionDoc,
  type UserDoc,
} from './mongo-models.js';
import { decodeCursor, encodeCursor, normalizeEmail, pageLimit } from './shared.js';

export class MongoAccounts {
  constructor(
    private readonly m: MetadataModels,
    private readonly tx: RunTx,
    private readonly clock: Clock,
  ) {}

  async createUser(input: NewUser): Promise<User> {
    const now = this.clock.now();
    const doc: UserDoc = {
      _id: randomUUID(),
      email: normalizeEmail(input.email),
      name: input.name,
      passwordHash: input.passwordHash,
      tokenVersion: 0,
      storageUsed: 0,
      storageQuota: input.storageQuota,
      changeSeq: 0,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.m.users.create(doc);
    } catch (err) {
      translateMongoError(err, 'EMAIL_TAKEN');
    }
    return toUser(doc);
  }

  async getUserById(id: string): Promise<User | null> {
    const doc = await this.m.users.findOne({ _id: id }).lean<UserDoc>();
    return doc ? toUser(doc) : null;
  }

  async getUserByEmail(email: string): Promise<User | null> {
    const doc = await this.m.users.findOne({ email: normalizeEmail(email) }).lean<UserDoc>();
    return doc ? toUser(doc) : null;
  }

  /** A new password hash bumps `tokenVersion` and revokes every session, in one transaction. */
  async updateUser(id: string, patch: UserPatch): Promise<User> {
    return this.tx(async (session) => {
      const now = this.clock.now();
      const set: Partial<UserDoc> = { updatedAt: now };
      if (patch.name !== undefined) set.name = patch.name;
      const update: { $set: Partial<UserDoc>; $inc?: { tokenVersion: number } } = { $set: set };
      if (patch.passwordHash !== undefined) {
        set.passwordHash = patch.passwordHash;
        // An empty $inc is an error on the server, so it is only sent with a new password.
        update.$inc = { tokenVersion: 1 };
      }
      const doc = await this.m.users
        .findOneAndUpdate({ _id: id }, update, { session, returnDocument: 'after' })
        .lean<UserDoc>();
      if (!doc) throw new NotFoundError('No such user.');
      if (patch.passwordHash !== undefined) {
        await this.m.sessions.updateMany(
          { userId: id, revokedAt: null },
          { $set: { revokedAt: now } },
          { session },
        );
      }
      return toUser(doc);
    });
  }

  async createRefreshSession(input: NewRefreshSession): Promise<RefreshSession> {
    const user = await this.m.users.exists({ _id: input.userId });
    if (!user) throw new NotFoundError('No such user.');
    const doc: SessionDoc = {
      _id: randomUUID(),
      userId: input.userId,
      familyId: input.familyId ?? randomUUID(),
      tokenHash: input.tokenHash,
      createdAt: this.clock.now(),
      expiresAt: input.expiresAt,
      rotatedAt: null,
      revokedAt: null,
      ip: input.ip,
      userAgent: input.userAgent,
    };
    try {
      await this.m.sessions.create(doc);
    } catch (err) {
      translateMongoError(err);
    }
    return toSession(doc);
  }

  async rotateRefreshSession(
    tokenHash: string,
    next: { tokenHash: string; expiresAt: Date },
    now: Date,
  ): Promise<RotateResult> {
    try {
      return await this.tx(async (session): Promise<RotateResult> => {
        const doc = await this.m.sessions.findOne({ tokenHash }, null, { session }).lean<SessionDoc>();
        if (!doc || doc.revokedAt) return { kind: 'invalid' };
        if (doc.rotatedAt) {
          // A rotated token came back: someone holds a copy. Revoke the whole login.
          await this.m.sessions.updateMany(
            { familyId: doc.familyId, revokedAt: null },
            { $set: { revokedAt: now } },
            { session },
          );
          return { kind: 'reused', previous: toSession({ ...doc, revokedAt: now }) };
        }
        if (doc.expiresAt.getTime() <= now.getTime()) return { kind: 'invalid' };
        // Conditional on rotatedAt: of two concurrent rotations one wins, the other sees reuse.
        const rotated = await this.m.sessions
          .findOneAndUpdate(
            { _id: doc._id, rotatedAt: null, revokedAt: null },
            { $set: { rotatedAt: now } },
            { session, returnDocument: 'after' },
          )
          .lean<SessionDoc>();
        if (!rotated) return { kind: 'invalid' };
        const fresh: SessionDoc = {
          ...doc,
          _id: randomUUID(),
          tokenHash: next.tokenHash,
          createdAt: now,
          expiresAt: next.expiresAt,
          rotatedAt: null,
          revokedAt: null,
        };
        await this.m.sessions.create([fresh], { session });
        return { kind: 'rotated', previous: toSession(rotated), next: toSession(fresh) };
      });
    } catch (err) {
      translateMongoError(err);
    }
  }

  async getRefreshSessionByHash(tokenHash: string): Promise<RefreshSession | null> {
    const doc = await this.m.sessions.findOne({ tokenHash }).lean<SessionDoc>();
    return doc ? toSession(doc) : null;
  }

  async isSessionFamilyActive(familyId: string, now: Date): Promise<boolean> {
    const hit = await this.m.sessions.exists({ familyId, revokedAt: null, expiresAt: op({ $gt: now }) });
    return hit !== null;
  }

  async revokeSessionFamily(familyId: string, now: Date): Promise<void> {
    await this.m.sessions.updateMany({ familyId, revokedAt: null }, { $set: { revokedAt: now } });
  }

  async revokeAllSessions(userId: string, now: Date): Promise<void> {
    await this.m.sessions.updateMany({ userId, revokedAt: null }, { $set: { revokedAt: now } });
  }

  async createApiToken(input: NewApiToken): Promise<ApiToken> {
    const user = await this.m.users.exists({ _id: input.userId });
    if (!user) throw new NotFoundError('No such user.');
    const doc = {
      _id: randomUUID(),
      userId: input.userId,
      name: input.name,
      prefix: input.prefix,
      tokenHash: input.tokenHash,
      scopes: [...input.scopes],
      createdAt: this.clock.now(),
      expiresAt: input.expiresAt,
      lastUsedAt: null,
      revokedAt: null,
    };
    try {
      await this.m.apiTokens.create(doc);
    } catch (err) {
      translateMongoError(err);
    }
    return toApiToken(doc);
  }

  async listApiTokens(userId: string): Promise<ApiToken[]> {
    const docs = await this.m.apiTokens.find({ userId }).sort({ createdAt: 1, _id: 1 }).lean();
    return docs.map(toApiToken);
  }

  async getApiTokenByHash(tokenHash: string): Promise<ApiToken | null> {
    const doc = await this.m.apiTokens.findOne({ tokenHash }).lean();
    return doc ? toApiToken(doc) : null;
  }

  async revokeApiToken(userId: string, id: string, now: Date): Promise<boolean> {
    const result = await this.m.apiTokens.updateOne(
      { _id: id, userId, revokedAt: null },
      { $set: { revokedAt: now } },
    );
    return result.modifiedCount > 0;
  }

  async touchApiToken(id: string, now: Date): Promise<void> {
    await this.m.apiTokens.updateOne({ _id: id }, { $set: { lastUsedAt: now } });
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    const doc: AuditDoc = {
      _id: orderedId(),
      userId: entry.userId,
      action: entry.action,
      ip: entry.ip,
      userAgent: entry.userAgent,
      details: entry.details,
      createdAt: entry.createdAt ?? this.clock.now(),
    };
    await this.m.audit.create(doc);
    return toAudit(doc);
  }

  /** Newest first; the cursor is the (createdAt, _id) of the last entry returned. */
  async listAudit(
    userId: string,
    options: { limit: number; cursor?: string | null },
  ): Promise<Page<AuditEntry>> {
    const limit = pageLimit(options.limit);
    const filter: Record<string, unknown> = { userId };
    if (options.cursor) {
      const { t, i } = decodeCursor(options.cursor, { t: 'number', i: 'string' });
      const at = new Date(t as number);
      filter.$or = [{ createdAt: op({ $lt: at }) }, { createdAt: at, _id: op({ $lt: i }) }];
    }
    const docs = await this.m.audit
      .find(filter)
      .sort({ createdAt: -1, _id: -1 })
      .limit(limit + 1)
      .lean<AuditDoc[]>();
    const items = docs.slice(0, limit);
    const last = items.at(-1);
    return {
      items: items.map(toAudit),
      nextCursor:
        docs.length > limit && last ? encodeCursor({ t: last.createdAt.getTime(), i: last._id }) : null,
    };
  }
}
