/**
 * The sync daemon process: holds the lock of its config dir, opens the journal, serves
 * the control socket and runs one SyncFolder per watched folder. `runDaemon` resolves
 * after a graceful stop (SIGTERM, SIGINT or the `stop` request): no new operations,
 * those in flight finish (or fail and stay queued), the journal is closed.
 */
import fs from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import type net from 'node:net';
import type { ApiClient } from '../contract/client.js';
import { AppError } from '../contract/errors.js';
import { Aggregator } from './aggregator.js';
import { Connectivity } from './connectivity.js';
import { daemonFiles } from './files.js';
import { SyncFolder, type FolderStatus } from './folder.js';
import { listenIpc, type IpcRequest } from './ipc.js';
import { lazyFullGc, QuietCompactor } from './memory.js';
import { Journal } from './journal.js';
import { acquireDaemonLock } from './lock.js';
import { createLogger, RotatingFile, type Logger } from './logger.js';
import { readTunables, type Tunables } from './tunables.js';
import { readWatches, writeWatches } from './watches.js';

export interface DaemonOptions {
  configDir: string;
  client: ApiClient;
  /** Identifies server + profile; a folder synced under another account starts over. */
  account: string;
  env?: NodeJS.ProcessEnv;
  /** Called once the control socket answers. */
  onReady?: (info: { pid: number; socket: string; log: string }) => void;
}

export interface DaemonStatus {
  pid: number;
  startedAt: string;
  server: string;
  account: string;
  folders: FolderStatus[];
}

export class Daemon {
  private readonly files;
  private readonly tunables: Tunables;
  private readonly logFile: RotatingFile;
  readonly log: Logger;
  private readonly connectivity: Connectivity;
  private readonly aggregator: Aggregator;
  private readonly folders = new Map<string, SyncFolder>();
  private journal: Journal | null = null;
  private ipc: net.Server | null = null;
  private release: (() => void) | null = null;
  private readonly startedAt = new Date();
  /** Checks every `compactCheckMs` whether to give garbage back (`QuietCompactor`). */
  private compactTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private resolveDone: () => void = () => undefined;
  /** Settles when the daemon has stopped. */
  readonly done = new Promise<void>((r) => (this.resolveDone = r));

  constructor(private readonly options: DaemonOptions) {
    this.files = daemonFiles(options.configDir);
    this.tunables = readTunables(options.env ?? process.env);
    fs.mkdirSync(options.configDir, { recursive: true, mode: 0o700 });
    this.logFile = new RotatingFile(this.files.log, this.tunables.logMaxBytes, this.tunables.logKeep);
    this.log = createLogger(this.logFile);
    this.connectivity = new Connectivity(this.tunables.offlineMaxMs);
    this.aggregator = new Aggregator({
      delayMs: this.tunables.debounceMs,
      maxDelayMs: this.tunables.maxDelayMs,
      onBatch: (local, paths) => this.folders.get(local)?.hint(paths),
    });
  }

  async start(): Promise<void> {
    const lock = acquireDaemonLock(this.files.lock, this.files.pid);
    this.release = () => lock.release();
    try {
      this.journal = Journal.open(this.files.journal);
      this.ipc = await listenIpc(this.files.socket, (req) => this.handle(req));
      await this.reloadWatches();
    } catch (err) {
      this.release();
      throw err;
    }
    const compactor = new QuietCompactor({
      fullGc: lazyFullGc(),
      heapUsed: () => v8.getHeapStatistics().used_heap_size,
      quiet: () => this.folders.size > 0 && [...this.folders.values()].every((f) => f.quiet),
      growthBytes: this.tunables.compactGrowthBytes,
    });
    this.compactTimer = setInterval(() => {
      const before = v8.getHeapStatistics().used_heap_size;
      const start = performance.now();
      if (compactor.tick())
        this.log.info(
          {
            heapUsedBefore: before,
            heapUsedAfter: v8.getHeapStatistics().used_heap_size,
            ms: Math.round(performance.now() - start),
          },
          'quiet: garbage collected',
        );
    }, this.tunables.compactCheckMs).unref();
    this.log.info({ server: this.options.client.server, folders: this.folders.size }, 'daemon started');
    this.options.onReady?.({ pid: process.pid, socket: this.files.socket, log: this.files.log });
  }

  /** Applies `watches.json`: new folders start, removed ones stop and are forgotten, changes apply. */
  async reloadWatches(): Promise<void> {
    const journal = this.journal as Journal;
    const wanted = await readWatches(this.options.configDir);
    const byLocal = new Map(wanted.map((w) => [w.local, w]));
    for (const [local, folder] of this.folders) {
      const config = byLocal.get(local);
      if (config && config.remote === folder.status().remote && config.mode === folder.status().mode)
        continue;
      this.folders.delete(local);
      this.aggregator.forget(local);
      await folder.stop();
      if (!config) journal.dropFolder(local);
    }
    for (const config of wanted) {
      const existing = this.folders.get(config.local);
      if (existing) {
        existing.updateConfig(config);
        continue;
      }
      const folder = new SyncFolder({
        config,
        journal,
        client: this.options.client,
        account: this.options.account,
        connectivity: this.connectivity,
        tunables: this.tunables,
        log: this.log,
        host: os.hostname(),
        trashDir: this.files.trash,
      });
      folder.onWatchHint = (rel) => this.aggregator.add(config.local, rel);
      this.folders.set(config.local, folder);
      folder.start();
    }
  }

  status(): DaemonStatus {
    return {
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      server: this.options.client.server,
      account: this.options.account,
      folders: [...this.folders.values()].map((f) => f.status()),
    };
  }

  private pick(local: string | undefined): SyncFolder[] {
    if (local === undefined) return [...this.folders.values()];
    const folder = this.folders.get(local);
    if (!folder) throw new AppError('NOT_FOUND', `${local} is not watched.`);
    return [folder];
  }

  private async setPaused(local: string | undefined, paused: boolean): Promise<void> {
    const watches = await readWatches(this.options.configDir);
    for (const w of watches) if (local === undefined || w.local === local) w.paused = paused;
    await writeWatches(this.options.configDir, watches);
  }

  private async handle(req: IpcRequest): Promise<unknown> {
    switch (req.cmd) {
      case 'ping':
        return { pid: process.pid };
      case 'status':
        return this.status();
      case 'pause': {
        const folders = this.pick(req.local);
        await this.setPaused(req.local, true);
        for (const f of folders) f.pause();
        return this.status();
      }
      case 'resume': {
        const folders = this.pick(req.local);
        await this.setPaused(req.local, false);
        for (const f of folders) f.resume(Boolean(req.confirmDeletes));
        return this.status();
      }
      case 'rescan':
        for (const f of this.pick(req.local)) f.scanAll();
        return this.status();
      case 'watch-changed':
        await this.reloadWatches();
        return this.status();
      case 'stop':
        setImmediate(() => void this.stop());
        return { stopping: true };
    }
    throw new AppError('BAD_REQUEST', `Unknown request ${String((req as { cmd?: unknown }).cmd)}.`);
  }

  /** Graceful stop; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('daemon stopping');
      if (this.compactTimer) clearInterval(this.compactTimer);
      this.aggregator.close();
      await Promise.all([...this.folders.values()].map((f) => f.stop()));
      await new Promise<void>((r) => (this.ipc ? this.ipc.close(() => r()) : r()));
      fs.rmSync(this.files.socket, { force: true });
      this.journal?.close();
      this.log.info('daemon stopped');
      this.release?.();
      this.logFile.close();
      this.resolveDone();
    })();
    return this.stopping;
  }
}

/** Runs the daemon in this process until it is stopped (signals are handled here). */
export async function runDaemon(options: DaemonOptions): Promise<void> {
  const daemon = new Daemon(options);
  await daemon.start();
  const onSignal = (signal: NodeJS.Signals): void => {
    daemon.log.info({ signal }, 'signal received');
    void daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await daemon.done;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
