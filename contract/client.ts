/**
 * The typed HTTP client shared by the CLI and the daemon. It speaks JSON to the API,
 * turns every error response into an `AppError` with the server's stable code, and
 * retries a request once with a fresh access token when the server says the token
 * expired (the `TokenProvider` decides how to refresh).
 *
 * Built on Node's own HTTP client: it loads in no time (the CLI starts for every
 * command) and adds nothing between a request and the socket.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { AppError, isErrorCode, type ErrorBody } from './errors.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

export interface TokenProvider {
  /** The token to send, or null when not logged in. */
  current(): Promise<string | null>;
  /** Called once after a 401 INVALID_TOKEN; returns a new token or null (then the 401 stands). */
  refresh(): Promise<string | null>;
}

export const anonymous: TokenProvider = {
  current: async () => null,
  refresh: async () => null,
};

export interface RequestOptions {
  json?: unknown;
  /** Raw request body (instead of `json`). */
  body?: Buffer;
  searchParams?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** Send the Authorization header (default true). */
  auth?: boolean;
  timeoutMs?: number;
  /** Cancels the request (e.g. a long-poll when its owner stops); it then rejects. */
  signal?: AbortSignal;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export const USER_AGENT = 'aio-storage-client/0.1';

/** Idempotent requests are retried with backoff on these answers and on connection errors. */
const RETRY_METHODS: ReadonlySet<Method> = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);
const RETRY_ERROR_CODES: ReadonlySet<string> = new Set([
  'ETIMEDOUT',
  'ECONNRESET',
  'EADDRINUSE',
  'ECONNREFUSED',
  'EPIPE',
  'ENOTFOUND',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
const RETRY_LIMIT = 3;

/**
 * Node's global agents: keep-alive, and idle sockets are dropped after 5 s (before the
 * server's keep-alive timeout), so a request never goes out on a socket the server closed.
 */
export function agentFor(url: URL): http.Agent {
  return url.protocol === 'https:' ? https.globalAgent : http.globalAgent;
}

/** `http.request` or `https.request`, by the URL's scheme. */
export function requestFor(url: URL): typeof http.request {
  return url.protocol === 'https:' ? https.request : http.request;
}

/** Builds an AppError from an error response (or a generic one for non-JSON bodies). */
export function errorFromResponse(status: number, body: Buffer | string): AppError {
  try {
    const parsed = JSON.parse(body.toString()) as Partial<ErrorBody>;
    const code = parsed.error?.code;
    if (isErrorCode(code)) {
      return new AppError(code, parsed.error?.message, { details: parsed.error?.details });
    }
  } catch {
    // not JSON: fall through
  }
  if (status === 401) return new AppError('UNAUTHENTICATED');
  if (status === 403) return new AppError('FORBIDDEN');
  if (status === 404) return new AppError('NOT_FOUND');
  if (status === 409) return new AppError('CONFLICT');
  if (status === 429) return new AppError('RATE_LIMITED');
  if (status >= 500) return new AppError('SERVICE_UNAVAILABLE', `The server answered ${status}.`);
  return new AppError('BAD_REQUEST', `The server answered ${status}.`);
}

/** Network-level failures (refused, reset, timeout) → SERVICE_UNAVAILABLE with the server named. */
export function networkError(server: string, err: unknown): AppError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return new AppError('SERVICE_UNAVAILABLE', `Cannot reach ${server}${code ? ` (${code})` : ''}.`, {
    cause: err,
  });
}

export class ApiClient {
  readonly server: string;
  private readonly tokens: TokenProvider;

  constructor(server: string, tokens: TokenProvider = anonymous) {
    this.server = server.replace(/\/+$/, '');
    this.tokens = tokens;
  }

  /** The authorization header for requests made outside this client (tus, downloads). */
  async authHeaders(): Promise<Record<string, string>> {
    const token = await this.tokens.current();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async refreshAuth(): Promise<boolean> {
    return (await this.tokens.refresh()) !== null;
  }

  /** Sends a request and returns the raw response, retrying once after a token refresh. */
  async raw(method: Method, path: string, options: RequestOptions = {}): Promise<RawResponse> {
    const url = new URL(`${this.server}/${path.replace(/^\//, '')}`);
    for (const [k, v] of Object.entries(options.searchParams ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    let body = options.body;
    const baseHeaders: Record<string, string> = { 'user-agent': USER_AGENT, ...options.headers };
    if (options.json !== undefined) {
      body = Buffer.from(JSON.stringify(options.json), 'utf8');
      baseHeaders['content-type'] = 'application/json';
    }
    const send = async (): Promise<RawResponse> => {
      const headers = { ...baseHeaders };
      if (options.auth !== false) Object.assign(headers, await this.authHeaders());
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await exchange(method, url, headers, body, options);
          if (attempt > RETRY_LIMIT || !RETRY_METHODS.has(method) || !RETRY_STATUSES.has(res.status))
            return res;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const retry =
            attempt <= RETRY_LIMIT &&
            RETRY_METHODS.has(method) &&
            options.signal?.aborted !== true &&
            code !== undefined &&
            RETRY_ERROR_CODES.has(code);
          if (!retry) throw networkError(this.server, err);
        }
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 4000)));
      }
    };
    let res = await send();
    if (
      res.status === 401 &&
      options.auth !== false &&
      isTokenError(res.body) &&
      (await this.refreshAuth())
    ) {
      res = await send();
    }
    return res;
  }

  /** JSON request; throws `AppError` for any status ≥ 400. `undefined` for 204. */
  async request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.requestWithStatus<T>(method, path, options)).body;
  }

  /** `request`, with the success status (e.g. 201 made, 200 already there). */
  async requestWithStatus<T>(
    method: Method,
    path: string,
    options: RequestOptions = {},
  ): Promise<{ status: number; body: T }> {
    const res = await this.raw(method, path, options);
    if (res.status >= 400) throw errorFromResponse(res.status, res.body);
    if (res.status === 204 || res.body.length === 0) return { status: res.status, body: undefined as T };
    return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as T };
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, json?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, { ...options, json });
  }

  patch<T>(path: string, json?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, { ...options, json });
  }

  delete<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, options);
  }
}

function isTokenError(body: Buffer): boolean {
  try {
    const code = (JSON.parse(body.toString()) as Partial<ErrorBody>).error?.code;
    return code === 'INVALID_TOKEN';
  } catch {
    return false;
  }
}

/** One request/response: the whole answer body is read; a timeout or abort rejects. */
function exchange(
  method: Method,
  url: URL,
  headers: Record<string, string>,
  body: Buffer | undefined,
  options: RequestOptions,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError());
      return;
    }
    const req = requestFor(url)(url, {
      method,
      headers: body ? { ...headers, 'content-length': String(body.length) } : headers,
      agent: agentFor(url),
    });
    const timer = setTimeout(() => {
      req.destroy(
        Object.assign(new Error(`Timeout awaiting the answer to ${method} ${url.pathname}`), {
          code: 'ETIMEDOUT',
        }),
      );
    }, options.timeoutMs ?? 60_000);
    const onAbort = (): void => {
      req.destroy(abortError());
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    req.once('error', (err) => {
      done();
      reject(err);
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', (err) => {
        done();
        reject(err);
      });
      res.once('end', () => {
        done();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as IncomingHttpHeaders,
          body: Buffer.concat(chunks),
        });
      });
    });
    req.end(body);
  });
}

function abortError(): Error {
  return Object.assign(new Error('The request was cancelled.'), { name: 'AbortError', code: 'ABORT_ERR' });
}
