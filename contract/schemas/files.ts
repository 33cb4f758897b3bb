/**
 * Request and response schemas of the namespace (`/api/v1/fs`, `/api/v1/files`,
 * `/api/v1/trash`), downloads (`/api/v1/files/:id/content`, `/api/v1/files/:id/link`,
 * `/api/v1/dl/:token`) and the change feed (`/api/v1/changes`). Paths are strings here;
 * the server checks every segment with `core/domain/names.ts` before using it.
 */
import { z } from 'zod';
import { timestampSchema } from './common.js';

/** Longest path accepted in a request (bytes are checked per segment by the name rules). */
export const MAX_PATH_CHARS = 4096;
/** Largest page of a listing. */
export const MAX_LIST_LIMIT = 1000;
/** Page size when `limit` is omitted. */
export const DEFAULT_LIST_LIMIT = 100;

/** A `/`-separated path in the owner's namespace; `/` is the root. */
export const pathSchema = z.string().min(1).max(MAX_PATH_CHARS);

/** A node id as the server hands it out (opaque). */
export const nodeIdSchema = z.string().min(1).max(128);

// ---------- requests ----------

/** `GET /fs/list?path=&limit=&cursor=&sort=&order=` */
export const listQuerySchema = z.strictObject({
  path: pathSchema.default('/'),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(DEFAULT_LIST_LIMIT),
  cursor: z.string().min(1).max(2048).optional(),
  sort: z.enum(['name', 'mtime', 'size']).default('name'),
  order: z.enum(['asc', 'desc']).default('asc'),
});
export type ListQuery = z.infer<typeof listQuerySchema>;

/** `GET /fs/stat?path=` */
export const statQuerySchema = z.strictObject({ path: pathSchema });

/** `POST /fs/mkdir`: `parents` creates missing ancestors and accepts an existing folder (mkdir -p). */
export const mkdirBodySchema = z.strictObject({ path: pathSchema, parents: z.boolean().default(false) });
export type MkdirBody = z.infer<typeof mkdirBodySchema>;

/** Most folders in one `POST /fs/mkdirs`. */
export const MAX_MKDIRS = 1000;

/**
 * `POST /fs/mkdirs`: many `mkdir -p` in one request (a new tree's folders). Each path is
 * checked on its own: a bad one is that item's error, not the request's.
 */
export const mkdirsBodySchema = z.strictObject({
  paths: z.array(z.string().max(MAX_PATH_CHARS)).min(1).max(MAX_MKDIRS),
});
export type MkdirsBody = z.infer<typeof mkdirsBodySchema>;

/** `POST /fs/move` and `POST /fs/copy`: `to` is the full new path (its parent must exist). */
export const moveBodySchema = z.strictObject({ from: pathSchema, to: pathSchema });
export type MoveBody = z.infer<typeof moveBodySchema>;
export const copyBodySchema = moveBodySchema;
export type CopyBody = MoveBody;

/** `POST /fs/delete`: moves the node (and its subtree) to the trash. */
export const deleteBodySchema = z.strictObject({ path: pathSchema });

/** Longest lifetime of a signed download URL: 24 h. */
export const MAX_LINK_SECONDS = 86_400;
/** Lifetime when `expiresIn` is omitted: 15 min. */
export const DEFAULT_LINK_SECONDS = 900;

/** `POST /files/:id/link` */
export const linkBodySchema = z.strictObject({
  expiresIn: z.number().int().min(1).max(MAX_LINK_SECONDS).default(DEFAULT_LINK_SECONDS),
});

/** Longest long-poll, seconds. */
export const MAX_WAIT_SECONDS = 60;
/** Largest page of the change feed. */
export const MAX_CHANGES_LIMIT = 1000;

/**
 * `GET /changes?cursor=&limit=&wait=`. `cursor` is a seq (`0` = from the beginning) or
 * `latest` (the default: answer at once with the current seq and no changes).
 */
export const changesQuerySchema = z.strictObject({
  cursor: z
    .union([
      z.literal('latest'),
      z
        .string()
        .regex(/^\d{1,15}$/u, 'a seq (digits) or "latest"')
        .transform(Number),
    ])
    .default('latest'),
  limit: z.coerce.number().int().min(1).max(MAX_CHANGES_LIMIT).default(100),
  wait: z.coerce.number().min(0).max(MAX_WAIT_SECONDS).default(0),
});
export type ChangesQuery = z.infer<typeof changesQuerySchema>;

// ---------- responses ----------

/** One node as the API shows it. */
export const entrySchema = z.object({
  /** `null` only for the root folder (`GET /fs/stat?path=/`). */
  id: z.string().nullable(),
  name: z.string(),
  /** The absolute path; for an item in the trash, where it was. */
  path: z.string(),
  parentId: z.string().nullable(),
  kind: z.enum(['folder', 'file']),
  size: z.number(),
  sha256: z.string().nullable(),
  /** Client modification time, ms since epoch. */
  mtime: z.number().nullable(),
  revision: z.number(),
  status: z.enum(['pending', 'ready', 'failed']),
  mediaType: z.string().nullable(),
  trashedAt: timestampSchema.nullable(),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type Entry = z.infer<typeof entrySchema>;

/** A field of `Entry`, as `GET /fs/tree?fields=` names it. */
export const entryFieldSchema = entrySchema.keyof();
export type EntryField = z.infer<typeof entryFieldSchema>;

/**
 * `GET /fs/tree?path=&fields=`: `fields` (comma-separated) limits each line to those
 * fields plus `path`; without it every field comes. A sync that compares sizes, times
 * and hashes needs a third of an entry's bytes.
 */
export const treeQuerySchema = z.strictObject({
  path: pathSchema,
  fields: z
    .string()
    .max(500)
    .transform((v) => v.split(','))
    .pipe(z.array(entryFieldSchema).min(1))
    .optional(),
});

export const entryPageSchema = z.object({ items: z.array(entrySchema), nextCursor: z.string().nullable() });

/** One path of `POST /fs/mkdirs`, in request order: the folder, or why it could not be made. */
export const mkdirsItemSchema = z.union([
  z.object({ path: z.string(), entry: entrySchema }),
  z.object({ path: z.string(), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export const mkdirsResponseSchema = z.object({ items: z.array(mkdirsItemSchema) });
export type MkdirsResponse = z.infer<typeof mkdirsResponseSchema>;
export type EntryPage = z.infer<typeof entryPageSchema>;

export const revisionSchema = z.object({
  revision: z.number(),
  sha256: z.string(),
  size: z.number(),
  mtime: z.number().nullable(),
  mediaType: z.string().nullable(),
  createdAt: timestampSchema,
  /** True for the file's current revision. */
  current: z.boolean(),
});
export type RevisionBody = z.infer<typeof revisionSchema>;

export const revisionListSchema = z.object({ items: z.array(revisionSchema) });

export const linkResponseSchema = z.object({ url: z.string(), expiresAt: timestampSchema });
export type LinkResponse = z.infer<typeof linkResponseSchema>;

export const changeSchema = z.object({
  seq: z.number(),
  kind: z.enum(['create', 'update', 'move', 'delete', 'restore', 'purge', 'notify']),
  nodeId: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  createdAt: timestampSchema,
});
export type ChangeBody = z.infer<typeof changeSchema>;

/** `cursor` is the seq of the last change returned, or the given cursor when none. */
export const changesResponseSchema = z.object({
  changes: z.array(changeSchema),
  cursor: z.number(),
  hasMore: z.boolean(),
});
export type ChangesResponse = z.infer<typeof changesResponseSchema>;

export const latestResponseSchema = z.object({ cursor: z.number() });
