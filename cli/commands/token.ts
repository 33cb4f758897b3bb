/** `aio token create|ls|revoke`: personal API tokens for CI (`AIO_TOKEN`). */
import { AppError } from '../../contract/errors.js';
import { parseDuration } from '../../core/domain/duration.js';
import { requireLogin, type CliContext } from '../context.js';
import { table } from '../output.js';

interface ApiTokenView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

const SCOPES = new Set(['read', 'write', 'share']);

export async function tokenCreate(
  ctx: CliContext,
  flags: { name: string; scopes?: string; expires?: string },
): Promise<void> {
  await requireLogin(ctx);
  const scopes = (flags.scopes ?? 'read,write,share')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const scope of scopes) {
    if (!SCOPES.has(scope))
      throw new AppError('BAD_REQUEST', `Unknown scope "${scope}": use read, write, share.`);
  }
  let expiresIn: number | null;
  try {
    expiresIn = parseDuration(flags.expires ?? '90d');
  } catch (err) {
    throw new AppError('BAD_REQUEST', (err as Error).message);
  }
  const created = await ctx.client.post<ApiTokenView & { token: string }>('/api/v1/tokens', {
    name: flags.name,
    scopes,
    expiresIn,
  });
  ctx.out.result(created, () => [
    created.token,
    '',
    `Token "${created.name}" (${created.scopes.join(',')}), expires ${created.expiresAt ?? 'never'}.`,
    'It is shown only once: store it as a secret (e.g. AIO_TOKEN in your CI).',
  ]);
}

export async function tokenList(ctx: CliContext): Promise<void> {
  await requireLogin(ctx);
  const { items: tokens } = await ctx.client.get<{ items: ApiTokenView[] }>('/api/v1/tokens');
  ctx.out.result(tokens, () =>
    tokens.length === 0
      ? 'No API tokens.'
      : table([
          ['ID', 'NAME', 'PREFIX', 'SCOPES', 'EXPIRES', 'LAST USED'],
          ...tokens.map((t) => [
            t.id,
            t.name,
            t.prefix,
            t.scopes.join(','),
            t.expiresAt ?? 'never',
            t.lastUsedAt ?? '-',
          ]),
        ]),
  );
}

export async function tokenRevoke(ctx: CliContext, id: string): Promise<void> {
  await requireLogin(ctx);
  await ctx.client.delete(`/api/v1/tokens/${encodeURIComponent(id)}`);
  ctx.out.result({ revoked: id }, () => `Revoked token ${id}.`);
}
