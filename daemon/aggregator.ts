/**
 * Batches watcher hints. Each path waits until it has been quiet for `delayMs` (a file
 * being written keeps pushing its own deadline back), but never longer than `maxDelayMs`
 * after its first event, so a file written forever is still looked at. Paths that are
 * due together are handed over as one batch per folder.
 */
export interface AggregatorOptions {
  /** Quiet time per path before it is handed over. */
  delayMs: number;
  /** Longest a path waits after its first event. */
  maxDelayMs: number;
  /** Receives the due paths of one folder; called at most once per folder per flush. */
  onBatch: (folder: string, paths: string[]) => void;
}

interface Pending {
  first: number;
  due: number;
}

export class Aggregator {
  private readonly pending = new Map<string, Map<string, Pending>>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  constructor(private readonly options: AggregatorOptions) {}

  /** A hint that `relPath` in `folder` may have changed. */
  add(folder: string, relPath: string): void {
    const now = Date.now();
    let paths = this.pending.get(folder);
    if (!paths) this.pending.set(folder, (paths = new Map()));
    const known = paths.get(relPath);
    const first = known?.first ?? now;
    const due = Math.min(now + this.options.delayMs, first + this.options.maxDelayMs);
    paths.set(relPath, { first, due });
    this.schedule(due);
  }

  /** Number of paths waiting (all folders). */
  get size(): number {
    let n = 0;
    for (const paths of this.pending.values()) n += paths.size;
    return n;
  }

  /** Drops everything waiting for `folder` (it was removed or paused). */
  forget(folder: string): void {
    this.pending.delete(folder);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
  }

  private schedule(due: number): void {
    if (this.timer && due >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = due;
    this.timer = setTimeout(() => this.flush(), Math.max(0, due - Date.now()));
  }

  private flush(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [folder, paths] of this.pending) {
      // Paths due within one more delay go along: the two halves of a rename (unlink +
      // add) must reach the scanner in one batch to be recognised as a move.
      const anyDue = [...paths.values()].some(({ due }) => due <= now);
      const horizon = anyDue ? now + this.options.delayMs : now;
      const ready: string[] = [];
      for (const [p, { due }] of paths) {
        if (due <= horizon) {
          ready.push(p);
          paths.delete(p);
        } else next = Math.min(next, due);
      }
      if (paths.size === 0) this.pending.delete(folder);
      if (ready.length) this.options.onBatch(folder, ready.sort());
    }
    if (next !== Infinity) this.schedule(next);
  }
}
