/**
 * Opens what both programs (`aio-server`, `aio-worker`) run on: the data dir, the
 * adapters chosen by the configuration and the JWT secret, as the worker's dependencies
 * (the server adds its metrics on top).
 */
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import { openAdapters, type Adapters } from '../core/adapters/open.js';
import type { Config } from '../core/config.js';
import { systemClock } from '../core/domain/clock.js';
import type { WorkerDeps } from '../worker/deps.js';
import { resolveJwtSecret } from './secret.js';

/** Closes the adapters again when a later step fails, so the caller only closes what it got. */
export async function openRuntime(
  config: Readonly<Config>,
  logger: Logger,
): Promise<{ deps: WorkerDeps; adapters: Adapters }> {
  await fs.mkdir(config.dataDir, { recursive: true });
  const adapters = await openAdapters(config, { logger, clock: systemClock });
  try {
    const deps: WorkerDeps = {
      config,
      jwtSecret: await resolveJwtSecret(config),
      metadata: adapters.metadata,
      queue: adapters.queue,
      cache: adapters.cache,
      blobs: adapters.blobs,
      logger,
      clock: systemClock,
    };
    return { deps, adapters };
  } catch (err) {
    await adapters.close().catch(() => undefined);
    throw err;
  }
}
