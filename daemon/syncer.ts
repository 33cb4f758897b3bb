/**
 * Runs a folder's queued operations with a bounded pool. Operations start in queue
 * order, except that one never overtakes an earlier operation on the same path, an
 * ancestor or a descendant (a folder is created before its files, a file is uploaded
 * before its folder is deleted). An operation leaves the queue only when it succeeded.
 * Unreachable server → the shared Connectivity backs off and everything waits; any
 * other failure → that operation alone retries with exponential backoff.
 */
import { AppError } from '../contract/errors.js';
import type { Connectivity } from './connectivity.js';
import type { Journal, Operation } from './journal.js';
import type { Logger } from './logger.js';
import type { Outcome } from './operations.js';

export interface SyncerOptions {
  folderId: number;
  journal: Journal;
  connectivity: Connectivity;
  concurrency: number;
  retryBaseMs: number;
  retryMaxMs: number;
  log: Logger;
  run: (op: Operation) => Promise<Outcome>;
  /** After an operation asked for a look at local paths or the server's tree. */
  onRescan: (local: string[], remote: boolean) => void;
  /** The queue became empty. */
  onIdle: () => void;
}

/** Queue rows read per page when looking for operations to start. */
const QUEUE_PAGE = 256;

const ancestors = (p: string): string[] => {
  const out: string[] = [];
  for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) out.push(p.slice(0, i));
  return out;
};

/** Network-level failures: the server (or the way to it) is down, not this operation. */
export function isOffline(err: unknown): boolean {
  return err instanceof AppError && (err.code === 'SERVICE_UNAVAILABLE' || err.code === 'RATE_LIMITED');
}

export class Syncer {
  private readonly inFlight = new Map<number, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private paused = false;
  private stopped = false;
  private pumping = false;
  private again = false;

  constructor(private readonly options: SyncerOptions) {}

  get running(): number {
    return this.inFlight.size;
  }

  /** Look at the queue now (new operations, or back online). */
  kick(): void {
    if (this.stopped || this.paused) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pump();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  pause(): void {
    this.paused = true;
    this.clearTimer();
  }

  resume(): void {
    this.paused = false;
    this.kick();
  }

  /** Starts nothing new and waits for the operations in flight (they finish or fail and stay queued). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  /** Makes sure the queue is looked at again no later than `at`. */
  private wakeAt(at: number): void {
    if (this.stopped || (this.timer && this.timerAt <= at)) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.kick();
      },
      Math.max(10, at - Date.now()),
    );
  }

  private pump(): void {
    const { journal, folderId, connectivity, concurrency } = this.options;
    const now = Date.now();
    if (connectivity.nextTryAt > now) {
      this.wakeAt(connectivity.nextTryAt);
      return;
    }
    // The head of the queue, page by page: the pool is usually full after the first page,
    // so a queue of 100,000 operations costs one small read per turn, not a full one.
    const earlier = new Set<string>();
    const earlierAncestors = new Set<string>();
    let nextDue = Infinity;
    let afterId = 0;
    for (let page = 0; this.inFlight.size < concurrency; page++) {
      const ops = journal.opsAfter(folderId, afterId, QUEUE_PAGE);
      if (ops.length === 0) {
        if (page === 0 && this.inFlight.size === 0) this.options.onIdle();
        break;
      }
      for (const op of ops) {
        if (this.inFlight.size >= concurrency) break;
        const paths = op.toPath === null ? [op.path] : [op.path, op.toPath];
        const blocked = paths.some(
          (p) => earlier.has(p) || earlierAncestors.has(p) || ancestors(p).some((a) => earlier.has(a)),
        );
        for (const p of paths) {
          earlier.add(p);
          for (const a of ancestors(p)) earlierAncestors.add(a);
        }
        if (blocked || this.inFlight.has(op.id)) continue;
        if (op.nextAttemptAt > now) {
          nextDue = Math.min(nextDue, op.nextAttemptAt);
          continue;
        }
        this.start(op);
      }
      if (ops.length < QUEUE_PAGE) break;
      afterId = (ops[ops.length - 1] as Operation).id;
    }
    if (nextDue !== Infinity && this.inFlight.size < concurrency) this.wakeAt(nextDue);
  }

  private start(op: Operation): void {
    const { journal, connectivity, log } = this.options;
    const task = (async () => {
      try {
        const outcome = await this.options.run(op);
        connectivity.succeeded();
        const { folderId } = this.options;
        if (outcome.kind === 'later') {
          journal.transaction(() => {
            if (outcome.entry) journal.putEntry(folderId, outcome.entry);
            journal.failOp(op.id, null, outcome.at, false);
          });
          this.wakeAt(outcome.at);
        } else {
          journal.transaction(() => {
            if (outcome.entry) journal.putEntry(folderId, outcome.entry);
            journal.completeOp(op.id);
          });
          log.debug({ op: op.op, path: op.path, to: op.toPath }, 'operation done');
          if (outcome.rescanLocal?.length || outcome.rescanRemote)
            this.options.onRescan(outcome.rescanLocal ?? [], Boolean(outcome.rescanRemote));
        }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (isOffline(err)) {
          connectivity.failed();
          journal.failOp(op.id, message, connectivity.nextTryAt, false);
          log.warn({ op: op.op, path: op.path, err: message }, 'server unreachable; waiting');
        } else {
          const delay = Math.min(this.options.retryBaseMs * 2 ** op.attempts, this.options.retryMaxMs);
          journal.failOp(op.id, message, Date.now() + delay);
          log.warn(
            { op: op.op, path: op.path, attempts: op.attempts + 1, err: message },
            'operation failed; will retry',
          );
        }
      }
    })().finally(() => {
      this.inFlight.delete(op.id);
      if (!this.stopped) this.kick();
    });
    this.inFlight.set(op.id, task);
  }
}
