/**
 * Liveness and readiness. Readiness pings every component with a short timeout and
 * answers 503 while any of them is down, naming which.
 */
import { Router } from 'express';
import type { AppDeps } from '../deps.js';

type ComponentStatus = { status: 'up' } | { status: 'down'; error: string };

const PING_TIMEOUT_MS = 1000;

async function probe(ping: () => Promise<void>): Promise<ComponentStatus & { latencyMs: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)),
          PING_TIMEOUT_MS,
        );
      }),
    ]);
    return { status: 'up', latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    return {
      status: 'down',
      error: err instanceof Error ? err.message : String(err),
      latencyMs: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(deps: AppDeps, isDraining: () => boolean): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    const [metadata, queue, cache, storage] = await Promise.all([
      probe(() => deps.metadata.ping()),
      probe(() => deps.queue.ping()),
      probe(() => deps.cache.ping()),
      probe(() => deps.blobs.ping()),
    ]);
    const components = { metadata, queue, cache, storage };
    const ready = !isDraining() && Object.values(components).every((c) => c.status === 'up');
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : isDraining() ? 'draining' : 'unavailable',
      components,
    });
  });
  return router;
}
