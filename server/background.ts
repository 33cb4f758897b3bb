/**
 * The background tasks of `aio-server`, started after it listens and stopped (in
 * reverse order) on shutdown. Periodic maintenance (expired uploads, trash purge,
 * blob garbage collection) and the outbox relay are added here, each built with
 * `periodic()` from `./lifecycle.js` or as its own `BackgroundTask`.
 */
import type { AppDeps } from './deps.js';
import { TrashPurge } from './files/trash-purge.js';
import type { BackgroundTask } from './lifecycle.js';
import { OutboxRelay } from './outbox-relay.js';
import { UploadExpiry } from './upload-expiry.js';

/** Gives a `start()`/`stop()` object the name the lifecycle logs it by. */
function named(name: string, task: { start(): void; stop(): Promise<unknown> }): BackgroundTask {
  return {
    name,
    start: () => task.start(),
    stop: async () => {
      await task.stop();
    },
  };
}

export function backgroundTasks(deps: AppDeps): BackgroundTask[] {
  const { metadata, blobs, cache, clock, logger } = deps;
  return [
    new OutboxRelay(deps),
    new UploadExpiry(deps),
    named('trash-purge', new TrashPurge({ metadata, blobs, cache, clock, logger })),
  ];
}
