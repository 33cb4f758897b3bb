/**
 * Decides what changed locally. Watch events only say where to look; the scanner
 * compares what is on disk with the journal (the last synced state) and plans
 * operations. A file is hashed only when needed to recognise a rename; uploads hash
 * at run time. Renames (same inode, or a deleted and an added file with the same
 * content in one batch) become moves, not delete + upload.
 */
import fs from 'node:fs/promises';
import { sha256File } from '../core/domain/hash.js';
import { nameKey } from '../core/domain/names.js';
import { mapPool } from '../core/domain/pool.js';
import type { IgnoreRules } from './ignore.js';
import type { Journal, JournalEntry, OpKind } from './journal.js';
import { absolute, readLocal, type LocalNode, type LocalRead } from './local-tree.js';

/** Scan roots read at once (each reads its own subtree; folders a few dozen entries at a time). */
const ROOTS_IN_FLIGHT = 16;
export interface PlannedOp {
  op: OpKind;
  path: string;
  toPath?: string;
}

export interface ScanPlan {
  /** The watched folder itself is gone or not a folder. */
  rootMissing: boolean;
  /** The folder reads as empty while the journal still has files. */
  rootEmpty: boolean;
  ops: PlannedOp[];
  /** Queued deletions that this plan turns into moves (to withdraw from the queue). */
  cancelDeletes: string[];
  /** Synced files this plan would delete on the server. */
  deletedFiles: number;
  /**
   * With deletions in this plan: the synced files whose deletion an earlier batch queued
   * and that has not run yet (deletions wait a little), for the mass-delete guard.
   */
  queuedDeletedFiles: number;
  /** Synced files of the folder (the base of the mass-delete guard). */
  syncedFiles: number;
  skipped: Map<string, string>;
  unreadable: Map<string, string>;
}

const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const nameOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const childOf = (parent: string, name: string): string => (parent === '' ? name : `${parent}/${name}`);

/** The innermost key of `roots` that is `p` or one of its ancestors (`''` covers everything). */
function coveringRoot<T>(p: string, roots: ReadonlyMap<string, T> | ReadonlySet<string>): string | undefined {
  if (roots.size === 0) return undefined;
  if (roots.has(p)) return p;
  for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
    const a = p.slice(0, i);
    if (roots.has(a)) return a;
  }
  return roots.has('') ? '' : undefined;
}

/** Whether a strict ancestor of `p` is in `roots`. */
const strictlyUnder = (p: string, roots: ReadonlySet<string>): boolean =>
  roots.size > 0 && p !== '' && coveringRoot(parentOf(p), roots) !== undefined;

/** Plain code-unit order: parents before children, and no locale tables for 100,000 paths. */
const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Whether the local node still looks like the journal's synced state (no hashing). */
export function sameStat(
  node: LocalNode,
  entry: Pick<JournalEntry, 'kind' | 'size' | 'mtimeMs' | 'ino'>,
): boolean {
  if (node.kind !== entry.kind) return false;
  if (node.kind === 'dir') return true;
  return node.size === entry.size && node.mtimeMs === entry.mtimeMs && node.ino === entry.ino;
}

/** Keeps only the outermost paths (`a` covers `a/b`); `''` covers everything. Sorted. */
export function outermost(paths: Iterable<string>): string[] {
  const all = new Set(paths);
  if (all.has('')) return [''];
  const out: string[] = [];
  for (const p of all) if (!strictlyUnder(p, all)) out.push(p);
  return out.sort(byPath);
}

export class Scanner {
  constructor(
    private readonly root: string,
    private readonly folderId: number,
    private readonly journal: Journal,
    private readonly rules: IgnoreRules,
  ) {}

  /** Plans the operations for `paths` (relative; `null` = the whole folder). Writes nothing. */
  async scan(paths: readonly string[] | null): Promise<ScanPlan> {
    const syncedFiles = this.journal.countFiles(this.folderId);
    const plan: ScanPlan = {
      rootMissing: false,
      rootEmpty: false,
      ops: [],
      deletedFiles: 0,
      queuedDeletedFiles: 0,
      cancelDeletes: [],
      syncedFiles,
      skipped: new Map(),
      unreadable: new Map(),
    };
    try {
      if (!(await fs.stat(this.root)).isDirectory()) plan.rootMissing = true;
    } catch {
      plan.rootMissing = true;
    }
    if (plan.rootMissing) return plan;

    const roots = outermost(
      (paths ?? [''])
        .filter((p) => p === '' || !this.rules.ignores(p))
        .flatMap((p) => this.withNewAncestors(p)),
    );
    const local: LocalRead = {
      nodes: new Map(),
      skipped: plan.skipped,
      unreadable: plan.unreadable,
      listed: new Map(),
    };
    // Many roots (a burst of changed files) are read side by side: one at a time, 100
    // changed files cost 100 lstat round trips in sequence (~100 ms).
    await mapPool(roots, ROOTS_IN_FLIGHT, (r) => readLocal(this.root, r, this.rules, local));
    if (syncedFiles > 0 && (await this.readsEmpty())) {
      plan.rootEmpty = true;
      return plan;
    }
    // The journal is streamed past the local nodes instead of loaded: a synced node that
    // still matches is dropped at once, so a full scan of an unchanged tree holds only the
    // local side. What is left in `local.nodes` afterwards is new.
    // What cannot be read is unknown: its synced entries are neither deleted nor compared.
    const unknown = new Set(plan.unreadable.keys());
    const missing = new Map<string, JournalEntry>();
    // Synced entries whose path now holds the other kind (a file where a folder was, or
    // the reverse): the server's one is deleted first, and the local one is new.
    const replaced = new Map<string, JournalEntry>();
    for (const r of roots) {
      this.journal.eachEntryUnder(this.folderId, r, (e) => {
        const node = local.nodes.get(e.relPath);
        if (!node) {
          if (coveringRoot(e.relPath, unknown) === undefined) missing.set(e.relPath, e);
          return;
        }
        if (node.kind !== e.kind) {
          replaced.set(e.relPath, e);
          return;
        }
        if (!sameStat(node, e))
          plan.ops.push({ op: node.kind === 'dir' ? 'mkdir' : 'upload', path: e.relPath });
        local.nodes.delete(e.relPath);
      });
    }
    if (missing.size) await this.readFreedTwins(missing, local);
    const added = await this.withoutCaseTwins([...local.nodes.values()], local.listed, plan.skipped);

    // Folder renames first: the same inode under a new name carries its subtree along.
    const missingDirs = new Map<number, JournalEntry>();
    for (const e of missing.values())
      if (e.kind === 'dir' && !missingDirs.has(e.ino)) missingDirs.set(e.ino, e);
    const movedDirs = new Map<string, string>(); // from → to
    const movedTo = new Set<string>();
    if (missingDirs.size) {
      for (const node of added) {
        if (node.kind !== 'dir') continue;
        const from = missingDirs.get(node.ino);
        if (!from || coveringRoot(from.relPath, movedDirs) !== undefined) continue;
        movedDirs.set(from.relPath, node.relPath);
        movedTo.add(node.relPath);
        plan.ops.push({ op: 'move', path: from.relPath, toPath: node.relPath });
      }
    }
    const handled = new Set<string>(movedTo);
    if (movedDirs.size) {
      for (const [p, e] of missing) {
        const from = coveringRoot(p, movedDirs);
        if (from === undefined) continue;
        missing.delete(p);
        const target = (movedDirs.get(from) as string) + p.slice(from.length);
        const node = local.nodes.get(target);
        if (!node) continue; // removed inside the moved folder: the move's subtree check re-scans it
        handled.add(target);
        if (!sameStat(node, e)) plan.ops.push({ op: node.kind === 'dir' ? 'mkdir' : 'upload', path: target });
      }
    }

    // File renames: same inode and size, else same content among this batch's deletions.
    const remaining = added.filter((n) => !handled.has(n.relPath) && !strictlyUnder(n.relPath, movedTo));
    // A deletion planned by an earlier batch may be the first half of this rename, and
    // counts with this batch's deletions for the mass-delete guard (below).
    const queuedDeletes = new Map<string, JournalEntry>();
    if (remaining.some((n) => n.kind === 'file') || [...missing.values()].some((e) => e.kind === 'file')) {
      for (const op of this.journal.pendingOpsOf(this.folderId, 'delete')) {
        for (const e of this.journal.entriesUnder(this.folderId, op.path)) {
          if (
            e.kind === 'file' &&
            !missing.has(e.relPath) &&
            !(await fs.lstat(absolute(this.root, e.relPath)).catch(() => null))
          )
            queuedDeletes.set(e.relPath, e);
        }
      }
    }
    // Rename candidates by size (deleted files first, then queued deletions), each used once.
    const bySize = new Map<number, JournalEntry[]>();
    for (const e of [...missing.values(), ...queuedDeletes.values()]) {
      if (e.kind !== 'file') continue;
      const list = bySize.get(e.size);
      if (list) list.push(e);
      else bySize.set(e.size, [e]);
    }
    const used = new Set<string>();
    for (const node of bySize.size ? remaining : []) {
      if (node.kind !== 'file') continue;
      const candidates = (bySize.get(node.size) ?? []).filter((e) => !used.has(e.relPath));
      let from = candidates.find((e) => e.ino === node.ino);
      if (!from && candidates.some((e) => e.sha256)) {
        const sha = await this.hash(node.relPath);
        from = candidates.find((e) => e.sha256 === sha);
      }
      if (!from) continue;
      used.add(from.relPath);
      missing.delete(from.relPath);
      if (queuedDeletes.delete(from.relPath)) plan.cancelDeletes.push(from.relPath);
      handled.add(node.relPath);
      plan.ops.push({ op: 'move', path: from.relPath, toPath: node.relPath });
      if (from.ino !== node.ino || from.mtimeMs !== node.mtimeMs)
        plan.ops.push({ op: 'upload', path: node.relPath });
    }
    // New items (also those added inside a moved folder that were not there before).
    for (const node of added) {
      if (handled.has(node.relPath)) continue;
      plan.ops.push({ op: node.kind === 'dir' ? 'mkdir' : 'upload', path: node.relPath });
    }
    for (const p of outermost([...missing.keys(), ...replaced.keys()]))
      plan.ops.push({ op: 'delete', path: p });
    for (const e of [...missing.values(), ...replaced.values()]) if (e.kind === 'file') plan.deletedFiles++;
    // Files whose deletion an earlier batch queued and that has not run yet: a mass delete
    // whose events came in two batches is still one (the guard adds them up).
    if (plan.deletedFiles > 0) plan.queuedDeletedFiles = queuedDeletes.size;
    plan.ops.sort((a, b) => rank(a) - rank(b) || byPath(a.path, b.path));
    return plan;
  }

  /**
   * `added` without the names the server would take for another one here. It keeps
   * names unique ignoring case (`nameKey`); a Linux folder need not. Of the names in one
   * folder that differ only in case, the one the journal has is synced (else the first
   * in code-point order, so every scan picks the same), and the others are reported as
   * not synced. Before, each was uploaded onto its twin, refused as a conflict, and came
   * back as a conflicted copy with the twin's bytes in its place, at every edit.
   */
  private async withoutCaseTwins(
    added: LocalNode[],
    listed: ReadonlyMap<string, string[]> | undefined,
    skipped: Map<string, string>,
  ): Promise<LocalNode[]> {
    if (added.length === 0) return added;
    const addedPaths = new Set(added.map((n) => n.relPath));
    const byParent = new Map<string, LocalNode[]>();
    for (const node of added) {
      const parent = parentOf(node.relPath);
      const list = byParent.get(parent);
      if (list) list.push(node);
      else byParent.set(parent, [node]);
    }
    const twins = new Set<string>();
    for (const [parent, nodes] of byParent) {
      const names = await this.namesIn(parent, listed);
      if (names.length < 2) continue;
      const groups = new Map<string, string[]>();
      for (const name of names) {
        const key = nameKey(name);
        const group = groups.get(key);
        if (group) group.push(name);
        else groups.set(key, [name]);
      }
      const pathOf = (name: string): string => childOf(parent, name);
      for (const node of nodes) {
        const name = nameOf(node.relPath);
        const group = groups.get(nameKey(name));
        if (!group || group.length < 2) continue;
        // Only names that sync take part: one of this scan's new items, or a synced one.
        const rivals = group.filter(
          (n) => n !== name && (addedPaths.has(pathOf(n)) || this.journal.entry(this.folderId, pathOf(n))),
        );
        if (rivals.length === 0) continue;
        const synced = rivals.find((n) => !addedPaths.has(pathOf(n)));
        const keeper = synced ?? [name, ...rivals].sort(byPath)[0];
        if (keeper === name) continue;
        twins.add(node.relPath);
        skipped.set(
          node.relPath,
          `name taken on the server by ${JSON.stringify(keeper)} (names there are unique ignoring case)`,
        );
      }
    }
    if (twins.size === 0) return added;
    return added.filter((n) => coveringRoot(n.relPath, twins) === undefined);
  }

  /**
   * A synced item that is gone may have held back a twin (a name that differs only in
   * case, reported as not synced): that twin is read into `local` now, so it syncs with
   * this change instead of at the next full rescan. Only outermost missing items count
   * (a deleted folder's contents have no twins of their own to free).
   */
  private async readFreedTwins(missing: ReadonlyMap<string, JournalEntry>, local: LocalRead): Promise<void> {
    for (const gone of outermost(missing.keys())) {
      if (gone === '') continue;
      const parent = parentOf(gone);
      const key = nameKey(nameOf(gone));
      for (const name of await this.namesIn(parent, local.listed)) {
        const twin = childOf(parent, name);
        if (twin === gone || nameKey(name) !== key || local.nodes.has(twin) || this.rules.ignores(twin))
          continue;
        if (this.journal.entry(this.folderId, twin)) continue;
        await readLocal(this.root, twin, this.rules, local);
      }
    }
  }

  /** The names in folder `parent`: as this scan read them, else from the disk (none if unreadable). */
  private async namesIn(
    parent: string,
    listed: ReadonlyMap<string, string[]> | undefined,
  ): Promise<string[]> {
    return listed?.get(parent) ?? (await fs.readdir(absolute(this.root, parent)).catch(() => []));
  }

  /** `p` plus those of its ancestors the journal does not know (a new folder must be created first). */
  private withNewAncestors(p: string): string[] {
    const out = [p];
    for (let a = parentOf(p); a !== ''; a = parentOf(a)) {
      if (this.journal.entry(this.folderId, a)) break;
      out.push(a);
    }
    return out;
  }

  private async readsEmpty(): Promise<boolean> {
    try {
      const names = await fs.readdir(this.root);
      return names.every((n) => this.rules.ignores(n));
    } catch {
      return false;
    }
  }

  private async hash(relPath: string): Promise<string | null> {
    try {
      return (await sha256File(absolute(this.root, relPath))).sha256;
    } catch {
      return null;
    }
  }
}

/** Moves before deletes before creations, so renames keep their identity and parents come first. */
function rank(op: PlannedOp): number {
  return op.op === 'move' ? 0 : op.op === 'delete' ? 1 : op.op === 'mkdir' ? 2 : 3;
}
