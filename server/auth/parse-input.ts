/**
 * Validation at the edge: parses a request body or query with its contract schema.
 * A failure throws the `ZodError` (the error handler answers 400 `VALIDATION_FAILED`
 * with the issues), unless an issue names a specific code (`params.appCode`, e.g.
 * `PASSWORD_TOO_LONG`), which is then thrown as that `AppError`.
 */
import type { z } from 'zod';
import { AppError } from '../../contract/errors.js';
import { appCodeOf } from '../../contract/schemas/common.js';

export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const code = appCodeOf(result.error.issues);
  if (code !== undefined) throw new AppError(code, undefined, { cause: result.error });
  throw result.error;
}
