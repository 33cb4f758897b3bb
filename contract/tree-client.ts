/**
 * Reading remote folders, for the CLI (`aio sync`, `aio ls`) and the daemon (a two-way
 * folder's remote listing): one folder through `GET /fs/list` pages, a whole tree through
 * `GET /fs/tree` in one request, or folder by folder from a server without it.
 */
import type { ApiClient } from './client.js';
import { errorFromResponse } from './client.js';
import { AppError } from './errors.js';
import type { Entry, EntryField, EntryPage } from './schemas/files.js';

/** Folders listed at once while a tree is read folder by folder. */
const LISTINGS_AT_ONCE = 16;

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

/** Every entry of one folder, following `GET /fs/list` pages. */
export async function listFolder(client: ApiClient, path: string): Promise<Entry[]> {
  const items: Entry[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.get<EntryPage>('/api/v1/fs/list', {
      searchParams: { path, limit: 1000, cursor },
    });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return items;
}

/**
 * Every entry below the folder at `root`, by path relative to it: one `GET /fs/tree`
 * (with `fields`, only those), or, from a server without it and for `/Shared` itself
 * (which has no tree), folder by folder, a level at a time. A missing folder is empty;
 * a file at `root` is `CONFLICT`.
 */
export async function readRemoteTree<F extends EntryField = EntryField>(
  client: ApiClient,
  root: string,
  fields?: readonly F[],
): Promise<Map<string, Pick<Entry, F | 'path'>>> {
  const out = new Map<string, Pick<Entry, F | 'path'>>();
  const tree = await fetchTree(client, root, fields).catch((err: unknown) => {
    if (err instanceof AppError && err.code === 'BAD_REQUEST') return null;
    throw err;
  });
  if (tree !== null) {
    for (const entry of tree.entries) out.set(relativeTo(tree.path, entry.path), entry);
    return out;
  }
  // 404: no such folder, or no `/fs/tree` on this server; or `/Shared` itself.
  let level: Array<{ path: string; rel: string }> = [{ path: root, rel: '' }];
  while (level.length > 0) {
    const next: Array<{ path: string; rel: string }> = [];
    for (let i = 0; i < level.length; i += LISTINGS_AT_ONCE) {
      const dirs = level.slice(i, i + LISTINGS_AT_ONCE);
      let listed: Entry[][];
      try {
        listed = await Promise.all(dirs.map((dir) => listFolder(client, dir.path)));
      } catch (err) {
        const missingRoot = level[0]?.rel === '' && err instanceof AppError && err.code === 'NOT_FOUND';
        if (missingRoot) return out;
        throw err;
      }
      dirs.forEach((dir, d) => {
        for (const entry of listed[d] as Entry[]) {
          const rel = dir.rel === '' ? entry.name : `${dir.rel}/${entry.name}`;
          out.set(rel, entry);
          if (entry.kind === 'folder') next.push({ path: entry.path, rel });
        }
      });
    }
    level = next;
  }
  return out;
}
