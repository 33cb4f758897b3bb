/**
 * `aio-server`: reads the configuration, opens the adapters, listens, prints
 * `aio-server listening on http://HOST:PORT` on stdout, and with AIO_WORKER=inline runs
 * the worker in the same process. SIGTERM/SIGINT drain and close everything within
 * AIO_SHUTDOWN_TIMEOUT_MS (exit 0), or exit 1 when that is not enough.
 *
 * Exit codes: 0 clean shutdown, 1 start-up or shutdown failure, 2 bad configuration.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { Adapters } from '../core/adapters/open.js';
import { jobHandlers } from '../worker/jobs/index.js';
import { startWorker, type WorkerRuntime } from '../worker/runtime.js';
import { createApp } from './app.js';
import { BodyMemory, RECLAIM_EVERY_BYTES, exposedMajorGc, exposedMinorGc } from './body-memory.js';
import { backgroundTasks } from './background.js';
import type { AppDeps } from './deps.js';
import {
  closeHttpServer,
  createLogger,
  installProcessHandlers,
  loadConfigOrExit,
  startTasks,
  stopTasks,
} from './lifecycle.js';
import { Metrics } from './metrics.js';
import { openRuntime } from './runtime-deps.js';

/** The part of the shutdown budget in-flight requests get before their connections are cut. */
const HTTP_GRACE_SHARE = 0.5;

/**
 * Buffer sizes of requests, responses and their sockets. At Node's default (16 KiB) every
 * 64 KiB piece of a request body overfills the request's buffer, so the socket's reading
 * is stopped and started again for each one; with 1 MiB it goes on while the body is
 * written (W1 upload probes 2.26-2.76 -> 2.27-2.44 s, server CPU ~0.15 s less per GiB).
 */
const STREAM_BUFFER_BYTES = 1024 * 1024;

async function main(): Promise<void> {
  const config = loadConfigOrExit('aio-server');
  const logger = createLogger(config, 'aio-server');
  let adapters: Adapters | undefined;
  try {
    const runtime = await openRuntime(config, logger);
    adapters = runtime.adapters;
    const minorGc = exposedMinorGc();
    const majorGc = exposedMajorGc() ?? undefined;
    const deps: AppDeps = {
      ...runtime.deps,
      metrics: new Metrics({ queue: runtime.deps.queue }),
      ...(minorGc ? { bodyMemory: new BodyMemory(minorGc, RECLAIM_EVERY_BYTES, majorGc) } : {}),
    };
    await run(config, deps, runtime.adapters, logger);
  } catch (err) {
    logger.fatal({ err }, 'aio-server failed to start');
    process.stderr.write(`aio-server: ${err instanceof Error ? err.message : String(err)}\n`);
    await adapters?.close().catch(() => undefined);
    process.exit(1);
  }
}

async function run(
  config: Readonly<Config>,
  deps: AppDeps,
  adapters: Adapters,
  logger: Logger,
): Promise<void> {
  const handle = createApp(deps);
  const server = http.createServer({ highWaterMark: STREAM_BUFFER_BYTES }, handle.app);
  await listen(server, config.host, config.port);
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  let worker: WorkerRuntime | undefined;
  const tasks = backgroundTasks(deps);
  installProcessHandlers({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    async shutdown() {
      handle.setDraining(true);
      // Jobs in flight get the whole budget, so the worker stops while requests drain.
      await Promise.all([
        closeHttpServer(server, Math.floor(config.shutdownTimeoutMs * HTTP_GRACE_SHARE), logger),
        worker?.stop(),
      ]);
      await stopTasks(tasks, logger);
      await adapters.close();
    },
  });

  if (config.worker === 'inline') {
    worker = await startWorker(deps, jobHandlers(deps), {
      concurrency: config.workerConcurrency,
      metrics: deps.metrics,
    });
  }
  startTasks(tasks, logger);
  logger.info(
    {
      url,
      adapters: adapters.kinds,
      worker: config.worker,
      dataDir: config.dataDir,
      storageDir: config.storageDir,
      backgroundTasks: tasks.map((t) => t.name),
      earlyBodyCollection: deps.bodyMemory !== undefined,
      // glibc's, from the environment (bin/aio-server sets it; README, "The programs").
      mallocTrimThreshold: process.env.MALLOC_TRIM_THRESHOLD_ ?? null,
      mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null,
    },
    'aio-server started',
  );
  process.stdout.write(`aio-server listening on ${url}\n`);
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

await main();
