/**
 * The one error handler: maps `AppError` codes to status and body, turns body-parser
 * and zod failures into 400s, and hides everything else behind a 500 (logged).
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { AppError, type ErrorBody } from '../../contract/errors.js';

function fromUnknown(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) {
    return new AppError('VALIDATION_FAILED', 'The request did not pass validation.', {
      details: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  const e = err as { type?: string; status?: number; statusCode?: number };
  // Errors raised by express.json() / raw-body.
  if (e?.type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE');
  if (e?.type === 'entity.parse.failed') return new AppError('BAD_REQUEST', 'The body is not valid JSON.');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return new AppError('UNSUPPORTED_MEDIA_TYPE');
  }
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('BAD_REQUEST');
  return new AppError('INTERNAL', undefined, { cause: err });
}

export function errorHandler(): ErrorRequestHandler {
  return (err, req, res, next) => {
    const appErr = fromUnknown(err);
    if (appErr.code === 'INTERNAL') req.log?.error({ err }, 'unhandled error');
    else req.log?.debug({ code: appErr.code }, appErr.message);
    if (res.headersSent) {
      // A stream broke mid-response: nothing sensible can be written any more.
      res.destroy();
      return next;
    }
    for (const [name, value] of Object.entries(appErr.headers)) res.setHeader(name, value);
    const body: ErrorBody = appErr.toBody();
    res.status(appErr.status).json(body);
  };
}

export function notFoundHandler(): RequestHandler {
  return (_req, _res, next) => next(new AppError('ROUTE_NOT_FOUND'));
}
