/**
 * Schemas every area of the API shares: the error body, paging query and page shape,
 * and the marker that turns a schema issue into a specific error code.
 */
import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../errors.js';

const errorCodes = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

/** `{ "error": { "code", "message", "details"? } }`, the body of every error response. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.enum(errorCodes),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});

/** Maximum page size of paged listings. */
export const MAX_PAGE_LIMIT = 100;

/** `?limit=&cursor=` of a paged listing. `limit` 1–100, default 50; `cursor` is opaque. */
export const pageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(50),
  cursor: z.string().min(1).max(1024).optional(),
});
export type PageQuery = z.infer<typeof pageQuerySchema>;

/** A page of `item`s; `nextCursor` is `null` on the last page. */
export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

/** An ISO-8601 timestamp as the server writes it (`Date#toJSON`). */
export const timestampSchema = z.iso.datetime();

/**
 * Issues carrying `params: { appCode }` ask the server to answer with that error code
 * instead of the generic `VALIDATION_FAILED` (e.g. `PASSWORD_TOO_LONG`).
 */
export interface AppCodeParams {
  appCode: ErrorCode;
}

/** The `appCode` of the first issue that carries one. */
export function appCodeOf(issues: readonly z.core.$ZodIssue[]): ErrorCode | undefined {
  for (const issue of issues) {
    if (issue.code !== 'custom') continue;
    const code = (issue.params as Partial<AppCodeParams> | undefined)?.appCode;
    if (code !== undefined && Object.hasOwn(ERRORS, code)) return code;
  }
  return undefined;
}
