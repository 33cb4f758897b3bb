/**
 * One watched folder: watcher hints → (aggregator, owned by the daemon) → scanner →
 * journal → syncer, plus the puller for two-way folders. An error puts this folder
 * into the `error` state and the daemon goes on with the others.
 *
 * States: `scanning` (first scan; also while nothing is queued but the watcher still
 * sets up), `syncing` (operations queued), `idle`, `paused`,
 * `needs-confirmation` (the mass-delete guard holds deletions back until
 * `aio resume LOCAL --confirm-deletes`), `error` (the folder is missing or reads as
 * empty while files are synced; nothing is deleted on the server).
 */
import path from 'node:path';
import type { ApiClient } from '../contract/client.js';
import type { Connectivity } from './connectivity.js';
import { IGNORE_FILE, IgnoreRules } from './ignore.js';
import type { Journal } from './journal.js';
import type { Logger } from './logger.js';
import { mkdirMany, runOperation, uploadMany, type OperationContext } from './operations.js';
import { Puller } from './puller.js';
import { RemoteFolder } from './remote.js';
import { Scanner, type ScanPlan } from './scanner.js';
import { Syncer } from './syncer.js';
import type { Tunables } from './tunables.js';
import type { WatchConfig } from './watches.js';
import { FolderWatcher } from './watcher.js';

/** See `start`: how far before the first scan the watcher looks for changes. */
const WATCH_CLOCK_SLACK_MS = 1000;

export type FolderState = 'scanning' | 'syncing' | 'idle' | 'paused' | 'needs-confirmation' | 'error';

export interface FolderStatus {
  local: string;
  remote: string;
  mode: WatchConfig['mode'];
  state: FolderState;
  queued: number;
  running: number;
  lastError: string | null;
  lastSyncAt: string | null;
  offline: boolean;
  polling: boolean;
  /**
   * The watcher has set up its watches (its first walk is done). Until then a change is
   * noticed when the walk reaches it, not at once; nothing is missed either way.
   */
  watching: boolean;
  /** Deletions held back by the mass-delete guard. */
  pendingDeletes: number;
  /** Operations that failed at least once (e.g. an unreadable file), with the reason. */
  errors: Array<{ op: string; path: string; error: string; attempts: number }>;
  /** Symbolic links and special files that are not synced. */
  skipped: Array<{ path: string; reason: string }>;
}

export interface FolderDeps {
  config: WatchConfig;
  journal: Journal;
  client: ApiClient;
  account: string;
  connectivity: Connectivity;
  tunables: Tunables;
  log: Logger;
  host: string;
  trashDir: string;
}

export class SyncFolder {
  readonly local: string;
  private config: WatchConfig;
  private readonly folderId: number;
  private readonly rules: IgnoreRules;
  private readonly scanner: Scanner;
  private readonly syncer: Syncer;
  private readonly puller: Puller | null;
  private readonly watcher: FolderWatcher;
  private readonly log: Logger;
  private state: FolderState = 'scanning';
  private lastError: string | null = null;
  private pendingDeletes = 0;
  private confirmDeletes = false;
  /** Deletions let through by the guard within `massDeleteWindowMs`, oldest first. */
  private recentDeletes: Array<{ at: number; files: number }> = [];
  private skipped = new Map<string, string>();
  private readonly reported = new Set<string>();
  private scanRunning: Promise<void> | null = null;
  private queuedPaths: Set<string> | null = null;
  private queuedFull = false;
  private remoteRescanWanted = false;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  /** Starts the watcher once the first scan's work has drained (see `start`). */
  private startWatcher: (() => void) | null = null;

  constructor(private readonly deps: FolderDeps) {
    this.config = deps.config;
    this.local = deps.config.local;
    this.log = deps.log.child({ folder: this.local });
    const row = deps.journal.folder(this.local, deps.config.remote, deps.account);
    this.folderId = row.id;
    this.rules = new IgnoreRules(this.local);
    this.scanner = new Scanner(this.local, this.folderId, deps.journal, this.rules);
    const remote = new RemoteFolder(deps.client, deps.config.remote);
    const opContext: OperationContext = {
      root: this.local,
      folderId: this.folderId,
      journal: deps.journal,
      remote,
      host: deps.host,
      trashDir: path.join(deps.trashDir, String(this.folderId)),
      settleMs: deps.tunables.settleMs,
      log: this.log,
    };
    this.syncer = new Syncer({
      folderId: this.folderId,
      journal: deps.journal,
      connectivity: deps.connectivity,
      concurrency: deps.tunables.concurrency,
      retryBaseMs: deps.tunables.retryBaseMs,
      retryMaxMs: deps.tunables.retryMaxMs,
      log: this.log,
      run: (op) => runOperation(opContext, op),
      runBatch: (ops) => uploadMany(opContext, ops),
      runMkdirs: (ops) => mkdirMany(opContext, ops),
      onRescan: (paths, remoteToo) => {
        if (paths.length) this.hint(paths);
        if (remoteToo) this.rescanRemote();
      },
      onIdle: () => {
        // A scan under way decides the state when it is done: an empty queue before the
        // scan of `resume` has planned anything is not "idle".
        if (this.scanRunning !== null) return;
        if (this.state === 'syncing' || this.state === 'scanning' || this.state === 'idle') this.settle();
        this.startWatcher?.();
      },
    });
    this.puller =
      deps.config.mode === 'two-way'
        ? new Puller({
            folderId: this.folderId,
            journal: deps.journal,
            remote,
            connectivity: deps.connectivity,
            pollWaitSeconds: deps.tunables.pollWaitSeconds,
            log: this.log,
            onQueued: () => this.onQueued(),
            isPaused: () => this.config.paused,
          })
        : null;
    this.watcher = new FolderWatcher({
      root: this.local,
      rules: this.rules,
      log: this.log,
      onHint: (rel) => this.onWatchHint(rel),
      usePolling: process.env.AIO_DAEMON_POLLING === '1',
    });
  }

  /** Set by the daemon: where watcher hints go (the shared aggregator). */
  onWatchHint: (rel: string) => void = (rel) => this.hint([rel]);

  /**
   * The first scan runs before the watcher starts, and so does the work that scan queued
   * (the watcher waits for it at most `watchDeferMs`, 5 s): chokidar's first walk lstats
   * every entry through promises and the thread pool. Run beside the scan it made the
   * scan 4–5 times slower (5,050 files on the 2-core test VM: 550–690 ms against
   * 130–180 ms); run beside the first push it held the push's first requests back by
   * ~0.3 s of the main thread and took CPU the server needed. The watcher then hints what
   * changed since the scan began (`FolderWatcher.start`), so a change in between is not
   * missed, only noticed when the walk gets to it.
   */
  start(): void {
    this.timers.push(setInterval(() => this.scanAll(), this.deps.tunables.rescanMs));
    if (this.config.paused) {
      this.state = 'paused';
      this.syncer.pause();
    }
    // Timestamps come from the kernel's coarse clock, a tick behind `Date.now()`: a
    // second of slack (an older change only costs a needless look).
    const scanStarted = Date.now() - WATCH_CLOCK_SLACK_MS;
    this.scanAll();
    const scanned = (): void => {
      if (this.stopped) return;
      // A second call (the cap after the drain) is a no-op: `FolderWatcher.start` runs once.
      const watch = (): void => {
        this.startWatcher = null;
        if (!this.stopped) this.watcher.start(scanStarted);
      };
      this.startWatcher = watch;
      // Nothing to push (or paused, or stopped by an error): watch now. Otherwise once
      // the queue has drained (`onIdle`), or when the time is up, whichever comes first.
      if (this.state !== 'syncing') return watch();
      this.timers.push(setTimeout(watch, this.deps.tunables.watchDeferMs));
    };
    (this.scanRunning ?? Promise.resolve()).then(scanned, scanned);
    this.puller?.start();
  }

  /** Graceful: no new operations; waits for those in flight (unfinished ones stay queued). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.puller?.stop();
    await this.watcher.close();
    await this.scanRunning?.catch(() => undefined);
    await this.syncer.stop();
  }

  updateConfig(config: WatchConfig): void {
    const wasPaused = this.config.paused;
    this.config = config;
    if (config.paused && !wasPaused) this.pause();
    if (!config.paused && wasPaused) this.resume(false);
  }

  pause(): void {
    this.config = { ...this.config, paused: true };
    this.state = 'paused';
    this.syncer.pause();
  }

  resume(confirmDeletes: boolean): void {
    this.config = { ...this.config, paused: false };
    if (confirmDeletes) this.confirmDeletes = true;
    this.state = 'scanning';
    this.deps.journal.retryNow(this.folderId);
    this.scanAll();
    this.syncer.resume();
  }

  /** Full local scan (and, for two-way folders, a remote listing). */
  scanAll(): void {
    this.queuedFull = true;
    this.drainScans();
    if (this.puller && this.state !== 'scanning') this.rescanRemote();
  }

  /** Paths that may have changed (from the watcher, or after an operation). */
  hint(paths: readonly string[]): void {
    if (paths.includes(IGNORE_FILE)) {
      this.rules.reload();
      this.queuedFull = true;
    }
    this.queuedPaths ??= new Set();
    for (const p of paths) this.queuedPaths.add(p);
    this.drainScans();
  }

  private rescanRemote(): void {
    if (!this.puller || this.remoteRescanWanted) return;
    this.remoteRescanWanted = true;
    setTimeout(() => {
      this.remoteRescanWanted = false;
      if (this.stopped || this.config.paused) return;
      this.puller
        ?.rescan()
        .catch((err: unknown) => this.log.warn({ err: String(err) }, 'remote listing failed'));
    }, 200);
  }

  private drainScans(): void {
    if (this.scanRunning || this.stopped) return;
    this.scanRunning = (async () => {
      while (!this.stopped && (this.queuedFull || this.queuedPaths)) {
        const paths = this.queuedFull ? null : [...(this.queuedPaths as Set<string>)];
        this.queuedFull = false;
        this.queuedPaths = null;
        try {
          await this.applyPlan(await this.scanner.scan(paths), paths === null);
        } catch (err) {
          this.fail(`scan failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    })().finally(() => {
      this.scanRunning = null;
      // The queue may have emptied while the scan ran: now the folder can be called idle.
      if (!this.stopped) this.syncer.kick();
    });
  }

  private applyPlan(plan: ScanPlan, full: boolean): void {
    this.reportSkipped(plan.skipped, full);
    // What this plan syncs is no longer "not synced" (a case twin whose rival is gone).
    for (const op of plan.ops) this.skipped.delete(op.toPath ?? op.path);
    if (plan.rootMissing) {
      return this.fail('The watched folder is missing; nothing is deleted on the server until it is back.');
    }
    if (plan.rootEmpty && !this.confirmDeletes) {
      return this.fail(
        `The watched folder reads as empty while ${plan.syncedFiles} files are synced; nothing is deleted on the server. ` +
          'If this is intended, run `aio resume LOCAL --confirm-deletes`.',
      );
    }
    const { deleting, base } = this.massDeleteCount(plan);
    const { massDeleteMin, massDeleteMax } = this.deps.tunables;
    const mass = deleting >= massDeleteMax || (deleting >= massDeleteMin && deleting * 2 > base);
    if (mass && !this.confirmDeletes) {
      this.pendingDeletes = plan.deletedFiles;
      this.state = 'needs-confirmation';
      this.lastError = `${deleting} of ${base} synced files were deleted at once; confirm with \`aio resume ${this.local} --confirm-deletes\`.`;
      this.syncer.pause();
      this.log.warn({ deleted: deleting, synced: base }, 'mass delete held back');
      return;
    }
    if (plan.deletedFiles > 0) {
      // Confirmed, or not a mass delete: these count with the next batches' for a while.
      if (this.confirmDeletes) this.recentDeletes = [];
      else this.recentDeletes.push({ at: Date.now(), files: plan.deletedFiles });
    }
    if (plan.deletedFiles > 0 || plan.rootEmpty) this.confirmDeletes = false;
    this.pendingDeletes = 0;
    if (this.state === 'error' || this.state === 'needs-confirmation') {
      this.lastError = null;
      if (this.state === 'error') void this.watcher.restart();
    }
    if (this.config.paused) {
      this.state = 'paused';
      return;
    }
    if (plan.ops.length) {
      const deleteDelay = Date.now() + this.deps.tunables.debounceMs * 2;
      this.deps.journal.transaction(() => {
        for (const p of plan.cancelDeletes) this.deps.journal.cancelOp(this.folderId, 'delete', p);
        for (const op of plan.ops) {
          // Deletions wait a little: the other half of a rename may still be on its way.
          const notBefore = op.op === 'delete' ? deleteDelay : 0;
          this.deps.journal.enqueue(this.folderId, op.op, op.path, op.toPath ?? null, notBefore);
        }
      });
    }
    // Nothing to do and nothing queued: in sync now. (The syncer's `onIdle` leaves this to
    // the scan when one is running as the queue drains.)
    if (this.deps.journal.countOps(this.folderId) > 0) this.state = 'syncing';
    else this.settle();
    this.syncer.resume();
    this.syncer.kick();
  }

  /**
   * What the mass-delete guard weighs: this batch's deletions plus the earlier ones of the
   * same delete — those let through within `massDeleteWindowMs` (queued or run since), or
   * at least those still queued (an earlier run of the daemon queued them) — against the
   * synced files before any of it (the journal still counts the queued ones).
   */
  private massDeleteCount(plan: ScanPlan): { deleting: number; base: number } {
    const since = Date.now() - this.deps.tunables.massDeleteWindowMs;
    this.recentDeletes = this.recentDeletes.filter((d) => d.at > since);
    if (plan.deletedFiles === 0) return { deleting: 0, base: plan.syncedFiles };
    const recent = this.recentDeletes.reduce((n, d) => n + d.files, 0);
    const earlier = Math.max(recent, plan.queuedDeletedFiles);
    return {
      deleting: plan.deletedFiles + earlier,
      base: plan.syncedFiles + Math.max(0, recent - plan.queuedDeletedFiles),
    };
  }

  /** Nothing to do for a while: idle (or paused) and watched. */
  get quiet(): boolean {
    return (this.state === 'idle' || this.state === 'paused') && this.watcher.ready;
  }

  /** Idle, in sync as of now: every way into `idle` records the sync. */
  private settle(): void {
    this.state = 'idle';
    this.deps.journal.setLastSync(this.folderId, Date.now());
  }

  private onQueued(): void {
    if (this.state === 'idle' || this.state === 'scanning') this.state = 'syncing';
    this.syncer.kick();
  }

  private fail(message: string): void {
    if (this.lastError !== message) this.log.error(message);
    this.state = 'error';
    this.lastError = message;
    this.syncer.pause();
    // Look again later: the folder may come back (a remounted disk).
    const timer = setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer);
      if (this.state === 'error') this.scanAll();
    }, this.deps.tunables.errorRetryMs);
    this.timers.push(timer);
  }

  private reportSkipped(found: Map<string, string>, full: boolean): void {
    for (const [p, reason] of found) {
      if (!this.reported.has(p)) this.log.warn({ path: p, reason }, 'not synced');
      this.reported.add(p);
      this.skipped.set(p, reason);
    }
    if (full) for (const p of [...this.skipped.keys()]) if (!found.has(p)) this.skipped.delete(p);
  }

  status(): FolderStatus {
    const { journal } = this.deps;
    const last = journal.lastSync(this.folderId);
    return {
      local: this.local,
      remote: this.config.remote,
      mode: this.config.mode,
      state: this.state,
      queued: journal.countOps(this.folderId),
      running: this.syncer.running,
      lastError: this.lastError,
      lastSyncAt: last ? new Date(last).toISOString() : null,
      offline: this.deps.connectivity.offline,
      polling: this.watcher.isPolling,
      watching: this.watcher.ready,
      pendingDeletes: this.pendingDeletes,
      errors: journal.failedOps(this.folderId).map((o) => ({
        op: o.op,
        path: o.path,
        error: o.lastError as string,
        attempts: o.attempts,
      })),
      skipped: [...this.skipped].map(([p, reason]) => ({ path: p, reason })),
    };
  }
}
