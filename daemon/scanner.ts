/**
 * Decides what changed locally. Watch events only say where to look; the scanner
 * compares what is on disk with the journal (the last synced state) and plans
 * operations. A file is hashed only when needed to recognise a rename; uploads hash
 * at run time. Renames (same inode, or a deleted and an added file with the same
 * content in one batch) become moves, not delete + upload.
 */
import fs from 'node:fs/promises';
import { sha256File } from '../core/domain/hash.js';
import type { IgnoreRules } from './ignore.js';
import type { Journal, JournalEntry, OpKind } from './journal.js';
import { absolute, readLocal, type LocalNode, type LocalRead } from './local-tree.js';

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
  /** Synced files of the folder (the base of the mass-delete guard). */
  syncedFiles: number;
  skipped: Map<string, string>;
  unreadable: Map<string, string>;
}

const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const isUnder = (p: string, root: string): boolean => root === '' || p === root || p.startsWith(`${root}/`);

/** Whether the local node still looks like the journal's synced state (no hashing). */
export function sameStat(node: LocalNode, entry: JournalEntry): boolean {
  if (node.kind !== entry.kind) return false;
  if (node.kind === 'dir') return true;
  return node.size === entry.size && node.mtimeMs === entry.mtimeMs && node.ino === entry.ino;
}

/** Keeps only the outermost paths (`a` covers `a/b`); `''` covers everything. */
export function outermost(paths: Iterable<string>): string[] {
  const sorted = [...new Set(paths)].sort();
  const out: string[] = [];
  for (const p of sorted) if (!out.some((root) => isUnder(p, root))) out.push(p);
  return out;
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
    const local: LocalRead = { nodes: new Map(), skipped: plan.skipped, unreadable: plan.unreadable };
    const journal = new Map<string, JournalEntry>();
    for (const r of roots) {
      await readLocal(this.root, r, this.rules, local);
      for (const e of this.journal.entriesUnder(this.folderId, r)) journal.set(e.relPath, e);
    }
    if (syncedFiles > 0 && (await this.readsEmpty())) {
      plan.rootEmpty = true;
      return plan;
    }
    // What cannot be read is unknown: its synced entries are neither deleted nor compared.
    const unknown = [...plan.unreadable.keys()];
    const missing = new Map<string, JournalEntry>();
    for (const [p, e] of journal) {
      if (!local.nodes.has(p) && !unknown.some((u) => isUnder(p, u))) missing.set(p, e);
    }
    const added = [...local.nodes.values()].filter((n) => !journal.has(n.relPath));

    // Folder renames first: the same inode under a new name carries its subtree along.
    const movedDirs: Array<[string, string]> = [];
    for (const node of added.filter((n) => n.kind === 'dir')) {
      const from = [...missing.values()].find((e) => e.kind === 'dir' && e.ino === node.ino);
      if (!from || movedDirs.some(([f]) => isUnder(from.relPath, f))) continue;
      movedDirs.push([from.relPath, node.relPath]);
      plan.ops.push({ op: 'move', path: from.relPath, toPath: node.relPath });
    }
    const handled = new Set<string>();
    for (const [from, to] of movedDirs) {
      for (const [p, e] of [...missing]) {
        if (!isUnder(p, from)) continue;
        missing.delete(p);
        const target = to + p.slice(from.length);
        const node = local.nodes.get(target);
        if (!node) continue; // removed inside the moved folder: the move's subtree check re-scans it
        handled.add(target);
        if (!sameStat(node, e)) plan.ops.push({ op: node.kind === 'dir' ? 'mkdir' : 'upload', path: target });
      }
      handled.add(to);
    }

    // File renames: same inode and size, else same content among this batch's deletions.
    const remaining = added.filter(
      (n) =>
        !handled.has(n.relPath) && !movedDirs.some(([, to]) => isUnder(n.relPath, to) && n.relPath !== to),
    );
    // A deletion planned by an earlier batch may be the first half of this rename.
    const queuedDeletes = new Map<string, JournalEntry>();
    if (remaining.some((n) => n.kind === 'file')) {
      for (const op of this.journal.pendingOps(this.folderId)) {
        if (op.op !== 'delete') continue;
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
    for (const node of remaining) {
      if (node.kind !== 'file') continue;
      const candidates = [...missing.values(), ...queuedDeletes.values()].filter(
        (e) => e.kind === 'file' && e.size === node.size,
      );
      let from = candidates.find((e) => e.ino === node.ino);
      if (!from && candidates.some((e) => e.sha256)) {
        const sha = await this.hash(node.relPath);
        from = candidates.find((e) => e.sha256 === sha);
      }
      if (!from) continue;
      missing.delete(from.relPath);
      if (queuedDeletes.delete(from.relPath)) plan.cancelDeletes.push(from.relPath);
      handled.add(node.relPath);
      plan.ops.push({ op: 'move', path: from.relPath, toPath: node.relPath });
      if (from.ino !== node.ino || from.mtimeMs !== node.mtimeMs)
        plan.ops.push({ op: 'upload', path: node.relPath });
    }
    // Files added inside a moved folder that were not there before.
    for (const node of added) {
      if (handled.has(node.relPath)) continue;
      plan.ops.push({ op: node.kind === 'dir' ? 'mkdir' : 'upload', path: node.relPath });
    }
    for (const [p, e] of journal) {
      const node = local.nodes.get(p);
      if (node && !sameStat(node, e))
        plan.ops.push({ op: node.kind === 'dir' ? 'mkdir' : 'upload', path: p });
    }
    for (const p of outermost(missing.keys())) plan.ops.push({ op: 'delete', path: p });
    for (const e of missing.values()) if (e.kind === 'file') plan.deletedFiles++;
    plan.ops.sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path));
    return plan;
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
