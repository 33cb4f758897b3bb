/**
 * The fast lane: `GET /api/v1/fs/list` answered without Express when the answer is a
 * plain 200. Sync clients and the web list folders far more than anything else, and a
 * V8 profile of the server under the listing load put about half of its CPU in Express
 * itself: `app.handle` gives every request and response new prototypes
 * (`Object.setPrototypeOf`), after which every property access on them, in Express and
 * in Node's own HTTP code, misses V8's inline caches (~25 % of the CPU in `LoadIC_Miss`
 * and `StoreIC_Miss` alone), plus the router's walk. Here a listing costs ~190 µs of
 * server CPU instead of ~500 (docs/performance.md, "Eighth pass").
 *
 * It is a subset of the Express route, never a second implementation of it: the same
 * authentication (`resolveAuth`), query schema, folder resolution and body
 * (`folderListing`, shared with the route), request id, access log, metric and security
 * headers (`observe`, `securityHeaders`, shared with the app). It answers only when the
 * request is exactly `GET /api/v1/fs/list[?query]` with a bearer token, no body and no
 * conditional header, and the answer is a 200; anything else — a HEAD, another
 * spelling of the path, an error of any kind (401, 403, 400, 404, 409, a failing
 * store), `/Shared` itself, `If-None-Match` — goes to Express untouched, which answers
 * it as it always did. Nothing is written to the response before the lane is sure, so
 * handing over is always possible.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import type { Express } from 'express';
import { listQuerySchema } from '../contract/schemas/files.js';
import type { AppDeps } from './deps.js';
import { bearerToken, resolveAuth } from './middleware/authenticate.js';
import { appEtag, folderListing, type EtagOf, type ListingBody } from './routes/fs.js';

const LIST_PATH = '/api/v1/fs/list';

export interface FastLaneOptions {
  deps: AppDeps;
  /** The app's per-request observation (request id header, metric, access log); returns the id. */
  observe(req: IncomingMessage, res: ServerResponse, route: string): string;
  /** The app's fixed security headers. */
  securityHeaders(res: ServerResponse): void;
}

type Handle = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/**
 * Puts the fast lane in front of the app for every way it is served: `http.createServer(app)`,
 * `app.listen`, supertest — all call `app.handle(req, res)`. A mounted app (called with
 * `next`) is left to Express: its requests already went through another app's.
 */
export function installFastLane(app: Express, options: FastLaneOptions): void {
  const holder = app as unknown as { handle: unknown };
  if (typeof holder.handle !== 'function')
    throw new Error('This Express has no app.handle; the fast lane cannot be installed.');
  const expressHandle = (holder.handle as Handle).bind(app);
  const lane = fastLane(options, () => appEtag(app));
  const handle: Handle = (req, res, next) => {
    if (next !== undefined || !lane(req, res, () => expressHandle(req, res))) expressHandle(req, res, next);
  };
  holder.handle = handle;
}

/**
 * Returns false when the request is not the lane's (Express takes it at once); true when
 * the lane took it: it then either answers or calls `toExpress()` with the response untouched.
 */
export function fastLane(
  options: FastLaneOptions,
  etagOf: () => EtagOf,
): (req: IncomingMessage, res: ServerResponse, toExpress: () => void) => boolean {
  const { deps } = options;
  return (req, res, toExpress) => {
    const query = laneQuery(req);
    if (query === null) return false;
    const token = bearerToken(req);
    if (token === null) return false;
    answer(deps, token, query, etagOf()).then(
      (listing) => {
        if (listing === null) {
          toExpress();
          return;
        }
        try {
          send(options, req, res, listing);
        } catch (err) {
          // Headers may be out already: nothing can be handed over any more.
          deps.logger.error({ err }, 'fast lane: sending a listing failed');
          res.destroy();
        }
      },
      // Every failure is Express's to answer (and to log), exactly as without the lane.
      () => toExpress(),
    );
    return true;
  };
}

/** The raw query string of a request that is the lane's, else null. */
function laneQuery(req: IncomingMessage): string | null {
  if (req.method !== 'GET') return null;
  const url = req.url;
  if (url === undefined || !url.startsWith(LIST_PATH)) return null;
  if (url.length !== LIST_PATH.length && url.charCodeAt(LIST_PATH.length) !== 0x3f /* ? */) return null;
  if (url.includes('#')) return null;
  const h = req.headers;
  if (
    h['content-length'] !== undefined ||
    h['transfer-encoding'] !== undefined ||
    h['if-none-match'] !== undefined ||
    h['if-modified-since'] !== undefined
  )
    return null;
  return url.slice(LIST_PATH.length + 1);
}

/** The listing as the route would send it with a 200, or null when the route must answer. */
async function answer(
  deps: AppDeps,
  token: string,
  rawQuery: string,
  etagOf: EtagOf,
): Promise<ListingBody | null> {
  const auth = await resolveAuth(deps, token);
  if (!auth.scopes.has('read')) return null;
  // Express's 'simple' query parser is node:querystring's parse.
  const query = listQuerySchema.safeParse(parseQueryString(rawQuery));
  if (!query.success) return null;
  return folderListing(deps, auth.user.id, query.data, etagOf);
}

/** What Express writes for the route's 200: the same headers, in the same order, and body. */
function send(
  options: FastLaneOptions,
  req: IncomingMessage,
  res: ServerResponse,
  listing: ListingBody,
): void {
  options.observe(req, res, LIST_PATH);
  options.securityHeaders(res);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  if (listing.etag) res.setHeader('ETag', listing.etag);
  res.setHeader('Content-Length', listing.bytes.length);
  res.end(listing.bytes);
}
