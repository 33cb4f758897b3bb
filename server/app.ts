/**
 * `createApp(deps)`: the Express 5 application. Every dependency comes in as an
 * argument, so tests build apps with real adapters in temp dirs and inject requests.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type Request, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { AppDeps } from './deps.js';
import { installFastLane } from './fast-lane.js';
import { errorHandler, notFoundHandler } from './middleware/error-handler.js';
import { healthRoutes } from './routes/health.js';
import { apiRoutes } from './routes/index.js';
import { sharePageRoutes } from './routes/share-page.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id: a valid `X-Request-Id` from the client, else a new UUID; echoed back. */
    id: string;
    /** A child of the app's logger bound to `req: { id, method, url }` (url redacted). */
    log: Logger;
  }
}

/** Paths whose URL carries a secret (share tokens, signatures) are logged without it. */
export function redactUrl(url: string): string {
  const [path = '', query] = url.split('?', 2);
  const safePath = path
    .replace(/^\/s\/[^/]+/, '/s/[redacted]')
    .replace(/^\/api\/v1\/dl\/[^/]+/, '/api/v1/dl/[redacted]');
  if (query === undefined) return safePath;
  const params = new URLSearchParams(query);
  for (const key of ['sig', 'token', 'signature', 'password'])
    if (params.has(key)) params.set(key, 'redacted');
  return `${safePath}?${params.toString()}`;
}

export interface AppHandle {
  app: Express;
  /** Makes readiness answer 503 (used while shutting down). */
  setDraining(draining: boolean): void;
}

/** helmet's options: an API and share pages that load nothing from anywhere. */
export const SECURITY_HEADERS = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
    },
  },
  referrerPolicy: { policy: 'no-referrer' as const },
};

export interface AppOptions {
  /**
   * Answer the hottest reads without Express (`server/fast-lane.ts`); default true.
   * Off only to compare both lanes in tests.
   */
  fastLane?: boolean;
}

export function createApp(deps: AppDeps, options: AppOptions = {}): AppHandle {
  let draining = false;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.trustProxy);
  app.set('query parser', 'simple');

  const securityHeaders = recordFixedHeaders(helmet(SECURITY_HEADERS));
  provideRequestLogger(app, deps.logger);
  app.use((req, res, next) => {
    req.id = observeRequest(deps, req, res, {
      log: () => req.log,
      route: () => routeLabel(req),
    });
    next();
  });

  app.use((_req, res, next) => {
    securityHeaders(res);
    next();
  });
  app.use(withBodyOnly(express.json({ limit: '1mb', strict: true })));

  app.use(
    '/api/v1/health',
    healthRoutes(deps, () => draining),
  );
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
  app.use('/api/v1', apiRoutes(deps));
  app.use('/s', sharePageRoutes(deps));

  app.use(notFoundHandler());
  app.use(errorHandler());

  if (options.fastLane !== false) {
    installFastLane(app, {
      deps,
      observe: (req, res, route) =>
        observeRequest(deps, req, res, {
          log: (id) => requestLogger(deps.logger, id, req.method ?? '', req.url ?? ''),
          route: () => route,
        }),
      securityHeaders,
    });
  }

  return {
    app,
    setDraining(value: boolean) {
      draining = value;
    },
  };
}

/**
 * Runs a body parser only for a request that has a body (a Content-Length or a
 * Transfer-Encoding, as body-parser itself decides): most requests are GETs, and the
 * parser's checks on them cost 2–3 % of the server's CPU in the listing load test.
 */
export function withBodyOnly(parser: RequestHandler): RequestHandler {
  return (req, res, next) => {
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      next();
      return;
    }
    parser(req, res, next);
  };
}

/**
 * `req.log`, created on first use only: most requests never log, and binding the
 * request to a child logger costs more than the rest of a small request's logging.
 * Defined once on this app's request prototype; a value assigned to `req.log` wins.
 */
function provideRequestLogger(app: Express, logger: Logger): void {
  const own = (req: Request, value: Logger): Logger => {
    Object.defineProperty(req, 'log', { value, writable: true, configurable: true, enumerable: true });
    return value;
  };
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request): Logger {
      return own(this, requestLogger(logger, this.id, this.method, this.originalUrl ?? this.url));
    },
    set(this: Request, value: Logger) {
      own(this, value);
    },
  });
}

/** The logger of one request: bound to `req: { id, method, url }`, the url redacted. */
function requestLogger(logger: Logger, id: string, method: string, url: string): Logger {
  return logger.child({ req: { id, method, url: redactUrl(url) } });
}

/** Requests whose completion is not logged (scrapes and probes). */
function quietUrl(url: string): boolean {
  return url === '/metrics' || url.startsWith('/api/v1/health');
}

/**
 * Per request: the request id (`X-Request-Id`: a valid one from the client, else a new
 * UUID; returned), the duration metric (on `finish`), and one access-log line when the
 * response finishes or the connection closes before — `info` "request completed" /
 * "request aborted", or `error` "request errored" for a 5xx, with `req` (redacted url),
 * `res: { statusCode }` and `responseTime` (ms), as pino-http wrote them. Nothing is
 * built for a line whose level is off. For both lanes: `log` gives the request's logger
 * (asked only when a line is written), `route` its metric label (asked on `finish`).
 */
export function observeRequest(
  deps: Pick<AppDeps, 'logger' | 'metrics'>,
  req: IncomingMessage,
  res: ServerResponse,
  how: { log: (id: string) => Logger; route: () => string },
): string {
  const { logger, metrics } = deps;
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  const startedAt = Date.now();
  const endTimer = metrics.httpDuration.startTimer();
  const quiet = quietUrl(req.url ?? '');
  let done = false;
  const complete = (): void => {
    if (done) return;
    done = true;
    if (quiet) return;
    const failed = res.statusCode >= 500;
    if (!logger.isLevelEnabled(failed ? 'error' : 'info')) return;
    const fields = { res: { statusCode: res.statusCode }, responseTime: Date.now() - startedAt };
    if (failed) {
      how
        .log(id)
        .error({ ...fields, err: new Error(`failed with status code ${res.statusCode}`) }, 'request errored');
    } else {
      const whole = !req.readableAborted && res.writableEnded;
      how.log(id).info(fields, whole ? 'request completed' : 'request aborted');
    }
  };
  res.on('finish', () => {
    endTimer({ method: req.method, route: how.route(), status: String(res.statusCode) });
    complete();
  });
  res.on('close', complete);
  return id;
}

type HeaderStep = { set: string; value: string | number | readonly string[] } | { remove: string };

/**
 * The header changes of a middleware that looks at nothing in the request (helmet with
 * static options), recorded at start-up and replayed in one step per response: every
 * response gets exactly what the middleware sets, without its chain of eleven calls.
 * Throws at start-up if the middleware touches anything but setHeader/removeHeader,
 * does not finish at once, or sets different values on two runs (a per-request value
 * such as a CSP nonce must never be frozen into every response).
 */
export function recordFixedHeaders(middleware: ReturnType<typeof helmet>): (res: ServerResponse) => void {
  const record = (): HeaderStep[] => {
    const steps: HeaderStep[] = [];
    const recorder = {
      setHeader(name: string, value: string | number | readonly string[]) {
        steps.push({ set: name, value });
        return recorder;
      },
      removeHeader(name: string) {
        steps.push({ remove: name });
      },
    };
    let finished = false;
    middleware(
      {} as Parameters<typeof middleware>[0],
      recorder as unknown as Parameters<typeof middleware>[1],
      (err?: unknown) => {
        if (err !== undefined && err !== null) throw err;
        finished = true;
      },
    );
    if (!finished) throw new Error('The header middleware did not finish at once.');
    return steps;
  };
  const steps = record();
  if (JSON.stringify(record()) !== JSON.stringify(steps))
    throw new Error('The header middleware sets per-request values; it cannot be replayed.');
  return (res) => {
    for (const step of steps) {
      if ('set' in step) res.setHeader(step.set, step.value);
      else res.removeHeader(step.remove);
    }
  };
}

/** A low-cardinality route label: the matched route pattern, never the raw URL. */
function routeLabel(req: Request): string {
  const route = req.route as { path?: unknown } | undefined;
  if (route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  return req.baseUrl ? `${req.baseUrl}/*` : 'unmatched';
}
