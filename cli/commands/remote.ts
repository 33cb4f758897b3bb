/**
 * Namespace commands: `aio ls`, `mkdir`, `mv`, `cp`, `rm`, `trash ls|restore|purge`,
 * `versions`, `restore --version N`.
 */
import { AppError } from '../../contract/errors.js';
import { listFolder, readRemoteTree } from '../../contract/tree-client.js';
import type { Entry, EntryPage, RevisionBody } from '../../contract/schemas/files.js';
import { requireLogin, type CliContext } from '../context.js';
import { batchFailure } from '../batch.js';
import { formatBytes, table } from '../output.js';

export function remotePath(p: string): string {
  const withSlash = p.startsWith('/') ? p : `/${p}`;
  return withSlash.length > 1 ? withSlash.replace(/\/+$/, '') : withSlash;
}

export async function remoteStat(ctx: CliContext, path: string): Promise<Entry> {
  return ctx.client.get<Entry>('/api/v1/fs/stat', { searchParams: { path: remotePath(path) } });
}

/** Every entry of a folder, following pages. */
export function listAll(ctx: CliContext, path: string): Promise<Entry[]> {
  return listFolder(ctx.client, remotePath(path));
}

function when(ms: number | null | string): string {
  if (ms === null) return '-';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString().replace('T', ' ').slice(0, 19);
}

export async function ls(
  ctx: CliContext,
  path: string | undefined,
  flags: { long?: boolean; recursive?: boolean },
) {
  await requireLogin(ctx);
  const root = remotePath(path ?? '/');
  const target = await remoteStat(ctx, root);
  let entries: Entry[];
  if (target.kind === 'file') entries = [target];
  // The whole tree in one request, each folder before its contents.
  else if (flags.recursive) entries = [...(await readRemoteTree(ctx.client, root)).values()];
  else entries = await listAll(ctx, root);

  ctx.out.result(entries, () => {
    if (entries.length === 0) return null;
    const label = (e: Entry) => (flags.recursive ? e.path : e.name) + (e.kind === 'folder' ? '/' : '');
    if (!flags.long) return entries.map(label);
    return table(
      entries.map((e) => [
        e.kind === 'folder' ? 'd' : '-',
        e.kind === 'folder' ? '-' : formatBytes(e.size),
        when(e.mtime ?? e.updatedAt),
        e.kind === 'folder' ? '' : `r${e.revision}`,
        e.status === 'ready' ? '' : e.status,
        label(e),
      ]),
    );
  });
}

export async function mkdir(ctx: CliContext, path: string, flags: { parents?: boolean }) {
  await requireLogin(ctx);
  const { status, body: entry } = await ctx.client.requestWithStatus<Entry>('POST', '/api/v1/fs/mkdir', {
    json: { path: remotePath(path), parents: Boolean(flags.parents) },
  });
  // 201 made it; 200 (only with --parents, like `mkdir -p`) found it already there.
  const made = status === 201;
  ctx.out.result({ ...entry, created: made }, () =>
    ctx.out.quiet ? null : `${made ? 'Created' : 'Already there:'} ${entry.path}/`,
  );
}

async function destination(ctx: CliContext, from: string, to: string): Promise<string> {
  // `mv a.txt /docs/` or into an existing folder → keep the name, like mv(1).
  const target = remotePath(to);
  const name = remotePath(from).split('/').pop() as string;
  if (to.endsWith('/')) return `${target === '/' ? '' : target}/${name}`;
  try {
    const existing = await remoteStat(ctx, target);
    if (existing.kind === 'folder') return `${target === '/' ? '' : target}/${name}`;
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
  }
  return target;
}

export async function mv(ctx: CliContext, from: string, to: string) {
  await requireLogin(ctx);
  const dest = await destination(ctx, from, to);
  const entry = await ctx.client.post<Entry>('/api/v1/fs/move', { from: remotePath(from), to: dest });
  ctx.out.result(entry, () => (ctx.out.quiet ? null : `Moved ${remotePath(from)} → ${entry.path}`));
}

export async function cp(ctx: CliContext, from: string, to: string) {
  await requireLogin(ctx);
  const dest = await destination(ctx, from, to);
  const entry = await ctx.client.post<Entry>('/api/v1/fs/copy', { from: remotePath(from), to: dest });
  ctx.out.result(entry, () => (ctx.out.quiet ? null : `Copied ${remotePath(from)} → ${entry.path}`));
}

export async function rm(ctx: CliContext, paths: string[], flags: { recursive?: boolean }) {
  await requireLogin(ctx);
  const removed: Entry[] = [];
  const failed: Array<{ path: string; error: unknown }> = [];
  // Like rm(1): a path that cannot go is reported and the others still go.
  for (const p of paths) {
    try {
      const entry = await remoteStat(ctx, p);
      if (entry.id === null) throw new AppError('BAD_REQUEST', 'The root folder cannot be deleted.');
      if (entry.kind === 'folder' && !flags.recursive) {
        throw new AppError(
          'BAD_REQUEST',
          `${entry.path} is a folder: pass -r to move it and its contents to the trash.`,
        );
      }
      removed.push(await ctx.client.post<Entry>('/api/v1/fs/delete', { path: entry.path }));
    } catch (err) {
      if (paths.length === 1) throw err;
      failed.push({ path: remotePath(p), error: err });
      ctx.out.error(`${remotePath(p)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  ctx.out.result(removed, () => (ctx.out.quiet ? null : removed.map((e) => `Moved ${e.path} to the trash`)));
  if (failed.length)
    throw batchFailure(
      failed.map((f) => f.error),
      paths.length,
      'path(s)',
    );
}

export async function trashList(ctx: CliContext) {
  await requireLogin(ctx);
  const page = await ctx.client.get<EntryPage | { items: Entry[] }>('/api/v1/trash');
  const items = page.items;
  ctx.out.result(items, () =>
    items.length === 0
      ? 'The trash is empty.'
      : table([
          ['ID', 'TRASHED', 'SIZE', 'PATH'],
          ...items.map((e) => [
            e.id ?? '',
            when(e.trashedAt),
            e.kind === 'folder' ? '-' : formatBytes(e.size),
            e.path + (e.kind === 'folder' ? '/' : ''),
          ]),
        ]),
  );
}

export async function trashRestore(ctx: CliContext, id: string) {
  await requireLogin(ctx);
  const entry = await ctx.client.post<Entry>(`/api/v1/trash/${encodeURIComponent(id)}/restore`);
  ctx.out.result(entry, () => `Restored ${entry.path}`);
}

export async function trashPurge(ctx: CliContext, id: string) {
  await requireLogin(ctx);
  await ctx.client.delete(`/api/v1/trash/${encodeURIComponent(id)}`);
  ctx.out.result({ purged: id }, () => `Deleted ${id} for good.`);
}

export async function versions(ctx: CliContext, path: string) {
  await requireLogin(ctx);
  const entry = await remoteStat(ctx, path);
  if (entry.kind !== 'file' || !entry.id) throw new AppError('BAD_REQUEST', `${entry.path} is not a file.`);
  const res = await ctx.client.get<{ items: RevisionBody[] }>(
    `/api/v1/files/${encodeURIComponent(entry.id)}/versions`,
  );
  ctx.out.result(res.items, () =>
    table([
      ['VERSION', 'SIZE', 'MODIFIED', 'SHA256', ''],
      ...res.items.map((r) => [
        String(r.revision),
        formatBytes(r.size),
        when(r.mtime ?? r.createdAt),
        r.sha256.slice(0, 12),
        r.current ? 'current' : '',
      ]),
    ]),
  );
}

export async function restoreVersion(ctx: CliContext, path: string, flags: { version?: string }) {
  const revision = Number(flags.version);
  if (!Number.isInteger(revision) || revision < 1)
    throw new AppError('BAD_REQUEST', '--version must be a version number (see `aio versions PATH`).');
  await requireLogin(ctx);
  const entry = await remoteStat(ctx, path);
  if (entry.kind !== 'file' || !entry.id) throw new AppError('BAD_REQUEST', `${entry.path} is not a file.`);
  const restored = await ctx.client.post<Entry>(
    `/api/v1/files/${encodeURIComponent(entry.id)}/versions/${revision}/restore`,
  );
  ctx.out.result(
    restored,
    () => `Restored ${restored.path} to version ${revision} (now version ${restored.revision}).`,
  );
}
