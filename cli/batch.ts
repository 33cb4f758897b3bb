/** Shared rules of the batch commands (upload, download, sync). */
import { AppError } from '../contract/errors.js';

/** `--transfers N`: a whole number from 1 to 64. */
export function parseTransfers(flag: string | undefined, fallback: number): number {
  const transfers = Number(flag ?? fallback);
  if (!Number.isInteger(transfers) || transfers < 1 || transfers > 64) {
    throw new AppError('BAD_REQUEST', '--transfers must be a whole number from 1 to 64.');
  }
  return transfers;
}

/**
 * The error a batch ends with when items failed: a one-item batch ends with that item's
 * own error (and exit code); a larger one with PARTIAL_FAILURE (exit 8), the other items
 * having gone through.
 */
export function batchFailure(errors: readonly unknown[], total: number, what = 'item(s)'): Error {
  const [first] = errors;
  if (total === 1 && errors.length === 1) {
    return first instanceof Error ? first : new AppError('INTERNAL', String(first));
  }
  return new AppError('PARTIAL_FAILURE', `${errors.length} of ${total} ${what} failed.`);
}
