/**
 * Process life of `aio-server` and `aio-worker`: background tasks started after start-up
 * and stopped on shutdown, draining the HTTP server, and one shutdown path for
 * SIGTERM/SIGINT bounded by a deadline. Fatal process errors log and exit 1.
 */
import type { Server } from 'node:http';
import { pino, type Logger } from 'pino';
import { EXIT } from '../contract/errors.js';
import { ConfigError, loadConfig, type Config } from '../core/config.js';

/** Something that runs beside the server (maintenance, outbox relay, heartbeat). */
export interface BackgroundTask {
  readonly name: string;
  /** Starts the task; must not throw (report trouble through the logger). */
  start(): void;
  /** Stops it and resolves once its current run has finished. */
  stop(): Promise<void>;
}

/**
 * A task that runs `run` every `intervalMs` (the first time after `firstDelayMs`, default
 * one interval). Runs never overlap; a failing run is logged and the next one still
 * comes. `stop()` aborts the signal given to the current run and waits for it.
 */
export function periodic(
  name: string,
  intervalMs: number,
  run: (signal: AbortSignal) => Promise<void>,
  options: { logger: Logger; firstDelayMs?: number },
): BackgroundTask {
  const log = options.logger.child({ task: name });
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let controller: AbortController | undefined;
  let stopped = false;

  const schedule = (delay: number): void => {
    if (stopped) return;
    timer = setTimeout(tick, delay);
  };
  const tick = (): void => {
    timer = undefined;
    controller = new AbortController();
    const signal = controller.signal;
    current = (async () => {
      try {
        await run(signal);
      } catch (err) {
        if (!signal.aborted) log.error({ err }, 'background task failed');
      }
    })().finally(() => {
      current = undefined;
      schedule(intervalMs);
    });
  };

  return {
    name,
    start() {
      stopped = false;
      if (timer === undefined && current === undefined) schedule(options.firstDelayMs ?? intervalMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      controller?.abort();
      await current;
    },
  };
}

/** Starts the tasks in order. */
export function startTasks(tasks: readonly BackgroundTask[], logger: Logger): void {
  for (const task of tasks) {
    task.start();
    logger.debug({ task: task.name }, 'background task started');
  }
}

/** Stops the tasks in reverse order; a failure is logged and does not keep the others running. */
export async function stopTasks(tasks: readonly BackgroundTask[], logger: Logger): Promise<void> {
  for (const task of [...tasks].reverse()) {
    try {
      await task.stop();
    } catch (err) {
      logger.error({ err, task: task.name }, 'stopping a background task failed');
    }
  }
}

/**
 * Stops accepting connections and waits for in-flight requests. Idle keep-alive
 * connections close at once; requests still running after `graceMs` (long-polls,
 * stalled uploads) have their connections cut, so they cannot hold shutdown.
 */
export async function closeHttpServer(server: Server, graceMs: number, logger: Logger): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const grace = setTimeout(() => {
    logger.warn({ graceMs }, 'requests still running after the grace period; closing their connections');
    server.closeAllConnections();
  }, graceMs);
  try {
    await closed;
  } finally {
    clearTimeout(grace);
  }
}

export interface ShutdownOptions {
  logger: Logger;
  /** The whole shutdown must finish within this; otherwise the process exits 1. */
  timeoutMs: number;
  /** Drains and closes everything; the process exits 0 when it resolves. */
  shutdown: (signal: NodeJS.Signals) => Promise<void>;
}

/**
 * Installs the process handlers: SIGTERM/SIGINT run `shutdown` once (a second signal is
 * logged and ignored: the deadline already bounds the wait); unhandled rejections and
 * uncaught exceptions log at fatal level and exit 1.
 */
export function installProcessHandlers(options: ShutdownOptions): void {
  const { logger } = options;
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      logger.warn({ signal }, 'already shutting down');
      return;
    }
    shuttingDown = true;
    logger.info({ signal, timeoutMs: options.timeoutMs }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error({ timeoutMs: options.timeoutMs }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, options.timeoutMs);
    options.shutdown(signal).then(
      () => {
        clearTimeout(deadline);
        logger.info('shutdown complete');
        process.exit(0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection');
    process.exit(1);
  });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
}

/**
 * Reads the configuration for a program; a bad environment prints the one message that
 * lists every problem on stderr and exits 2 (nothing else is started).
 */
export function loadConfigOrExit(program: string, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${program}: ${err.message}\n`);
    process.exit(EXIT.USAGE);
  }
}

/** JSON logs on stdout, written synchronously so nothing is lost when the process exits. */
export function createLogger(config: Readonly<Config>, program: string): Logger {
  return pino(
    { level: config.logLevel, base: { program, pid: process.pid } },
    pino.destination({ dest: 1, sync: true }),
  );
}
