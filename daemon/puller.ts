/**
 * Follows the server's change feed for a two-way folder and plans local operations.
 * Like watcher events, changes are hints: a batch that is not just the echo of our own
 * operations triggers a listing of the remote folder, which is compared with the
 * journal (the last synced state) to plan downloads, local folders, local renames and
 * local deletions. The cursor is saved only after the planned operations are queued.
 */
import type { ChangeBody, ChangesResponse, Entry } from '../contract/schemas/files.js';
import { AppError } from '../contract/errors.js';
import type { Connectivity } from './connectivity.js';
import { sameKind, type Journal, type JournalEntry, type OpKind } from './journal.js';
import type { Logger } from './logger.js';
import type { RemoteFolder } from './remote.js';
import { outermost } from './scanner.js';
import { isOffline } from './syncer.js';

export interface PullerOptions {
  folderId: number;
  journal: Journal;
  remote: RemoteFolder;
  connectivity: Connectivity;
  pollWaitSeconds: number;
  log: Logger;
  /** Operations were queued. */
  onQueued: () => void;
  isPaused: () => boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const isUnder = (p: string, root: string): boolean => p === root || p.startsWith(`${root}/`);
const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

export interface RemotePlan {
  op: OpKind;
  path: string;
  toPath?: string;
}

/** Compares the remote tree with the journal; the operations that bring the local side along. */
export function planRemote(tree: Map<string, Entry>, entries: readonly JournalEntry[]): RemotePlan[] {
  const plan: RemotePlan[] = [];
  const pathById = new Map<string, string>();
  for (const [p, e] of tree) if (e.id) pathById.set(e.id, p);
  const journalIds = new Set(entries.map((e) => e.remoteId).filter((id): id is string => id !== null));
  const journalPaths = new Set(entries.map((e) => e.relPath));
  const moved: Array<[string, string]> = [];
  const gone: string[] = [];
  const replaced: Array<[string, Entry]> = [];
  for (const e of entries) {
    if (!e.remoteId) continue;
    const carried = moved.find(([from]) => isUnder(e.relPath, from));
    const expected = carried ? carried[1] + e.relPath.slice(carried[0].length) : e.relPath;
    const here = tree.get(expected);
    if (here && here.id === e.remoteId) {
      if (here.kind === 'file' && (here.revision !== e.remoteRevision || here.sha256 !== e.sha256))
        plan.push({ op: 'download', path: expected });
      continue;
    }
    if (carried) continue; // moved along with its folder, then changed: the rest of the plan finds it
    const elsewhere = pathById.get(e.remoteId);
    if (elsewhere !== undefined) {
      plan.push({ op: 'local-move', path: e.relPath, toPath: elsewhere });
      moved.push([e.relPath, elsewhere]);
      const now = tree.get(elsewhere) as Entry;
      if (now.kind === 'file' && (now.revision !== e.remoteRevision || now.sha256 !== e.sha256))
        plan.push({ op: 'download', path: elsewhere });
      continue;
    }
    if (here && !sameKind(e.kind, here.kind)) {
      // Replaced by the other kind (a folder where the file was, or the reverse): the
      // local one goes first, then the new one comes.
      gone.push(e.relPath);
      replaced.push([e.relPath, here]);
    } else if (here)
      plan.push({ op: 'download', path: e.relPath }); // replaced by another node
    else gone.push(e.relPath);
  }
  for (const p of outermost(gone)) plan.push({ op: 'local-delete', path: p });
  for (const [p, e] of replaced)
    if (e.kind === 'folder') plan.push({ op: 'local-mkdir', path: p });
    else if (e.status === 'ready') plan.push({ op: 'download', path: p });
  for (const [p, e] of [...tree].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if ((e.id && journalIds.has(e.id)) || journalPaths.has(p)) continue;
    if (e.kind === 'folder') plan.push({ op: 'local-mkdir', path: p });
    else if (e.status === 'ready') plan.push({ op: 'download', path: p });
  }
  return plan;
}

export class Puller {
  private stopped = false;
  /** Cancels the change-feed long-poll in flight when the puller stops. */
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private rootId: string | null | undefined;
  private treeIds = new Set<string>();
  private lastRescan = 0;

  constructor(private readonly options: PullerOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops following; an open long-poll is abandoned (it holds no state). */
  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  /** Lists the remote folder and queues what the local side needs. */
  async rescan(): Promise<void> {
    const { remote, journal, folderId, log } = this.options;
    this.lastRescan = Date.now();
    const tree = await remote.listTree();
    this.treeIds = new Set([...tree.values()].map((e) => e.id).filter((id): id is string => id !== null));
    const plan = planRemote(tree, journal.entriesUnder(folderId, ''));
    if (plan.length) {
      journal.transaction(() => {
        for (const p of plan) journal.enqueue(folderId, p.op, p.path, p.toPath ?? null);
      });
      log.info({ operations: plan.length }, 'remote changes planned');
      this.options.onQueued();
    }
  }

  private async run(): Promise<void> {
    const { journal, folderId, remote, connectivity, log } = this.options;
    while (!this.stopped) {
      if (this.options.isPaused()) {
        await sleep(300);
        continue;
      }
      if (connectivity.nextTryAt > Date.now()) {
        await sleep(Math.min(connectivity.nextTryAt - Date.now(), 1_000));
        continue;
      }
      try {
        if (this.rootId === undefined || (this.rootId === null && remote.root !== '/'))
          this.rootId = remote.root === '/' ? null : ((await remote.stat(''))?.id ?? null);
        const cursor = journal.cursor(folderId);
        if (cursor === null) {
          // Note the position first, then list: nothing committed in between is missed.
          const latest = await remote.client.get<{ cursor: number }>('/api/v1/changes/latest');
          await this.rescan();
          journal.setCursor(folderId, latest.cursor);
          connectivity.succeeded();
          continue;
        }
        const page = await remote.client.get<ChangesResponse>('/api/v1/changes', {
          searchParams: { cursor, wait: this.options.pollWaitSeconds, limit: 1000 },
          timeoutMs: (this.options.pollWaitSeconds + 30) * 1000,
          signal: this.abort.signal,
        });
        connectivity.succeeded();
        if (this.stopped) return;
        if (page.changes.some((c) => this.relevant(c))) {
          // Let a burst of commits (often our own uploads) settle into one listing.
          await sleep(Math.max(0, this.lastRescan + 1_000 - Date.now()));
          await this.rescan();
        }
        journal.setCursor(folderId, page.cursor);
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof AppError && err.code === 'CURSOR_EXPIRED') {
          log.warn('change feed cursor expired; listing the remote folder again');
          journal.setCursor(folderId, null);
        } else if (isOffline(err)) {
          connectivity.failed();
        } else {
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'change feed failed');
          await sleep(2_000);
        }
      }
    }
  }

  /** A change concerns this folder and is not the echo of what the journal already has. */
  private relevant(change: ChangeBody): boolean {
    const { journal, folderId, remote } = this.options;
    const data = change.data as {
      name?: string;
      parentId?: string | null;
      revision?: number;
      sha256?: string | null;
      trashedAt?: string | null;
      from?: { parentId?: string | null };
    };
    if (change.kind === 'notify') return false;
    // The remote folder did not exist at the last look: it may just have been created.
    if (this.rootId === null && remote.root !== '/') return true;
    const known = change.nodeId ? journal.entryByRemoteId(folderId, change.nodeId) : null;
    if (known) {
      const parent = parentOf(known.relPath);
      const parentId = parent === '' ? this.rootId : journal.entry(folderId, parent)?.remoteId;
      const echo =
        (change.kind === 'create' || change.kind === 'update' || change.kind === 'move') &&
        !data.trashedAt &&
        data.name === baseName(known.relPath) &&
        data.parentId === parentId &&
        (known.kind === 'dir' || (data.revision === known.remoteRevision && data.sha256 === known.sha256));
      return !echo;
    }
    const ids = [change.nodeId, data.parentId, data.from?.parentId];
    return ids.some(
      (id) =>
        (id === null && remote.root === '/') ||
        (typeof id === 'string' &&
          (id === this.rootId || this.treeIds.has(id) || journal.entryByRemoteId(folderId, id) !== null)),
    );
  }
}
