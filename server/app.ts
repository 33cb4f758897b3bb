/**
 * `createApp(deps)`: the Express 5 application. Every dependency comes in as an
 * argument, so tests build apps with real adapters in temp dirs and inject requests.
 */
import { randomUUID } from 'node:crypto';
import express, { type Express, type Request } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { AppDeps } from './deps.js';
import { errorHandler, notFoundHandler } from './middleware/error-handler.js';
import { healthRoutes } from './routes/health.js';
import { apiRoutes } from './routes/index.js';
import { sharePageRoutes } from './routes/share-page.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

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

export function createApp(deps: AppDeps): AppHandle {
  let draining = false;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.trustProxy);
  app.set('query parser', 'simple');

  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url),
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      autoLogging: {
        ignore: (req) => req.url === '/metrics' || (req.url ?? '').startsWith('/api/v1/health'),
      },
    }),
  );

  app.use((req, res, next) => {
    const end = deps.metrics.httpDuration.startTimer();
    res.on('finish', () => {
      end({ method: req.method, route: routeLabel(req), status: String(res.statusCode) });
    });
    next();
  });

  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'self'"],
        },
      },
      referrerPolicy: { policy: 'no-referrer' },
    }),
  );
  app.use(express.json({ limit: '1mb', strict: true }));

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

  return {
    app,
    setDraining(value: boolean) {
      draining = value;
    },
  };
}

/** A low-cardinality route label: the matched route pattern, never the raw URL. */
function routeLabel(req: Request): string {
  const route = req.route as { path?: unknown } | undefined;
  if (route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  return req.baseUrl ? `${req.baseUrl}/*` : 'unmatched';
}
