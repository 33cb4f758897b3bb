/**
 * Runs a folder's queued operations with a bounded pool. Operations start in queue
 * order, except that one never overtakes an earlier operation on the same path, an
 * ancestor or a descendant (a folder is created before its files, a file is uploaded
 * before its folder is deleted) — except that a `mkdir` need not wait for an ancestor's
 * `mkdir` (the server makes missing parents). An operation leaves the queue only when it
 * succeeded. Unreachable server → the shared Connectivity backs off and everything waits;
 * any other failure → that operation alone retries with exponential backoff. Uploads that
 * can start together go as one batch, and so do mkdirs (one pool slot each; their journal
 * writes are one commit).
 */
import { AppError } from '../contract/errors.js';
import { ancestorsOf, pathKey } from '../core/domain/names.js';
import type { Connectivity } from './connectivity.js';
import type { Journal, Operation } from './journal.js';
import type { Logger } from './logger.js';
import type { BatchResult, Outcome } from './operations.js';

export interface SyncerOptions {
  folderId: number;
  journal: Journal;
  connectivity: Connectivity;
  concurrency: number;
  retryBaseMs: number;
  retryMaxMs: number;
  log: Logger;
  run: (op: Operation) => Promise<Outcome>;
  /**
   * Runs several uploads together (one batch request); absent = one by one. Used when at
   * least two uploads can start at once; each op's result is applied like `run`'s.
   */
  runBatch?: (ops: Operation[]) => Promise<BatchResult>;
  /**
   * Runs several `mkdir` operations together (one request, one journal commit); absent =
   * one by one. Each op's result is applied like `run`'s; `single` runs it on its own.
   */
  runMkdirs?: (ops: Operation[]) => Promise<BatchResult>;
  /** Most uploads in one batch (default `BATCH_SIZE`). */
  batchSize?: number;
  /** Most batches running at once (default `BATCHES_IN_FLIGHT`), within `concurrency`. */
  batchesInFlight?: number;
  /** After an operation asked for a look at local paths or the server's tree. */
  onRescan: (local: string[], remote: boolean) => void;
  /** The queue became empty. */
  onIdle: () => void;
}

/** Queue rows read per page when looking for operations to start. */
const QUEUE_PAGE = 256;
/**
 * Uploads per batch, and batches running at once. A batch task holds its slot until the
 * server has committed it; with the server on the same 2 cores, batches of 500 pushed
 * 5,000 small files 5–8 % faster than 4 of 200 or 8 of 200 (fewer requests contending for
 * the same commits), in A/B runs of the W2 benchmark. Three rather than two: while one
 * waits for its commit, two are still being sent and received, as `aio sync` keeps two
 * requests going and waits for the commits at the end (W2 daemon, bench medians of two
 * interleaved pairs: 2.64–3.09 s with two, 2.28–2.35 s with three; peak RSS 121–122 →
 * 128–134 MiB).
 */
const BATCH_SIZE = 500;
const BATCHES_IN_FLIGHT = 3;
/**
 * `mkdir`s per request (the server takes up to 1,000). A new tree's folders are queued
 * before its files, which wait for them: one at a time (a request and a journal commit
 * each), 50 folders took ~150 ms of a 5,000-file push before its first upload.
 */
const MKDIRS_PER_REQUEST = 500;

type TaskKind = 'one' | 'uploads' | 'mkdirs';

/** Network-level failures: the server (or the way to it) is down, not this operation. */
export function isOffline(err: unknown): boolean {
  return err instanceof AppError && (err.code === 'SERVICE_UNAVAILABLE' || err.code === 'RATE_LIMITED');
}

export class Syncer {
  /** Running tasks (one operation, or one batch of uploads): at most `concurrency`. */
  private readonly tasks = new Set<Promise<void>>();
  /** Ids of the operations in flight. */
  private readonly inFlight = new Set<number>();
  /** Operations a batch answered `single`: they run on their own. */
  private readonly solo = new Set<number>();
  /** Running batch tasks (a subset of `tasks`). */
  private batches = 0;
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
    await Promise.allSettled([...this.tasks]);
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
    /** Paths of earlier operations other than `mkdir`s. */
    const earlierNotMkdir = new Set<string>();
    const earlierAncestors = new Set<string>();
    let nextDue = Infinity;
    let afterId = 0;
    const batchSize = this.options.runBatch ? (this.options.batchSize ?? BATCH_SIZE) : 0;
    const batchLimit = this.options.batchesInFlight ?? BATCHES_IN_FLIGHT;
    let batch: Operation[] = [];
    /** Operations passed over: waiting for an earlier one, or uploads without a batch slot. */
    let deferred = 0;
    const startBatch = (): void => {
      if (batch.length) this.start(batch, batch.length > 1 ? 'uploads' : 'one');
      batch = [];
    };
    let mkdirs: Operation[] = [];
    const startMkdirs = (): void => {
      if (mkdirs.length) this.start(mkdirs, mkdirs.length > 1 ? 'mkdirs' : 'one');
      mkdirs = [];
    };
    for (let page = 0; this.tasks.size < concurrency; page++) {
      const ops = journal.opsAfter(folderId, afterId, QUEUE_PAGE);
      if (ops.length === 0) {
        if (page === 0 && this.inFlight.size === 0) this.options.onIdle();
        break;
      }
      for (const op of ops) {
        if (this.tasks.size >= concurrency) break;
        // Compared as the server compares paths (names ignoring case): operations on
        // `Notes.txt` and `notes.txt` touch one server path and run in order (a case twin
        // uploaded while its rival's deletion ran met the rival: a conflicted copy).
        const paths = (op.toPath === null ? [op.path] : [op.path, op.toPath]).map(pathKey);
        // A `mkdir` makes its missing parents on the server (mkdir -p): it need not wait for
        // an ancestor's `mkdir`, so a new tree's folders go in one request.
        const above = op.op === 'mkdir' ? earlierNotMkdir : earlier;
        const blocked = paths.some(
          (p) => earlier.has(p) || earlierAncestors.has(p) || ancestorsOf(p).some((a) => above.has(a)),
        );
        for (const p of paths) {
          earlier.add(p);
          if (op.op !== 'mkdir') earlierNotMkdir.add(p);
          for (const a of ancestorsOf(p)) earlierAncestors.add(a);
        }
        if (this.inFlight.has(op.id)) continue;
        // Waiting for an earlier operation (files below a folder being made, say). Past a
        // page of those, the rest of the queue waits too, as for uploads without a batch
        // slot below: a new tree of 100,000 files behind its folders' mkdirs cost a pass
        // over the whole queue on every turn (the daemon's first scan 1.1 → 1.7–2.0 s).
        if (blocked) {
          deferred++;
          if (deferred >= QUEUE_PAGE) break;
          continue;
        }
        if (op.nextAttemptAt > now) {
          nextDue = Math.min(nextDue, op.nextAttemptAt);
          continue;
        }
        if (op.op === 'upload' && batchSize > 1 && !this.solo.has(op.id)) {
          // Every batch slot is taken: the upload waits for the next batch. Past a page of
          // such uploads the rest of the queue waits too (reading it all on every turn would
          // cost a pass over a 100,000-operation queue per finished task).
          if (this.batches >= batchLimit) {
            deferred++;
            if (deferred >= QUEUE_PAGE) break;
            continue;
          }
          batch.push(op);
          // A full batch takes a slot; the last, partial one starts after the scan below.
          if (batch.length >= batchSize) startBatch();
          continue;
        }
        if (op.op === 'mkdir' && this.options.runMkdirs && !this.solo.has(op.id)) {
          mkdirs.push(op);
          if (mkdirs.length >= MKDIRS_PER_REQUEST) startMkdirs();
          continue;
        }
        // The mkdirs gathered so far come first in the queue: they take their slot before
        // this operation takes one, or operations further down could keep them waiting.
        if (mkdirs.length) {
          startMkdirs();
          if (this.tasks.size >= concurrency) break;
        }
        this.start([op], 'one');
      }
      if (ops.length < QUEUE_PAGE || deferred >= QUEUE_PAGE) break;
      afterId = (ops[ops.length - 1] as Operation).id;
    }
    if (mkdirs.length && this.tasks.size < concurrency) startMkdirs();
    if (batch.length && this.tasks.size < concurrency) startBatch();
    if (nextDue !== Infinity && this.tasks.size < concurrency) this.wakeAt(nextDue);
  }

  private start(ops: Operation[], kind: TaskKind): void {
    for (const op of ops) this.inFlight.add(op.id);
    if (kind === 'uploads') this.batches++;
    const task = (async () => {
      let results: BatchResult;
      if (kind !== 'one') {
        const { runBatch, runMkdirs } = this.options;
        try {
          results = await ((kind === 'uploads' ? runBatch : runMkdirs) as NonNullable<typeof runBatch>)(ops);
        } catch (error) {
          results = new Map(ops.map((op) => [op.id, { error }]));
        }
      } else {
        const op = ops[0] as Operation;
        try {
          results = new Map([[op.id, { outcome: await this.options.run(op) }]]);
        } catch (error) {
          results = new Map([[op.id, { error }]]);
        }
      }
      this.finish(ops, results);
    })()
      .catch((err: unknown) => this.options.log.error({ err: String(err) }, 'syncer task failed'))
      .finally(() => {
        if (kind === 'uploads') this.batches--;
        for (const op of ops) this.inFlight.delete(op.id);
        this.tasks.delete(task);
        if (!this.stopped) this.kick();
      });
    this.tasks.add(task);
  }

  /** Applies the results of a task: every journal write of it in one commit. */
  private finish(ops: Operation[], results: BatchResult): void {
    const { journal, connectivity, log, folderId } = this.options;
    const rescanLocal: string[] = [];
    let rescanRemote = false;
    let wake = Infinity;
    let offline: string | null = null;
    const failures: Array<{ op: Operation; message: string }> = [];
    if (ops.some((op) => 'outcome' in (results.get(op.id) ?? {}))) connectivity.succeeded();
    journal.transaction(() => {
      for (const op of ops) {
        const result = results.get(op.id) ?? { error: new Error('no result for this operation') };
        if ('outcome' in result) {
          const outcome = result.outcome;
          if (outcome.kind === 'single') {
            this.solo.add(op.id);
          } else if (outcome.kind === 'later') {
            if (outcome.entry) journal.putEntry(folderId, outcome.entry);
            journal.failOp(op.id, null, outcome.at, false);
            wake = Math.min(wake, outcome.at);
          } else {
            if (outcome.entry) journal.putEntry(folderId, outcome.entry);
            journal.completeOp(op.id);
            this.solo.delete(op.id);
            log.debug({ op: op.op, path: op.path, to: op.toPath, batch: ops.length > 1 }, 'operation done');
            rescanLocal.push(...(outcome.rescanLocal ?? []));
            rescanRemote ||= Boolean(outcome.rescanRemote);
          }
          continue;
        }
        const message = result.error instanceof Error ? result.error.message : String(result.error);
        if (isOffline(result.error)) {
          if (offline === null) connectivity.failed();
          offline = message;
          journal.failOp(op.id, message, connectivity.nextTryAt, false);
        } else {
          const delay = Math.min(this.options.retryBaseMs * 2 ** op.attempts, this.options.retryMaxMs);
          journal.failOp(op.id, message, Date.now() + delay);
          failures.push({ op, message });
        }
      }
    });
    if (wake !== Infinity) this.wakeAt(wake);
    if (offline !== null)
      log.warn(
        { op: ops[0]?.op, path: ops[0]?.path, ops: ops.length, err: offline },
        'server unreachable; waiting',
      );
    for (const { op, message } of failures)
      log.warn(
        { op: op.op, path: op.path, attempts: op.attempts + 1, err: message },
        'operation failed; will retry',
      );
    if (rescanLocal.length || rescanRemote) this.options.onRescan(rescanLocal, rescanRemote);
  }
}
