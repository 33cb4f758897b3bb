/**
 * Request and response schemas of sharing (`/api/v1/shares`) and notifications
 * (`/api/v1/notifications`). See `docs/api-shares.md`.
 */
import { z } from 'zod';
import { emailSchema, passwordSchema } from './auth.js';
import { timestampSchema } from './common.js';

/** Lifetime of a public link when `expiresIn` is omitted: 7 days. */
export const DEFAULT_SHARE_LIFETIME_S = 7 * 86_400;
/** Longest lifetime of a public link: 10 years (`null` asks for no expiry at all). */
export const MAX_SHARE_LIFETIME_S = 10 * 365 * 86_400;

const DURATION = /^([1-9]\d{0,8})([smhdw])$/u;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 } as const;

/** `'7d'`, `'12h'`, `'30m'`, `'45s'`, `'2w'` or a number of seconds → seconds. */
export function shareLifetimeSeconds(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = DURATION.exec(value);
  if (!match) return Number.NaN;
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}

/** A link lifetime: seconds or a duration string; `null` = never expires (only when sent explicitly). */
export const shareLifetimeSchema = z
  .union([z.string().regex(DURATION, 'a duration such as 7d, 12h, 30m'), z.number().int().positive()])
  .refine((v) => shareLifetimeSeconds(v) <= MAX_SHARE_LIFETIME_S, { message: 'at most 10 years' })
  .nullable();

/** What to share: a path in the caller's namespace or a node id. */
const targetSchema = {
  path: z.string().min(1).max(4096).optional(),
  id: z.string().min(1).max(128).optional(),
};
const oneTarget = (b: { path?: string; id?: string }) => (b.path === undefined) !== (b.id === undefined);
const oneTargetMessage = { message: 'Give exactly one of path or id.' };

/** `POST /shares`: a public link. */
export const createLinkBodySchema = z
  .strictObject({
    ...targetSchema,
    expiresIn: shareLifetimeSchema.optional(),
    password: passwordSchema.optional(),
    maxDownloads: z.number().int().min(1).max(1_000_000_000).nullable().optional(),
  })
  .refine(oneTarget, oneTargetMessage);
export type CreateLinkBody = z.infer<typeof createLinkBodySchema>;

export const shareRoleSchema = z.enum(['viewer', 'editor']);
export type ShareRole = z.infer<typeof shareRoleSchema>;

/** `POST /shares/users`: share a folder (or file) with another account. */
export const createUserShareBodySchema = z
  .strictObject({ ...targetSchema, email: emailSchema, role: shareRoleSchema.default('viewer') })
  .refine(oneTarget, oneTargetMessage);
export type CreateUserShareBody = z.infer<typeof createUserShareBodySchema>;

// ---------- responses ----------

/** One public link or user share of the caller, as `GET /shares` lists it. */
export const shareSchema = z.object({
  id: z.string(),
  type: z.enum(['link', 'user']),
  nodeId: z.string(),
  /** Current path of the shared item in the owner's namespace (`null` when it is gone). */
  path: z.string().nullable(),
  kind: z.enum(['file', 'folder']).nullable(),
  role: shareRoleSchema,
  /** Recipient of a user share; `null` for links. */
  grantee: z.object({ id: z.string(), email: z.string() }).nullable(),
  hasPassword: z.boolean(),
  expiresAt: timestampSchema.nullable(),
  maxDownloads: z.number().int().nullable(),
  downloads: z.number().int(),
  revokedAt: timestampSchema.nullable(),
  createdAt: timestampSchema,
  /** `active`, `expired`, `revoked` or `exhausted` (max downloads reached). */
  state: z.enum(['active', 'expired', 'revoked', 'exhausted']),
});
export type ShareBody = z.infer<typeof shareSchema>;

/** 201 of `POST /shares`: the share plus its URL, shown this once (only its hash is kept). */
export const createdLinkSchema = shareSchema.extend({ url: z.string(), token: z.string() });
export type CreatedLinkBody = z.infer<typeof createdLinkSchema>;

/** `GET /shares` */
export const shareListSchema = z.object({ items: z.array(shareSchema) });
export type ShareListBody = z.infer<typeof shareListSchema>;

/**
 * 202 of `POST /shares/users`. The same for a known and an unknown email (no account
 * enumeration); for an unknown one nothing is created.
 */
export const userShareAcceptedSchema = z.object({
  email: z.string(),
  role: shareRoleSchema,
  path: z.string(),
});
export type UserShareAcceptedBody = z.infer<typeof userShareAcceptedSchema>;

/** One entry of `GET /shares/with-me`. */
export const sharedWithMeSchema = z.object({
  id: z.string(),
  nodeId: z.string(),
  name: z.string(),
  kind: z.enum(['file', 'folder']),
  /** Where it appears in the recipient's namespace: `/Shared/<name>`. */
  path: z.string(),
  role: shareRoleSchema,
  owner: z.object({ id: z.string(), email: z.string() }),
  createdAt: timestampSchema,
});
export type SharedWithMeBody = z.infer<typeof sharedWithMeSchema>;
export const sharedWithMeListSchema = z.object({ items: z.array(sharedWithMeSchema) });

// ---------- notifications ----------

/** `GET /notifications?unread=1&limit=&cursor=` */
export const notificationsQuerySchema = z.strictObject({
  unread: z.enum(['0', '1', 'true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,15}$/u)
    .optional(),
});

export const notificationSchema = z.object({
  /** The seq of the `notify` change in the feed. */
  id: z.number().int(),
  /** `share.received`, `share.opened`, `zip.ready`, … */
  type: z.string(),
  data: z.record(z.string(), z.unknown()),
  createdAt: timestampSchema,
  readAt: timestampSchema.nullable(),
});
export type NotificationBody = z.infer<typeof notificationSchema>;
export const notificationPageSchema = z.object({
  items: z.array(notificationSchema),
  nextCursor: z.string().nullable(),
});
export type NotificationPage = z.infer<typeof notificationPageSchema>;

/** `POST /notifications/read`: the given ids, or every notification. */
export const markReadBodySchema = z.union([
  z.strictObject({ ids: z.array(z.number().int().min(1)).min(1).max(1000) }),
  z.strictObject({ all: z.literal(true) }),
]);
export type MarkReadBody = z.infer<typeof markReadBodySchema>;
