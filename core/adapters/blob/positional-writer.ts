/**
 * PositionalWriter: writes an async iterable into a file at explicit positions through
 * one reused 1 MiB buffer, optionally hashing on the way. Used by `LocalBlobStore`.
 */
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/** Writes are gathered into buffers of this size: few syscalls, bounded memory. */
export const WRITE_BUFFER_BYTES = 1024 * 1024;

/**
 * Writes an async iterable at explicit positions through one reused buffer: awaiting each
 * write before pulling the next chunk is the backpressure, and memory stays at one buffer.
 */
export class PositionalWriter {
  private readonly buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private buffered = 0;
  /** File position after the bytes written so far (buffered bytes count once `flush` ran). */
  position: number;

  constructor(
    private readonly handle: FileHandle,
    start: number,
    private readonly hash?: Hash,
  ) {
    this.position = start;
  }

  /** Consumes `source` up to `maxBytes` (the rest is not written and the source is not read further). */
  async consume(
    source: AsyncIterable<Uint8Array>,
    maxBytes: number,
    options: { keepOnSourceError: boolean },
  ): Promise<void> {
    let remaining = maxBytes;
    let writeError: unknown;
    try {
      for await (const chunk of source) {
        const bytes = chunk.byteLength > remaining ? chunk.subarray(0, remaining) : chunk;
        try {
          await this.write(bytes);
        } catch (err) {
          writeError = err;
          throw err;
        }
        remaining -= bytes.byteLength;
        if (remaining <= 0) break;
      }
    } catch (err) {
      // Disk trouble is ours to report; a broken source is the caller's to judge.
      if (writeError !== undefined || !options.keepOnSourceError) throw err;
    }
  }

  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    await this.writeFully(this.buffer.subarray(0, this.buffered));
    this.buffered = 0;
  }

  private async write(bytes: Uint8Array): Promise<void> {
    this.hash?.update(bytes);
    let from = 0;
    while (from < bytes.byteLength) {
      if (this.buffered === 0 && bytes.byteLength - from >= WRITE_BUFFER_BYTES) {
        // A big chunk goes straight to disk; copying it would only cost time.
        await this.writeFully(bytes.subarray(from));
        return;
      }
      const n = Math.min(WRITE_BUFFER_BYTES - this.buffered, bytes.byteLength - from);
      this.buffer.set(bytes.subarray(from, from + n), this.buffered);
      this.buffered += n;
      from += n;
      if (this.buffered === WRITE_BUFFER_BYTES) await this.flush();
    }
  }

  private async writeFully(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
  }
}
