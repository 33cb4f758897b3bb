/**
 * Errors of the public share pages, answered as HTML pages (not JSON) with the error's
 * status and headers (e.g. `Retry-After`). Unexpected errors are logged and shown as a
 * plain 500 page without details.
 */
import type { ErrorRequestHandler } from 'express';
import { AppError } from '../../contract/errors.js';
import { errorPage } from './html.js';

const PAGES: Partial<Record<string, { title: string; message: string }>> = {
  NOT_FOUND: { title: 'Link not found', message: 'This link does not exist or was revoked.' },
  GONE: { title: 'Link no longer available', message: 'This link has expired.' },
  RATE_LIMITED: { title: 'Too many attempts', message: 'Too many password attempts. Try again later.' },
};

export function sharePageErrors(): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (!(err instanceof AppError)) {
      req.log?.error({ err }, 'share page failed');
      res.status(500).type('html').send(errorPage('Something went wrong', 'Please try again later.'));
      return;
    }
    for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
    const page = PAGES[err.code];
    const title = page?.title ?? 'This link cannot be used';
    const message = err.code === 'GONE' ? err.message : (page?.message ?? err.message);
    res.status(err.status).type('html').send(errorPage(title, message));
  };
}
