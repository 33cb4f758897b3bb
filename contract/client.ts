/**
 * The typed HTTP client shared by the CLI and the daemon. It speaks JSON to the API,
 * turns every error response into an `AppError` with the server's stable code, and
 * retries a request once with a fresh access token when the server says the token
 * expired (the `TokenProvider` decides how to refresh).
 */
import got, { type Got, type Method, RequestError } from 'got';
import { AppError, isErrorCode, type ErrorBody } from './errors.js';

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

const USER_AGENT = 'aio-storage-client/0.1';

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
  const code = err instanceof RequestError ? err.code : undefined;
  return new AppError('SERVICE_UNAVAILABLE', `Cannot reach ${server}${code ? ` (${code})` : ''}.`, {
    cause: err,
  });
}

export class ApiClient {
  readonly server: string;
  private readonly http: Got;
  private readonly tokens: TokenProvider;

  constructor(server: string, tokens: TokenProvider = anonymous) {
    this.server = server.replace(/\/+$/, '');
    this.tokens = tokens;
    this.http = got.extend({
      prefixUrl: this.server,
      throwHttpErrors: false,
      // Idempotent requests are retried with backoff on 502/503/504 and connection
      // errors; never on other 4xx/5xx, never for POST/PATCH.
      retry: {
        limit: 3,
        methods: ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'],
        statusCodes: [502, 503, 504],
        calculateDelay: ({ attemptCount, computedValue }) =>
          computedValue === 0 ? 0 : Math.min(250 * 2 ** attemptCount, 4000),
      },
      followRedirect: false,
      headers: { 'user-agent': USER_AGENT },
    });
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
    const send = async (): Promise<RawResponse> => {
      const headers: Record<string, string> = { ...options.headers };
      if (options.auth !== false) Object.assign(headers, await this.authHeaders());
      const searchParams: Record<string, string> = {};
      for (const [k, v] of Object.entries(options.searchParams ?? {}))
        if (v !== undefined) searchParams[k] = String(v);
      try {
        const res = await this.http(path.replace(/^\//, ''), {
          method,
          headers,
          searchParams,
          json: options.json,
          body: options.body,
          signal: options.signal,
          responseType: 'buffer',
          timeout: { request: options.timeoutMs ?? 60_000 },
        });
        return { status: res.statusCode, headers: res.headers, body: res.body };
      } catch (err) {
        throw networkError(this.server, err);
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
    const res = await this.raw(method, path, options);
    if (res.status >= 400) throw errorFromResponse(res.status, res.body);
    if (res.status === 204 || res.body.length === 0) return undefined as T;
    return JSON.parse(res.body.toString('utf8')) as T;
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
