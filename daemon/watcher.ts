/**
 * Watches one folder with chokidar and turns every event into a hint (a relative path)
 * for the aggregator. Nothing is decided here. Only folders get a watch (one inotify watch
 * each); a file's changes are named by its folder's events. Symbolic links are not followed. When the
 * system runs out of inotify watches or file descriptors (ENOSPC, EMFILE), the folder
 * falls back to polling instead of failing.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { IgnoreRules } from './ignore.js';
import type { Logger } from './logger.js';

export interface WatcherOptions {
  root: string;
  rules: IgnoreRules;
  log: Logger;
  onHint: (relPath: string) => void;
  /** Start in polling mode (tests; network file systems). */
  usePolling?: boolean;
}

const EXHAUSTED = new Set(['ENOSPC', 'EMFILE', 'ENFILE']);

export class FolderWatcher {
  private watcher: FSWatcher | null = null;
  private polling: boolean;
  private closed = false;

  constructor(private readonly options: WatcherOptions) {
    this.polling = Boolean(options.usePolling);
  }

  get isPolling(): boolean {
    return this.polling;
  }

  start(): void {
    const { root, rules } = this.options;
    const polling = this.polling;
    const rel = (p: string): string => path.relative(root, p).split(path.sep).join('/');
    const watcher = watch(root, {
      ignoreInitial: true,
      followSymlinks: false,
      // Report unlink at once (chokidar's atomic mode delays it ~100 ms and can split a
      // rename's unlink and add into two batches); editor saves are settled by the scan.
      atomic: false,
      usePolling: polling,
      interval: 500,
      binaryInterval: 1000,
      ignored: (p: string, stats?: { isDirectory(): boolean }) => {
        const r = rel(p);
        if (r === '' || r.startsWith('..')) return false;
        // With inotify only folders are watched: chokidar would otherwise hold an fs.watch
        // handle and its state for every file (100,000 files: ~550 MiB and 20 s to set up).
        // A folder's watch names the child that changed; that raw event is the hint. Polling
        // sees a file's edits only on the file itself, so there files are watched too.
        if (!polling && stats !== undefined && !stats.isDirectory()) return true;
        return rules.ignores(r, stats?.isDirectory() ?? false);
      },
    });
    watcher.on('all', (_event, p: string) => {
      const r = rel(p);
      if (!r.startsWith('..')) this.options.onHint(r);
    });
    // Files: the raw event of the folder's watch names the child that was created, written,
    // renamed or deleted (also a file chokidar could not watch itself, e.g. an unreadable
    // one, when polling). A name that is not a child (a file's own watch) is harmless.
    watcher.on('raw', (_event, name, details) => {
      const dir = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (typeof dir !== 'string' || typeof name !== 'string' || name === '') return;
      const r = rel(path.join(dir, name));
      if (r !== '' && !r.startsWith('..')) this.options.onHint(r);
    });
    watcher.on('error', (err: unknown) => this.onError(err as NodeJS.ErrnoException));
    this.watcher = watcher;
  }

  private onError(err: NodeJS.ErrnoException): void {
    if (this.closed) return;
    if (EXHAUSTED.has(err.code ?? '') && !this.polling) {
      this.options.log.warn(
        { root: this.options.root, code: err.code },
        'out of inotify watches or file descriptors; this folder falls back to polling',
      );
      this.polling = true;
      void this.restart();
      return;
    }
    this.options.log.warn({ root: this.options.root, err: err.message }, 'watcher error');
  }

  /** Starts over (after a fallback, or when the watched folder came back). */
  async restart(): Promise<void> {
    await this.watcher?.close();
    if (!this.closed) this.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
  }
}
