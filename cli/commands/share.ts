/**
 * `aio share create|ls|revoke|user|shared-with-me`: public links and shares with other
 * users. With `--json` each prints the API's document (`contract/schemas/shares.ts`):
 * `create` the created link (with `url` and `token`), `ls` `{ items }` of shares,
 * `revoke` `{ revoked: id }`, `user` the 202 answer, `shared-with-me` `{ items }`.
 */
import { AppError } from '../../contract/errors.js';
import type {
  CreatedLinkBody,
  ShareBody,
  ShareListBody,
  SharedWithMeBody,
  UserShareAcceptedBody,
} from '../../contract/schemas/shares.js';
import { parseDuration } from '../../core/domain/duration.js';
import { requireLogin, type CliContext } from '../context.js';
import { table } from '../output.js';
import { readPassword } from '../prompt.js';
import { remotePath } from './remote.js';

export interface ShareCreateFlags {
  /** `7d`, `12h`, … or `never`. Default: the server's (7 days). */
  expires?: string;
  passwordStdin?: boolean;
  maxDownloads?: string;
}

export async function shareCreate(ctx: CliContext, path: string, flags: ShareCreateFlags): Promise<void> {
  await requireLogin(ctx);
  const body: Record<string, unknown> = { path: remotePath(path) };
  if (flags.expires !== undefined) {
    try {
      body.expiresIn = parseDuration(flags.expires);
    } catch (err) {
      throw new AppError('BAD_REQUEST', (err as Error).message);
    }
  }
  if (flags.maxDownloads !== undefined) {
    const n = Number(flags.maxDownloads);
    if (!Number.isInteger(n) || n < 1)
      throw new AppError('BAD_REQUEST', '--max-downloads must be a positive integer.');
    body.maxDownloads = n;
  }
  if (flags.passwordStdin)
    body.password = await readPassword(ctx, { fromStdin: true, message: 'Link password:' });
  const created = await ctx.client.post<CreatedLinkBody>('/api/v1/shares', body);
  // The URL is made absolute with the server the CLI talks to (the API answers with its own view of it).
  const url = `${ctx.server}/s/${created.token}`;
  const result = { ...created, url };
  ctx.out.result(result, () => [
    url,
    '',
    `Link ${created.id} to ${created.path ?? path}, expires ${created.expiresAt ?? 'never'}` +
      `${created.hasPassword ? ', password-protected' : ''}` +
      `${created.maxDownloads === null ? '' : `, at most ${created.maxDownloads} downloads`}.`,
    'The URL is shown only once.',
  ]);
}

function describeTarget(s: ShareBody): string {
  return s.type === 'user' ? `${s.grantee?.email ?? '?'} (${s.role})` : 'link';
}

export async function shareList(ctx: CliContext): Promise<void> {
  await requireLogin(ctx);
  const list = await ctx.client.get<ShareListBody>('/api/v1/shares');
  ctx.out.result(list, () =>
    list.items.length === 0
      ? 'No shares.'
      : table([
          ['ID', 'PATH', 'WITH', 'STATE', 'DOWNLOADS', 'EXPIRES'],
          ...list.items.map((s) => [
            s.id,
            s.path ?? '(gone)',
            describeTarget(s),
            s.state,
            s.maxDownloads === null ? String(s.downloads) : `${s.downloads}/${s.maxDownloads}`,
            s.expiresAt ?? 'never',
          ]),
        ]),
  );
}

export async function shareRevoke(ctx: CliContext, id: string): Promise<void> {
  await requireLogin(ctx);
  await ctx.client.delete(`/api/v1/shares/${encodeURIComponent(id)}`);
  ctx.out.result({ revoked: id }, () => `Revoked share ${id}.`);
}

export async function shareUser(
  ctx: CliContext,
  path: string,
  flags: { with: string; role?: string },
): Promise<void> {
  await requireLogin(ctx);
  const role = flags.role ?? 'viewer';
  if (role !== 'viewer' && role !== 'editor')
    throw new AppError('BAD_REQUEST', '--role must be viewer or editor.');
  const res = await ctx.client.post<UserShareAcceptedBody>('/api/v1/shares/users', {
    path: remotePath(path),
    email: flags.with,
    role,
  });
  ctx.out.result(
    res,
    () =>
      `Shared ${res.path} with ${res.email} as ${res.role} (if that account exists, it sees it under /Shared).`,
  );
}

export async function sharedWithMe(ctx: CliContext): Promise<void> {
  await requireLogin(ctx);
  const res = await ctx.client.get<{ items: SharedWithMeBody[] }>('/api/v1/shares/with-me');
  ctx.out.result(res, () =>
    res.items.length === 0
      ? 'Nothing is shared with you.'
      : table([
          ['PATH', 'ROLE', 'FROM'],
          ...res.items.map((s) => [s.path + (s.kind === 'folder' ? '/' : ''), s.role, s.owner.email]),
        ]),
  );
}
