/**
 * Watches one folder with chokidar and turns every event into a hint (a relative path)
 * for the aggregator. Nothing is decided here. Only folders get a watch (one inotify watch
 * each); a file's changes are named by its folder's events. Symbolic links are not followed. When the
 * system runs out of inotify watches or file descriptors (ENOSPC, EMFILE), the folder
 * falls back to polling instead of failing.
 *
 * A watcher started after a scan (`start(changedSince)`) hints what changed since that
 * scan began, so nothing slips through between the scan's reading of a folder and the
 * folder's watch: chokidar's first walk lstats every entry (that `stat` is handed to
 * `ignored`), and an entry changed since then is hinted; once every watch is in place
 * (`ready`), each watched folder is lstatted again and one whose entries changed since
 * then (a file created, deleted or renamed in it moves its mtime) is hinted too.
 */
import type fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { mapPool } from '../core/domain/pool.js';
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
/** Watched folders lstatted at once when the first walk is done (see `start`). */
const FOLDER_CHECKS_IN_FLIGHT = 16;

/** The entry (or a folder's entries) changed at or after `since` (epoch ms). */
function changedAfter(stats: { mtimeMs: number; ctimeMs: number }, since: number | undefined): boolean {
  return since !== undefined && Math.max(stats.mtimeMs, stats.ctimeMs) >= since;
}

export class FolderWatcher {
  private watcher: FSWatcher | null = null;
  private polling: boolean;
  private closed = false;
  private walked = false;
  /** Set by `start(changedSince)` until the first walk is done (kept across a restart). */
  private changedSince: number | undefined;

  constructor(private readonly options: WatcherOptions) {
    this.polling = Boolean(options.usePolling);
  }

  get isPolling(): boolean {
    return this.polling;
  }

  /**
   * Every folder is watched: the first walk is done (and, after `start(changedSince)`,
   * what changed before it hinted). Until then the folder is still starting up.
   */
  get ready(): boolean {
    return this.walked;
  }

  /**
   * Starts watching. With `changedSince` (epoch ms), what changed since then is hinted as
   * the watches are set up (see the header); without it only later events are.
   */
  start(changedSince?: number): void {
    if (this.closed || this.watcher) return;
    if (changedSince !== undefined) this.changedSince = changedSince;
    const { root, rules } = this.options;
    const polling = this.polling;
    const watcher = watch(root, {
      ignoreInitial: true,
      followSymlinks: false,
      // Report unlink at once (chokidar's atomic mode delays it ~100 ms and can split a
      // rename's unlink and add into two batches); editor saves are settled by the scan.
      atomic: false,
      usePolling: polling,
      interval: 500,
      binaryInterval: 1000,
      ignored: (p: string, stats?: fsSync.Stats) => {
        const r = this.relative(p);
        if (r === '' || r.startsWith('..')) return false;
        if (
          stats !== undefined &&
          changedAfter(stats, this.changedSince) &&
          !rules.ignores(r, stats.isDirectory())
        )
          this.options.onHint(r);
        // With inotify only folders are watched: chokidar would otherwise hold an fs.watch
        // handle and its state for every file (100,000 files: ~550 MiB and 20 s to set up).
        // A folder's watch names the child that changed; that raw event is the hint. Polling
        // sees a file's edits only on the file itself, so there files are watched too.
        if (!polling && stats !== undefined && !stats.isDirectory()) return true;
        return rules.ignores(r, stats?.isDirectory() ?? false);
      },
    });
    watcher.on('all', (_event, p: string) => {
      const r = this.relative(p);
      if (!r.startsWith('..')) this.options.onHint(r);
    });
    // Files: the raw event of the folder's watch names the child that was created, written,
    // renamed or deleted (also a file chokidar could not watch itself, e.g. an unreadable
    // one, when polling). A name that is not a child (a file's own watch) is harmless.
    watcher.on('raw', (_event, name, details) => {
      const dir = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (typeof dir !== 'string' || typeof name !== 'string' || name === '') return;
      const r = this.relative(path.join(dir, name));
      if (r !== '' && !r.startsWith('..')) this.options.onHint(r);
    });
    watcher.on('error', (err: unknown) => this.onError(err as NodeJS.ErrnoException));
    this.walked = false;
    watcher.once('ready', () => {
      // A watcher replaced meanwhile (a fallback to polling) walks again and finishes this.
      if (this.watcher !== watcher) return;
      const since = this.changedSince;
      const done = (): void => {
        if (this.watcher !== watcher) return;
        this.changedSince = undefined;
        this.walked = true;
      };
      if (since === undefined) done();
      else void this.hintChangedFolders(Object.keys(watcher.getWatched()), since).finally(done);
    });
    this.watcher = watcher;
  }

  /** Hints each of `folders` (absolute, as chokidar names them) whose entries changed since `since`. */
  private async hintChangedFolders(folders: readonly string[], since: number): Promise<void> {
    const inside = folders.filter((folder) => !this.relative(folder).startsWith('..'));
    await mapPool(inside, FOLDER_CHECKS_IN_FLIGHT, async (folder) => {
      if (this.closed) return;
      const stats = await fs.lstat(folder).catch(() => null);
      // A folder gone since is its parent's change (hinted there, or by its own events).
      if (stats?.isDirectory() && changedAfter(stats, since)) this.options.onHint(this.relative(folder));
    });
  }

  /** `p` (absolute) relative to the watched folder, `/`-separated; `..…` outside it. */
  private relative(p: string): string {
    return path.relative(this.options.root, p).split(path.sep).join('/');
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

  /**
   * Starts over (after a fallback, or when the watched folder came back); a pending
   * `changedSince` carries over. A watcher not started yet stays so (its `start` brings
   * the `changedSince`).
   */
  async restart(): Promise<void> {
    const old = this.watcher;
    if (!old) return;
    this.watcher = null;
    await old.close();
    if (!this.closed) this.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
  }
}
