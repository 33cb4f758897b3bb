/**
 * A sha256 computed on a worker thread over bytes handed to it in order.
 *
 * Why: hashing costs ~0.6 s of CPU per GiB even with the SHA extensions; on the main
 * thread of a parallel download it held up the socket reads (`aio download` of 1 GiB:
 * 1.17 s against 0.96 s with this thread, on the 2-core test VM). On its own thread the
 * hash runs beside the transfer. The chunk buffers are shared memory, so handing a chunk
 * over copies nothing.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * A sha256 fed chunk by chunk in order: on a worker thread (`ThreadHasher`) or inline
 * (`InlineHasher`). `done` runs once the hasher is finished with the chunk's memory;
 * `digest` gives the same answer on every call.
 */
export interface ChunkHasher {
  update(bytes: Uint8Array, done: (err: Error | null) => void): void;
  digest(): Promise<string>;
  close(): Promise<void>;
}

/** `ChunkHasher` on the calling thread (for amounts a thread's start-up is not worth). */
export class InlineHasher implements ChunkHasher {
  private readonly hash = createHash('sha256');
  private result: Promise<string> | undefined;

  update(bytes: Uint8Array, done: (err: Error | null) => void): void {
    this.hash.update(bytes);
    done(null);
  }

  digest(): Promise<string> {
    return (this.result ??= Promise.resolve(this.hash.digest('hex')));
  }

  async close(): Promise<void> {}
}

/** The worker's code: CommonJS, evaluated from a string so no file has to be located. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m.digest) {
    parentPort.postMessage({ digest: hash.digest('hex') });
    hash = createHash('sha256');
    return;
  }
  if (m.restart) {
    hash = createHash('sha256');
    return;
  }
  hash.update(new Uint8Array(m.memory, m.offset, m.length));
  parentPort.postMessage({ hashed: true });
});
`;

interface Reply {
  hashed?: true;
  digest?: string;
}

export class ThreadHasher implements ChunkHasher {
  private readonly worker: Worker;
  /** Callbacks of the updates sent, in order: the worker answers them in order. */
  private readonly pending: Array<(err: Error | null, digest?: string) => void> = [];
  private failed: Error | null = null;
  private result: Promise<string> | undefined;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    // The download awaits its own work; the worker must never keep the process alive.
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => {
      this.pending.shift()?.(null, reply.digest);
    });
    const fail = (err: Error): void => {
      this.failed ??= err;
      for (const callback of this.pending.splice(0)) callback(this.failed);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`The hashing thread exited (code ${code}).`)));
  }

  /**
   * Hashes `bytes` (a view of a `SharedArrayBuffer`) after everything handed over
   * before; `done` runs once the worker is finished with the memory.
   */
  update(bytes: Uint8Array, done: (err: Error | null) => void): void {
    if (this.failed) return done(this.failed);
    if (!(bytes.buffer instanceof SharedArrayBuffer)) throw new TypeError('Expected shared memory.');
    this.pending.push(done);
    this.worker.postMessage({ memory: bytes.buffer, offset: bytes.byteOffset, length: bytes.length });
  }

  /** The hex sha256 of everything handed over (asked of the thread once). */
  digest(): Promise<string> {
    return (this.result ??= new Promise<string>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      this.pending.push((err, digest) => (err || digest === undefined ? reject(err) : resolve(digest)));
      this.worker.postMessage({ digest: true });
    }));
  }

  /**
   * Starts a new sha256 on the same thread (saving a thread's start, ~50 ms of CPU here).
   * False, and nothing changed, when the thread failed or still works on something: the
   * caller closes it then.
   */
  restart(): boolean {
    if (this.failed || this.pending.length > 0) return false;
    this.result = undefined;
    this.worker.postMessage({ restart: true });
    return true;
  }

  /** Stops the thread (idempotent). */
  async close(): Promise<void> {
    this.failed ??= new Error('The hashing thread was stopped.');
    await this.worker.terminate();
  }
}

/** A fresh buffer on shared memory, for `ThreadHasher.update`. */
export function sharedBuffer(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}
