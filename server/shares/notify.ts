/**
 * Notifications: a `notify` change on the user's own feed (durable, with a read marker
 * in the store; see `MetadataStore.listNotifications`), announced to long-polls.
 */
import { announceChange } from '../../core/changes.js';
import type { AppDeps } from '../deps.js';

/** Best effort: the action that notifies has happened; a failure here is logged, not thrown. */
export async function notify(
  deps: Pick<AppDeps, 'metadata' | 'cache' | 'logger'>,
  userId: string,
  type: string,
  data: Record<string, unknown>,
): Promise<void> {
  try {
    const change = await deps.metadata.appendChange(userId, 'notify', null, { ...data, type });
    await announceChange(deps.cache, userId, change.seq);
  } catch (err) {
    deps.logger.warn({ err, userId, type }, 'could not append a notification');
  }
}
