/**
 * File helpers shared by the blob store's loose files (`local.ts`) and its packs (`packs.ts`).
 */
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** At most this many chunks per `writev` (IOV_MAX is 1024 on Linux). */
export const MAX_IOVECS = 512;

/** Writes every byte of `chunks` (`bytes` in all) at `at`, in `writev`s of at most `MAX_IOVECS` chunks. */
export async function writeFully(
  handle: FileHandle,
  chunks: Uint8Array[],
  bytes: number,
  at: number,
): Promise<void> {
  let done = 0;
  let rest = chunks;
  while (done < bytes) {
    // At most MAX_IOVECS buffers per call (the kernel refuses more than IOV_MAX).
    const { bytesWritten } = await handle.writev(
      rest.slice(0, MAX_IOVECS) as NodeJS.ArrayBufferView[],
      at + done,
    );
    if (bytesWritten === 0) throw new Error('writev wrote nothing');
    done += bytesWritten;
    if (done < bytes) rest = skipBytes(rest, bytesWritten);
  }
}

/** `chunks` without their first `n` bytes. */
function skipBytes(chunks: Uint8Array[], n: number): Uint8Array[] {
  let skip = n;
  const out: Uint8Array[] = [];
  for (const chunk of chunks) {
    if (skip >= chunk.byteLength) {
      skip -= chunk.byteLength;
      continue;
    }
    out.push(skip > 0 ? chunk.subarray(skip) : chunk);
    skip = 0;
  }
  return out;
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function removeIfPresent(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function readdirIfPresent(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** Creates a new temp file (0600), creating its tmp shard folder on first use. */
export async function openTemp(file: string): Promise<FileHandle> {
  try {
    return await fs.open(file, 'wx', 0o600);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await fs.mkdir(path.dirname(file), { recursive: true });
    return fs.open(file, 'wx', 0o600);
  }
}
