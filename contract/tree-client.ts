/**
 * `GET /api/v1/fs/tree`: every entry below a remote folder in one request, for the CLI
 * (`aio sync`) and the daemon (a two-way folder's remote listing).
 */
import type { ApiClient } from './client.js';
import { errorFromResponse } from './client.js';
import { AppError } from './errors.js';
import type { Entry, EntryField } from './schemas/files.js';

export interface RemoteTree<F extends EntryField> {
  /** The folder as the server spells it (the end line's `path`). */
  path: string;
  entries: Array<Pick<Entry, F | 'path'>>;
}

/**
 * Every entry below the folder at `path` (NDJSON ending with `{"end":true,"count":N}`);
 * `null` on 404: no such folder, or an older server without the endpoint (the caller
 * tells them apart and lists folder by folder). A cut answer (no end line, or a count
 * that differs) is an error, never a partial tree. With `fields`, each entry carries
 * only those (and its path); without, every field.
 */
export async function fetchTree<F extends EntryField = EntryField>(
  client: ApiClient,
  path: string,
  fields?: readonly F[],
): Promise<RemoteTree<F> | null> {
  const res = await client.raw('GET', '/api/v1/fs/tree', {
    searchParams: { path, ...(fields ? { fields: fields.join(',') } : {}) },
  });
  if (res.status === 404) return null;
  if (res.status >= 400) throw errorFromResponse(res.status, res.body);
  const lines = res.body.toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const end = JSON.parse(lines.pop() ?? '{}') as { end?: boolean; count?: number; path?: string };
  if (end.end !== true || end.count !== lines.length)
    throw new AppError('SERVICE_UNAVAILABLE', `The server's listing of ${path} was cut short; try again.`);
  return {
    path: end.path ?? path,
    entries: lines.map((line) => JSON.parse(line) as Pick<Entry, F | 'path'>),
  };
}

/** `entry` relative to the listed folder `root` (as `RemoteTree.path` spells it). */
export function relativeTo(root: string, entryPath: string): string {
  const prefix = root === '/' ? '/' : `${root}/`;
  if (!entryPath.startsWith(prefix))
    throw new AppError('INTERNAL', `The server listed ${entryPath} under ${root}.`);
  return entryPath.slice(prefix.length);
}
