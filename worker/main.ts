/**
 * `aio-worker`: consumes the job queues with the handlers of `./jobs/index.ts`. Many can
 * run at once against the same services. SIGTERM/SIGINT stop taking jobs, wait for the
 * ones in flight and close the adapters within AIO_SHUTDOWN_TIMEOUT_MS (exit 0), or
 * exit 1 when that is not enough.
 *
 * While running it touches `<tmpdir>/aio-worker.heartbeat` every few seconds, so a
 * container health check can tell a live worker from a stuck one.
 *
 * Exit codes: 0 clean shutdown, 1 start-up or shutdown failure, 2 bad configuration.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Adapters } from '../core/adapters/open.js';
import {
  createLogger,
  installProcessHandlers,
  loadConfigOrExit,
  periodic,
  startTasks,
  stopTasks,
} from '../server/lifecycle.js';
import { openRuntime } from '../server/runtime-deps.js';
import { jobHandlers } from './jobs/index.js';
import { startWorker } from './runtime.js';

export const HEARTBEAT_FILE = path.join(os.tmpdir(), 'aio-worker.heartbeat');
const HEARTBEAT_INTERVAL_MS = 5_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit('aio-worker');
  const logger = createLogger(config, 'aio-worker');
  let adapters: Adapters | undefined;
  try {
    const runtime = await openRuntime(config, logger);
    adapters = runtime.adapters;
    const { deps } = runtime;
    const worker = await startWorker(deps, jobHandlers(deps), { concurrency: config.workerConcurrency });
    const touch = () => fs.writeFile(HEARTBEAT_FILE, `${new Date().toISOString()}\n`);
    const tasks = [periodic('heartbeat', HEARTBEAT_INTERVAL_MS, touch, { logger, firstDelayMs: 0 })];
    const opened = runtime.adapters;
    installProcessHandlers({
      logger,
      timeoutMs: config.shutdownTimeoutMs,
      async shutdown() {
        await stopTasks(tasks, logger);
        await fs.rm(HEARTBEAT_FILE, { force: true });
        await worker.stop();
        await opened.close();
      },
    });
    startTasks(tasks, logger);
    logger.info(
      { adapters: opened.kinds, queues: worker.queues, dataDir: config.dataDir },
      'aio-worker started',
    );
  } catch (err) {
    logger.fatal({ err }, 'aio-worker failed to start');
    process.stderr.write(`aio-worker: ${err instanceof Error ? err.message : String(err)}\n`);
    await adapters?.close().catch(() => undefined);
    process.exit(1);
  }
}

await main();
