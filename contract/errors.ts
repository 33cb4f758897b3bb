/**
 * The one error table of AIO Storage: every stable error code, the HTTP status the
 * server answers with, and the exit code the CLI ends with. Handlers and adapters
 * throw `AppError`s carrying one of these codes; one error handler writes
 * `{ "error": { "code", "message" } }`, and `cli/main.ts` exits with `exit`.
 */

/** CLI exit codes (documented in the README). */
export const EXIT = {
  OK: 0,
  ERROR: 1, // unexpected failure, integrity failure
  USAGE: 2, // bad flags, arguments or input
  AUTH: 3, // not logged in, bad credentials, expired or revoked token, not allowed
  NOT_FOUND: 4,
  CONFLICT: 5, // name taken, stale revision, sync conflict, local file differs
  UNAVAILABLE: 6, // network error, server unavailable, rate limited
  QUOTA: 7, // quota or size limit
  PARTIAL: 8, // a batch where some items failed and the rest went through
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

interface ErrorSpec {
  readonly status: number;
  readonly exit: ExitCode;
  readonly message: string;
}

export const ERRORS = {
  BAD_REQUEST: { status: 400, exit: EXIT.USAGE, message: 'The request is malformed.' },
  VALIDATION_FAILED: { status: 400, exit: EXIT.USAGE, message: 'The request did not pass validation.' },
  INVALID_NAME: { status: 400, exit: EXIT.USAGE, message: 'The name is not allowed.' },
  INVALID_PATH: { status: 400, exit: EXIT.USAGE, message: 'The path is not allowed.' },
  PASSWORD_TOO_LONG: {
    status: 400,
    exit: EXIT.USAGE,
    message: 'The password is longer than 72 bytes in UTF-8; bcrypt would ignore the rest.',
  },
  UNAUTHENTICATED: { status: 401, exit: EXIT.AUTH, message: 'Authentication is required.' },
  INVALID_CREDENTIALS: { status: 401, exit: EXIT.AUTH, message: 'The email or password is wrong.' },
  INVALID_TOKEN: { status: 401, exit: EXIT.AUTH, message: 'The token is invalid, expired or revoked.' },
  SHARE_PASSWORD_REQUIRED: { status: 401, exit: EXIT.AUTH, message: 'This link needs a password.' },
  FORBIDDEN: { status: 403, exit: EXIT.AUTH, message: 'This action is not allowed.' },
  INSUFFICIENT_SCOPE: {
    status: 403,
    exit: EXIT.AUTH,
    message: 'The token lacks the scope for this action.',
  },
  NOT_FOUND: { status: 404, exit: EXIT.NOT_FOUND, message: 'Not found.' },
  ROUTE_NOT_FOUND: { status: 404, exit: EXIT.NOT_FOUND, message: 'No such route.' },
  METHOD_NOT_ALLOWED: { status: 405, exit: EXIT.USAGE, message: 'Method not allowed.' },
  CONFLICT: { status: 409, exit: EXIT.CONFLICT, message: 'The request conflicts with the current state.' },
  NAME_CONFLICT: { status: 409, exit: EXIT.CONFLICT, message: 'An item with that name already exists.' },
  EMAIL_TAKEN: { status: 409, exit: EXIT.CONFLICT, message: 'The email cannot be registered.' },
  REVISION_CONFLICT: {
    status: 409,
    exit: EXIT.CONFLICT,
    message: 'The file changed since the base revision.',
  },
  OFFSET_MISMATCH: { status: 409, exit: EXIT.CONFLICT, message: 'Upload-Offset does not match.' },
  UPLOAD_LOCKED: { status: 423, exit: EXIT.CONFLICT, message: 'Another request is writing this upload.' },
  GONE: { status: 410, exit: EXIT.NOT_FOUND, message: 'This resource is gone.' },
  CURSOR_EXPIRED: { status: 410, exit: EXIT.CONFLICT, message: 'The cursor is too old; rescan.' },
  PRECONDITION_FAILED: { status: 412, exit: EXIT.CONFLICT, message: 'A precondition failed.' },
  PAYLOAD_TOO_LARGE: { status: 413, exit: EXIT.QUOTA, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, exit: EXIT.USAGE, message: 'Unsupported content type.' },
  RANGE_NOT_SATISFIABLE: { status: 416, exit: EXIT.USAGE, message: 'The range is not satisfiable.' },
  CHECKSUM_MISMATCH: { status: 460, exit: EXIT.ERROR, message: 'The checksum does not match.' },
  RATE_LIMITED: { status: 429, exit: EXIT.UNAVAILABLE, message: 'Too many requests; slow down.' },
  QUOTA_EXCEEDED: { status: 507, exit: EXIT.QUOTA, message: 'The storage quota would be exceeded.' },
  INTERNAL: { status: 500, exit: EXIT.ERROR, message: 'Internal error.' },
  // Client side only: a batch (upload, download, sync) where some items failed.
  PARTIAL_FAILURE: {
    status: 207,
    exit: EXIT.PARTIAL,
    message: 'Some items failed; the others went through.',
  },
  NOT_IMPLEMENTED: { status: 501, exit: EXIT.ERROR, message: 'Not implemented.' },
  SERVICE_UNAVAILABLE: { status: 503, exit: EXIT.UNAVAILABLE, message: 'A component is unavailable.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** An error with a stable code. `cause` keeps the original (driver) error. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Extra response headers (e.g. Retry-After) the error handler should set. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; details?: unknown; headers?: Record<string, string> },
  ) {
    super(
      message ?? ERRORS[code].message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'AppError';
    this.code = code;
    this.details = options?.details;
    this.headers = options?.headers ?? {};
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get exitCode(): ExitCode {
    return ERRORS[this.code].exit;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { error: { code: this.code, message: this.message } };
    if (this.details !== undefined) body.error.details = this.details;
    return body;
  }
}

/** A unique constraint was violated (duplicate name, email, key). Adapters translate driver errors to this. */
export class ConflictError extends AppError {
  constructor(
    code: 'CONFLICT' | 'NAME_CONFLICT' | 'EMAIL_TAKEN' | 'REVISION_CONFLICT' = 'CONFLICT',
    message?: string,
    cause?: unknown,
  ) {
    super(code, message, { cause });
    this.name = 'ConflictError';
  }
}

/** The thing does not exist or belongs to someone else (never reveal which). */
export class NotFoundError extends AppError {
  constructor(message?: string, cause?: unknown) {
    super('NOT_FOUND', message, { cause });
    this.name = 'NotFoundError';
  }
}

/** A backing service (database, queue, cache) did not answer. */
export class UnavailableError extends AppError {
  constructor(message?: string, cause?: unknown) {
    super('SERVICE_UNAVAILABLE', message, { cause });
    this.name = 'UnavailableError';
  }
}

/** The exit code for any thrown value (unknown errors → 1). */
export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof AppError ? err.exitCode : EXIT.ERROR;
}
