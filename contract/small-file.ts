/**
 * Small files read with synchronous calls, for the clients (`aio sync`'s batches and
 * hashing, the daemon's batches).
 */
import fs from 'node:fs';
import { AppError } from './errors.js';

/**
 * Reads a small file whole with synchronous calls (open, fstat, read, close): for files
 * of a few KiB, a trip through libuv's pool and a promise per call cost more than the
 * reads themselves. A file over `max` bytes is refused (`CONFLICT`: it grew since it was
 * listed); other errors (ENOENT…) pass through.
 */
export function readSmallFile(file: string, max: number): { bytes: Buffer; mtimeMs: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const { size, mtimeMs } = fs.fstatSync(fd);
    const bytes = size <= max ? fs.readFileSync(fd) : null;
    if (bytes === null || bytes.byteLength > max)
      throw new AppError('CONFLICT', `The file grew while it was being sent: ${file}`);
    return { bytes, mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}
