/**
 * The background tasks of `aio-server`, started after it listens and stopped (in
 * reverse order) on shutdown. Periodic maintenance (expired uploads, trash purge,
 * blob garbage collection) and the outbox relay are added here, each built with
 * `periodic()` from `./lifecycle.js` or as its own `BackgroundTask`.
 */
import type { AppDeps } from './deps.js';
import type { BackgroundTask } from './lifecycle.js';

export function backgroundTasks(_deps: AppDeps): BackgroundTask[] {
  return [];
}
