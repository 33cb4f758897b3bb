/**
 * Request and response schemas of accounts, sessions, personal API tokens and the
 * audit log (`/api/v1/auth`, `/api/v1/tokens`, `/api/v1/audit`). Every request body
 * is a strict object: unknown fields (`role`, `isAdmin`, `storageQuota` …) fail.
 */
import { z } from 'zod';
import type { AppCodeParams } from './common.js';
import { pageSchema, timestampSchema } from './common.js';

/** bcrypt reads at most 72 bytes; anything past that would be silently ignored. */
export const PASSWORD_MAX_BYTES = 72;
/** Minimum length in characters (Unicode code points). */
export const PASSWORD_MIN_CHARS = 8;

/** Trimmed, lower-cased, a valid address of at most 254 characters. */
export const emailSchema = z.string().trim().toLowerCase().max(254).pipe(z.email());

/**
 * At least 8 characters and at most 72 bytes in UTF-8. Too long is reported with
 * `appCode: PASSWORD_TOO_LONG` (the server answers 400 `PASSWORD_TOO_LONG`).
 */
export const passwordSchema = z.string().superRefine((value, ctx) => {
  if ([...value].length < PASSWORD_MIN_CHARS) {
    ctx.addIssue({
      code: 'custom',
      message: `The password needs at least ${PASSWORD_MIN_CHARS} characters.`,
    });
  }
  if (new TextEncoder().encode(value).length > PASSWORD_MAX_BYTES) {
    const params: AppCodeParams = { appCode: 'PASSWORD_TOO_LONG' };
    ctx.addIssue({
      code: 'custom',
      message: `The password is longer than ${PASSWORD_MAX_BYTES} bytes in UTF-8; bcrypt would ignore the rest.`,
      params,
    });
  }
});

/** A display name: trimmed, 1–100 characters. */
export const displayNameSchema = z.string().trim().min(1).max(100);

// ---------- requests ----------

export const registerBodySchema = z.strictObject({
  email: emailSchema,
  password: passwordSchema,
  name: displayNameSchema.optional(),
});
export type RegisterBody = z.infer<typeof registerBodySchema>;

/** Login checks the password only against its hash: no length rule here beyond a sane bound. */
export const loginBodySchema = z.strictObject({
  email: emailSchema,
  password: z.string().min(1).max(1024),
});
export type LoginBody = z.infer<typeof loginBodySchema>;

/** An opaque refresh token (`aior_…`). */
export const refreshTokenSchema = z.string().min(10).max(512);

export const refreshBodySchema = z.strictObject({ refreshToken: refreshTokenSchema });
export type RefreshBody = z.infer<typeof refreshBodySchema>;

/** Without `refreshToken` the family of the request's access token is logged out. */
export const logoutBodySchema = z.strictObject({ refreshToken: refreshTokenSchema.optional() });
export type LogoutBody = z.infer<typeof logoutBodySchema>;

/** Change the name and/or the password; a new password needs the current one. */
export const updateMeBodySchema = z
  .strictObject({
    name: displayNameSchema.nullable().optional(),
    currentPassword: z.string().min(1).max(1024).optional(),
    newPassword: passwordSchema.optional(),
  })
  .refine((b) => b.name !== undefined || b.newPassword !== undefined, {
    message: 'Nothing to change: give name and/or newPassword.',
  })
  .refine((b) => b.newPassword === undefined || b.currentPassword !== undefined, {
    message: 'A new password needs currentPassword.',
    path: ['currentPassword'],
  });
export type UpdateMeBody = z.infer<typeof updateMeBodySchema>;

export const tokenScopeSchema = z.enum(['read', 'write', 'share']);
export type TokenScopeName = z.infer<typeof tokenScopeSchema>;
export const ALL_TOKEN_SCOPES: readonly TokenScopeName[] = ['read', 'write', 'share'];

/** Longest lifetime of an API token: 10 years. */
export const MAX_TOKEN_LIFETIME_S = 10 * 365 * 86_400;
/** Lifetime when `expiresIn` is omitted: 90 days. */
export const DEFAULT_TOKEN_LIFETIME_S = 90 * 86_400;

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 } as const;
const DURATION = /^([1-9]\d{0,8})([smhdw])$/;

/** `'90d'`, `'12h'`, `'30m'`, `'45s'`, `'2w'` or a number of seconds → seconds. */
export function durationSeconds(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = DURATION.exec(value);
  if (!match) return NaN;
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}

/** A token lifetime: a duration string or seconds (1 s – 10 years), or `null` for no expiry. */
export const tokenLifetimeSchema = z
  .union([z.string().regex(DURATION, 'a duration such as 90d, 12h, 30m'), z.number().int().positive()])
  .refine((v) => durationSeconds(v) <= MAX_TOKEN_LIFETIME_S, { message: 'at most 10 years' })
  .nullable();

export const createTokenBodySchema = z.strictObject({
  name: displayNameSchema,
  /** Default: every scope. Duplicates are ignored. */
  scopes: z.array(tokenScopeSchema).min(1).max(3).optional(),
  /** Default: 90 days; `null`: never expires. */
  expiresIn: tokenLifetimeSchema.optional(),
});
export type CreateTokenBody = z.infer<typeof createTokenBodySchema>;

// ---------- responses ----------

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  storageUsed: z.number(),
  storageQuota: z.number(),
  createdAt: timestampSchema,
});
export type UserBody = z.infer<typeof userSchema>;

/** Registration answers the same for a new and an already registered email. */
export const registerResponseSchema = z.object({ status: z.literal('registered') });

export const sessionResponseSchema = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  /** Seconds until the access token expires. */
  expiresIn: z.number(),
  user: userSchema,
});
export type SessionResponse = z.infer<typeof sessionResponseSchema>;

/** PATCH /auth/me: the user, plus a fresh session when the password changed. */
export const updateMeResponseSchema = z.object({
  user: userSchema,
  accessToken: z.string().optional(),
  refreshToken: z.string().optional(),
  expiresIn: z.number().optional(),
});

export const apiTokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** First characters of the token, to recognise it (e.g. `aio_3f9a1c`). */
  prefix: z.string(),
  scopes: z.array(tokenScopeSchema),
  createdAt: timestampSchema,
  expiresAt: timestampSchema.nullable(),
  lastUsedAt: timestampSchema.nullable(),
});
export type ApiTokenBody = z.infer<typeof apiTokenSchema>;

/** Only the creation response carries the secret (`aio_…`); it is never shown again. */
export const createdTokenSchema = apiTokenSchema.extend({ token: z.string() });

export const tokenListSchema = z.object({ items: z.array(apiTokenSchema) });

export const auditEntrySchema = z.object({
  id: z.string(),
  action: z.string(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  createdAt: timestampSchema,
});

export const auditPageSchema = pageSchema(auditEntrySchema);
