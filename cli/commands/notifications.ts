/**
 * `aio notifications [--all]`: unread notifications (all with `--all`), newest first;
 * the unread ones shown are then marked read. `--json` prints `{ items }` as the API
 * lists them (`contract/schemas/shares.ts`).
 */
import type { NotificationBody, NotificationPage } from '../../contract/schemas/shares.js';
import { requireLogin, type CliContext } from '../context.js';

/** Most notifications fetched by one command. */
const MAX_SHOWN = 500;

export function describeNotification(n: NotificationBody): string {
  const d = n.data as Record<string, unknown>;
  const from = (d.from as { email?: string } | undefined)?.email;
  switch (n.type) {
    case 'share.received':
      return `${from ?? 'Someone'} shared ${String(d.name)} with you (${String(d.role)}): ${String(d.path ?? '')}`;
    case 'share.opened':
      return `Your link to ${String(d.name)} was opened for the first time.`;
    case 'zip.ready':
      return `Your zip is ready (job ${String(d.jobId)}).`;
    default:
      return n.type;
  }
}

export async function notifications(ctx: CliContext, flags: { all?: boolean }): Promise<void> {
  await requireLogin(ctx);
  const items: NotificationBody[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.client.get<NotificationPage>('/api/v1/notifications', {
      searchParams: { unread: flags.all ? undefined : '1', limit: 100, cursor },
    });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && items.length < MAX_SHOWN);
  const unread = items.filter((n) => n.readAt === null).map((n) => n.id);
  if (unread.length > 0) await ctx.client.post('/api/v1/notifications/read', { ids: unread });
  ctx.out.result({ items }, () =>
    items.length === 0
      ? flags.all
        ? 'No notifications.'
        : 'No unread notifications.'
      : items.map(
          (n) =>
            `${n.createdAt.replace('T', ' ').slice(0, 16)}  ${n.readAt === null ? '*' : ' '} ${describeNotification(n)}`,
        ),
  );
}
