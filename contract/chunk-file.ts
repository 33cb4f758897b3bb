/**
 * The destination side of a parallel download: chunk buffers, and positional writes of
 * them into the partial file, bypassing the page cache (`O_DIRECT`) where it can; and
 * `BackgroundSyncs`, which flushes such writes as they go (here and in the server's
 * upload staging).
 *
 * Why direct I/O: a buffered write copies every byte into the page cache, and the final
 * fsync then writes it all out. On the 2-core test VM that copy cost 0.3–2 s of system
 * time per GiB (fresh page-cache memory is slow to come by there) plus ~0.25 s of fsync
 * at the end; 2–8 MiB direct writes of the same GiB took ~0.05 s of CPU and ~0.4 s of
 * disk time, overlapped with the transfer. It also leaves the user's page cache alone.
 * Direct I/O needs the buffer, the file offset and the length aligned, so the buffers
 * live in one `WebAssembly.Memory` (its start is page-aligned; shared when a hashing
 * thread must read it without a copy, not otherwise: V8 copies into a
 * `SharedArrayBuffer` with relaxed atomic word copies, which cost 450 ms per GiB in the
 * server's upload staging against ~80 ms for a plain memcpy); an unaligned tail
 * and every write on a filesystem that refuses `O_DIRECT` go through an ordinary
 * descriptor instead.
 */
import fs from 'node:fs';

/** Alignment used for direct writes (offsets, lengths, buffers): the usual page size. */
export const DIRECT_ALIGN = 4096;
const WASM_PAGE = 64 * 1024;

/** The part of `WebAssembly.Memory` used here (the project's TS libs do not declare it). */
type WasmMemoryConstructor = new (descriptor: { initial: number; maximum: number; shared: boolean }) => {
  buffer: SharedArrayBuffer | ArrayBuffer;
};
const WasmMemory = (globalThis as { WebAssembly?: { Memory?: WasmMemoryConstructor } }).WebAssembly?.Memory;

export interface ChunkPool {
  /** Buffer `i` (< count) of `chunkBytes`. */
  buffer(i: number): Buffer;
  /** Buffers are page-aligned, so direct writes from them are possible. */
  aligned: boolean;
  /** Buffers are views of a `SharedArrayBuffer`. */
  shared: boolean;
}

/**
 * `count` buffers of `chunkBytes`, page-aligned when WebAssembly is available (it is not
 * under `--jitless`), plain buffers otherwise; shared (a `SharedArrayBuffer`) only when
 * `wantShared`. Memory is only committed as the buffers are written. The memory is never
 * grown, so its buffer is never detached.
 */
export function chunkPool(count: number, chunkBytes: number, wantShared: boolean): ChunkPool {
  if (chunkBytes % WASM_PAGE === 0 && WasmMemory !== undefined) {
    try {
      const pages = (count * chunkBytes) / WASM_PAGE;
      const memory = new WasmMemory({ initial: pages, maximum: pages, shared: wantShared });
      const all = Buffer.from(memory.buffer);
      return {
        buffer: (i) => all.subarray(i * chunkBytes, (i + 1) * chunkBytes),
        aligned: true,
        shared: wantShared,
      };
    } catch {
      // No shared WebAssembly memory here: plain buffers below.
    }
  }
  if (wantShared) {
    return { buffer: () => Buffer.from(new SharedArrayBuffer(chunkBytes)), aligned: false, shared: true };
  }
  return { buffer: () => Buffer.allocUnsafe(chunkBytes), aligned: false, shared: false };
}

/**
 * How often (in bytes written) big writes past the page cache are flushed in the
 * background (`BackgroundSyncs`): the server's upload staging and the client's parallel
 * download. On the test VM the final fsync of a 1 GiB file written with `O_DIRECT` waited
 * ~0.5 s for the host to flush its cache; flushed as it went, 0–8 ms. W1 upload probes
 * (6 each): median 2.91 s never, 2.60 s every 64 MiB, 2.26–2.36 s every 8–16 MiB;
 * `aio download` of 1 GiB: 2.03–2.09 s never, 1.80–1.96 s every 64 MiB, 1.68–1.95 s every
 * 16 MiB.
 */
export const FLUSH_EVERY_BYTES = 16 * 1024 * 1024;

/**
 * `fdatasync`s started in the background, one at a time, each once `every` more bytes
 * were written since the last one started. Why: a direct write is done when the device
 * took it, not when it is durable, and a virtual disk may keep it in the host's cache;
 * flushed as the writing goes, the final fsync finds little left. The first failure is
 * thrown by `settled()` (a failed flush must fail the write: the kernel reports it once,
 * so a later fsync might not see it).
 */
export class BackgroundSyncs {
  private unsynced = 0;
  private running: Promise<void> | null = null;
  private failure: { error: unknown } | null = null;
  private count = 0;

  constructor(
    private readonly handle: { datasync(): Promise<void> },
    private readonly every: number,
  ) {}

  /** Flushes started so far. */
  get started(): number {
    return this.count;
  }

  /** Notes `bytes` written (and durable once flushed); starts a flush when it is due. */
  wrote(bytes: number): void {
    this.unsynced += bytes;
    if (this.running !== null || this.every <= 0 || this.unsynced < this.every) return;
    this.unsynced = 0;
    this.count++;
    this.running = this.handle.datasync().then(
      () => {
        this.running = null;
      },
      (error: unknown) => {
        this.failure ??= { error };
        this.running = null;
      },
    );
  }

  /** Waits for the flush in flight; throws the first failure of any. */
  async settled(): Promise<void> {
    await this.drained();
    if (this.failure) throw this.failure.error;
  }

  /** Waits for the flush in flight, whatever its outcome. */
  async drained(): Promise<void> {
    await this.running;
  }
}

interface Job {
  buffer: Buffer;
  offset: number;
  length: number;
  position: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The partial file, written at positions, one write at a time in the order asked
 * (several in flight on one file only contend for its inode lock).
 */
export class ChunkFile {
  private readonly queue: Job[] = [];
  private busy = false;
  private readonly syncs: BackgroundSyncs;

  private constructor(
    private readonly fd: number,
    /** A second descriptor with `O_DIRECT`, or null. */
    private directFd: number | null,
    syncEvery: number,
  ) {
    const datasync = (): Promise<void> =>
      new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    this.syncs = new BackgroundSyncs({ datasync }, syncEvery);
  }

  /**
   * Creates (or truncates) `file`. `direct`: also open it with `O_DIRECT` when the
   * platform and the filesystem allow it. `syncEvery`: start an `fdatasync` in the
   * background every so many bytes written (buffered or direct: a direct write may sit in
   * a disk's or a hypervisor's cache until flushed), so the caller's final fsync does not
   * find the whole file still to write (0: never).
   */
  static async open(file: string, options: { direct: boolean; syncEvery: number }): Promise<ChunkFile> {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(file, 'w', 0o666, (err, opened) => (err ? reject(err) : resolve(opened))),
    );
    let directFd: number | null = null;
    const { O_DIRECT, O_WRONLY } = fs.constants;
    if (options.direct && typeof O_DIRECT === 'number') {
      directFd = await new Promise<number | null>((resolve) =>
        // tmpfs and some FUSE filesystems refuse O_DIRECT (EINVAL): then buffered only.
        fs.open(file, O_WRONLY | O_DIRECT, (err, opened) => resolve(err ? null : opened)),
      );
    }
    return new ChunkFile(fd, directFd, options.syncEvery);
  }

  /** Whether writes currently bypass the page cache. */
  get direct(): boolean {
    return this.directFd !== null;
  }

  /** Background `fdatasync`s started so far (see `open`'s `syncEvery`). */
  get backgroundFlushes(): number {
    return this.syncs.started;
  }

  /**
   * Writes `buffer[offset, offset + length)` at `position`. The aligned part of an
   * aligned write goes straight to the disk when possible.
   */
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ buffer, offset, length, position, resolve, reject });
      if (!this.busy) this.next();
    });
  }

  /** Cuts the file to `length` (after a background sync); call it once the writes are done. */
  async truncate(length: number): Promise<void> {
    await this.syncs.drained();
    await new Promise<void>((resolve, reject) =>
      fs.ftruncate(this.fd, length, (e) => (e ? reject(e) : resolve())),
    );
  }

  /** Closes both descriptors (after a background sync, if one is running). */
  async close(): Promise<void> {
    await this.syncs.drained();
    const close = (fd: number): Promise<void> =>
      new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    if (this.directFd !== null) await close(this.directFd);
    this.directFd = null;
    await close(this.fd);
  }

  /**
   * Waits for a background sync and throws its error, if any. A failed flush must fail
   * the download: the error is reported once, so the caller's later fsync on a new
   * descriptor would not see it.
   */
  async flush(): Promise<void> {
    await this.syncs.settled();
  }

  private next(): void {
    const job = this.queue.shift();
    if (job === undefined) {
      this.busy = false;
      return;
    }
    this.busy = true;
    // Direct only for whole aligned blocks; an unaligned tail goes through the page cache.
    const directLength = job.length - (job.length % DIRECT_ALIGN);
    const direct =
      this.directFd !== null &&
      job.offset % DIRECT_ALIGN === 0 &&
      job.position % DIRECT_ALIGN === 0 &&
      directLength > 0;
    const fd = direct ? (this.directFd as number) : this.fd;
    const length = direct ? directLength : job.length;
    fs.write(fd, job.buffer, job.offset, length, job.position, (err, n) => {
      if (err && direct && err.code === 'EINVAL') {
        // The filesystem took O_DIRECT at open but not this write: buffered from now on.
        const directFd = this.directFd as number;
        this.directFd = null;
        fs.close(directFd, () => undefined);
        this.queue.unshift(job);
      } else if (err) {
        job.reject(err);
      } else if (n < job.length) {
        // The rest of a short write, or the unaligned tail of a direct one, goes next.
        this.queue.unshift({
          ...job,
          offset: job.offset + n,
          length: job.length - n,
          position: job.position + n,
        });
        this.syncs.wrote(n);
      } else {
        job.resolve();
        this.syncs.wrote(n);
      }
      this.next();
    });
  }
}
