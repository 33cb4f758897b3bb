/**
 * What each queued operation does when it runs. Every handler first re-reads the
 * current state (local disk, journal, server) and does only what is still needed, so
 * running an operation twice — after a crash, or because two triggers queued it — is
 * harmless. A handler throws on failure; the syncer retries it with backoff.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { downloadFile, type Landed } from '../contract/download-client.js';
import { planBatches, uploadBatch, type BatchFile, type UploadBatchFile } from '../contract/batch-client.js';
import { AppError, isErrorCode } from '../contract/errors.js';
import { readSmallFile } from '../contract/small-file.js';
import { MAX_MKDIRS, type Entry, type MkdirsResponse } from '../contract/schemas/files.js';
import { sha256File } from '../core/domain/hash.js';
import { conflictedCopyPath } from './conflicts.js';
import { sameKind, type Journal, type JournalEntry, type Operation } from './journal.js';
import { absolute, statLocal, statLocalSync, type LocalNode } from './local-tree.js';
import type { Logger } from './logger.js';
import type { RemoteFolder } from './remote.js';
import { sameStat } from './scanner.js';

export interface OperationContext {
  root: string;
  folderId: number;
  journal: Journal;
  remote: RemoteFolder;
  host: string;
  /** Folder under which locally removed files are kept (`<config>/.aio-trash/<folder id>`). */
  trashDir: string;
  settleMs: number;
  log: Logger;
}

/**
 * `entry` is the synced state the operation established: the syncer writes it in the same
 * commit that completes (or postpones) the operation, one fsync instead of two.
 */
export type Outcome =
  | { kind: 'done'; rescanLocal?: string[]; rescanRemote?: boolean; entry?: JournalEntry }
  /** Not an error: run it again later (a file still being written, an upload not ready). */
  | { kind: 'later'; at: number; entry?: JournalEntry }
  /** Not for a batch (too big, a revision conflict to resolve): run it on its own. */
  | { kind: 'single' };

/** Per operation of a batch: its outcome, or the error it failed with. */
export type BatchResult = Map<number, { outcome: Outcome } | { error: unknown }>;

/** Files up to this size go up in batches (`POST /uploads/batch`); bigger ones use tus alone. */
export const BATCH_FILE_SIZE = 64 * 1024;
/** Bytes per batch request. */
const BATCH_BYTES = 8 * 1024 * 1024;

const DONE: Outcome = { kind: 'done' };

const isCode = (err: unknown, ...codes: string[]): boolean =>
  err instanceof AppError && codes.includes(err.code);

export async function runOperation(ctx: OperationContext, op: Operation): Promise<Outcome> {
  switch (op.op) {
    case 'upload':
      return upload(ctx, op.path);
    case 'mkdir':
      return mkdirRemote(ctx, op.path);
    case 'delete':
      return deleteRemote(ctx, op.path);
    case 'move':
      return moveRemote(ctx, op.path, op.toPath as string);
    case 'download':
      return download(ctx, op.path);
    case 'local-mkdir':
      return download(ctx, op.path);
    case 'local-delete':
      return deleteLocal(ctx, op.path);
    case 'local-move':
      return moveLocal(ctx, op.path, op.toPath as string);
  }
}

/** The journal entry for `node` as the server now has it (recorded by the syncer with the outcome). */
function synced(
  node: LocalNode,
  remote: Pick<Entry, 'id' | 'revision'>,
  sha256: string | null,
): JournalEntry {
  return {
    relPath: node.relPath,
    kind: node.kind,
    size: node.size,
    mtimeMs: node.mtimeMs,
    ino: node.ino,
    sha256,
    remoteId: remote.id,
    remoteRevision: remote.revision,
  };
}

const changedSince = (a: LocalNode, b: LocalNode): boolean =>
  a.size !== b.size || a.mtimeMs !== b.mtimeMs || a.ino !== b.ino;

// ---------- local → server ----------

async function upload(ctx: OperationContext, rel: string): Promise<Outcome> {
  const { node: before } = await statLocal(ctx.root, rel);
  if (!before || before.kind !== 'file') return { kind: 'done', rescanLocal: [rel] };
  const age = Date.now() - before.mtimeMs;
  if (age < ctx.settleMs) return { kind: 'later', at: before.mtimeMs + ctx.settleMs + 10 };
  const entry = ctx.journal.entry(ctx.folderId, rel);
  if (entry?.kind === 'file' && entry.remoteId && sameStat(before, entry)) return DONE;
  const { sha256, size } = await sha256File(absolute(ctx.root, rel));
  if (size !== before.size) return { kind: 'later', at: Date.now() + ctx.settleMs };
  if (entry?.kind === 'file' && entry.remoteId && entry.sha256 === sha256) {
    // Touched, not changed (or uploaded just before a crash): only the local stat moves on.
    return { kind: 'done', entry: { ...entry, size, mtimeMs: before.mtimeMs, ino: before.ino } };
  }
  const base = entry?.kind === 'file' && entry.remoteId ? entry.remoteRevision : 0;
  const request = { localFile: absolute(ctx.root, rel), relPath: rel, size, sha256, mtimeMs: before.mtimeMs };
  let committed: Entry;
  try {
    committed = await ctx.remote.upload({ ...request, baseRevision: base });
  } catch (err) {
    if (!isCode(err, 'REVISION_CONFLICT')) throw err;
    const current = await ctx.remote.stat(rel);
    if (!current) {
      // Deleted on the server while edited here: the edit wins.
      committed = await ctx.remote.upload({ ...request, baseRevision: 0 });
    } else if (current.kind === 'file' && current.sha256 === sha256) {
      committed = current; // the server already has exactly this (e.g. a redo after a crash)
    } else if (current.kind === 'folder') {
      throw new AppError('NAME_CONFLICT', `A folder named ${rel} exists on the server.`);
    } else {
      return conflict(ctx, rel);
    }
  }
  const { node: after } = await statLocal(ctx.root, rel);
  return afterUpload(ctx, before, after, synced(before, committed, sha256));
}

/** An upload of a batch: the file as read, and its state before the read. */
interface Item {
  op: Operation;
  before: LocalNode;
  file: BatchFile;
  size: number;
}

/**
 * Reads one upload of a batch, or says what else to do with it. Synchronous lstat and
 * read (files of at most 64 KiB): through the thread pool, a batch of 200 queued ~1,000
 * calls behind each other on its 4 threads.
 */
function batchItem(ctx: OperationContext, op: Operation): Item | Outcome {
  const rel = op.path;
  const { node: before } = statLocalSync(ctx.root, rel);
  if (!before || before.kind !== 'file') return { kind: 'done', rescanLocal: [rel] };
  if (Date.now() - before.mtimeMs < ctx.settleMs)
    return { kind: 'later', at: before.mtimeMs + ctx.settleMs + 10 };
  if (before.size > BATCH_FILE_SIZE) return { kind: 'single' };
  const entry = ctx.journal.entry(ctx.folderId, rel);
  // The file as last synced (on the server under `remoteId`), if it was.
  const synced = entry?.kind === 'file' && entry.remoteId ? entry : null;
  if (synced && sameStat(before, synced)) return DONE;
  let bytes: Buffer;
  try {
    ({ bytes } = readSmallFile(absolute(ctx.root, rel), BATCH_FILE_SIZE));
  } catch (err) {
    // Grown past the batch limit since the lstat: still being written.
    if (isCode(err, 'CONFLICT')) return { kind: 'later', at: Date.now() + ctx.settleMs };
    throw err;
  }
  if (bytes.length !== before.size) return { kind: 'later', at: Date.now() + ctx.settleMs };
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (synced?.sha256 === sha256) {
    return {
      kind: 'done',
      entry: { ...synced, size: bytes.length, mtimeMs: before.mtimeMs, ino: before.ino },
    };
  }
  const baseRevision = synced ? synced.remoteRevision : 0;
  return {
    op,
    before,
    size: bytes.length,
    file: { path: ctx.remote.pathOf(rel), bytes, sha256, mtimeMs: before.mtimeMs, baseRevision },
  };
}

/**
 * Uploads many small files in few requests (`POST /api/v1/uploads/batch`, committed by the
 * worker in one transaction) instead of one tus upload each. Every file gets the same
 * checks as `upload`; what a batch cannot settle (a big file, a revision conflict) is
 * answered `single` and runs through `upload` on its own. A request that fails as a whole
 * (server unreachable) fails every operation of it.
 */
export async function uploadMany(ctx: OperationContext, ops: readonly Operation[]): Promise<BatchResult> {
  const out: BatchResult = new Map();
  const done = (op: Operation, outcome: Outcome): void => void out.set(op.id, { outcome });
  const items: Item[] = [];
  for (const op of ops) {
    try {
      const prepared = batchItem(ctx, op);
      if ('file' in prepared) items.push(prepared);
      else done(op, prepared);
    } catch (error) {
      out.set(op.id, { error });
    }
  }
  const committed: Array<{ item: Item; state: JournalEntry }> = [];
  for (const batch of planBatches(items, { maxBytes: BATCH_BYTES })) {
    let answers: UploadBatchFile[];
    try {
      answers = await uploadBatch(
        ctx.remote.client,
        batch.map((i) => i.file),
        { priority: 'bulk' },
      );
    } catch (error) {
      for (const i of batch) out.set(i.op.id, { error });
      continue;
    }
    // The answer names each committed file and revision; an older server's answer has no
    // revision, and the entry is read then (16 at a time).
    await inChunks(batch, 16, async (item, n) => {
      const answer = answers[n];
      try {
        if (answer?.status === 'ready' && answer.fileId) {
          const remote =
            typeof answer.revision === 'number'
              ? { id: answer.fileId, revision: answer.revision }
              : await ctx.remote.file(answer.fileId);
          committed.push({ item, state: synced(item.before, remote, item.file.sha256) });
          return;
        }
        // A conflict (or a folder in the way) is sorted out by the single upload's rules.
        if (answer?.error === 'REVISION_CONFLICT' || answer?.error === 'NAME_CONFLICT')
          return done(item.op, { kind: 'single' });
        const code = isErrorCode(answer?.error) ? answer.error : 'CONFLICT';
        throw new AppError(
          code,
          answer?.message ?? `The batch upload ended ${answer?.status ?? 'without an answer'}.`,
        );
      } catch (error) {
        out.set(item.op.id, { error });
      }
    });
  }
  // Looked at again only now, right before the syncer records the batch: a file written
  // to or deleted while the batch was on its way must not be recorded as synced as it is.
  const after = await Promise.all(committed.map(({ item }) => statLocal(ctx.root, item.op.path)));
  committed.forEach(({ item, state }, i) =>
    done(item.op, afterUpload(ctx, item.before, after[i]?.node ?? null, state)),
  );
  return out;
}

/** The outcome of an upload whose bytes the server committed as `state`, given the file's stat now. */
function afterUpload(
  ctx: OperationContext,
  before: LocalNode,
  after: LocalNode | null,
  state: JournalEntry,
): Outcome {
  // Deleted meanwhile: recorded as uploaded, and the scan that follows plans the deletion.
  if (!after) return { kind: 'done', entry: state, rescanLocal: [before.relPath] };
  // Written to while uploading: what the server has is recorded as the base, and the
  // newer content goes up in another round.
  if (changedSince(before, after)) return { kind: 'later', at: Date.now() + ctx.settleMs, entry: state };
  return { kind: 'done', entry: state };
}

async function inChunks<T>(
  items: readonly T[],
  size: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += size)
    await Promise.all(items.slice(i, i + size).map((item, j) => fn(item, i + j)));
}

/**
 * Both sides changed `rel`: the local file becomes the conflicted copy (uploaded as a
 * new file) and the server's version is downloaded under the original name.
 */
async function conflict(ctx: OperationContext, rel: string): Promise<Outcome> {
  const copy = conflictedCopyPath(rel, new Date(), ctx.host);
  await fs.rename(absolute(ctx.root, rel), absolute(ctx.root, copy));
  ctx.log.warn({ path: rel, copy }, 'conflict: both sides changed the file; keeping both');
  ctx.journal.transaction(() => {
    ctx.journal.deleteEntries(ctx.folderId, rel);
    ctx.journal.enqueue(ctx.folderId, 'upload', copy);
    ctx.journal.enqueue(ctx.folderId, 'download', rel);
  });
  return DONE;
}

/** Characters of paths per `POST /fs/mkdirs` (the server's JSON bodies are at most 1 MB). */
const MKDIRS_CHARS = 256 * 1024;

/**
 * Many `mkdir` operations in few requests (`POST /fs/mkdirs`, each path a `mkdir -p`):
 * each gets the same checks and journal entry as `mkdirRemote`. A path the server refused
 * fails that operation alone; an older server without the route answers every one
 * `single`. A request that fails as a whole fails its operations.
 */
export async function mkdirMany(ctx: OperationContext, ops: readonly Operation[]): Promise<BatchResult> {
  const out: BatchResult = new Map();
  const dirs: Array<{ op: Operation; node: LocalNode; size: number }> = [];
  for (const op of ops) {
    try {
      const { node } = statLocalSync(ctx.root, op.path);
      if (node?.kind === 'dir') dirs.push({ op, node, size: ctx.remote.pathOf(op.path).length + 3 });
      else out.set(op.id, { outcome: { kind: 'done', rescanLocal: [op.path] } });
    } catch (error) {
      out.set(op.id, { error });
    }
  }
  for (const chunk of planBatches(dirs, { maxFiles: MAX_MKDIRS, maxBytes: MKDIRS_CHARS })) {
    let items: MkdirsResponse['items'] | null;
    try {
      items = await ctx.remote.mkdirs(chunk.map((d) => d.op.path));
    } catch (error) {
      for (const { op } of chunk) out.set(op.id, { error });
      continue;
    }
    chunk.forEach(({ op, node }, n) => out.set(op.id, mkdirResult(node, items, n)));
  }
  return out;
}

/** One path's answer of `POST /fs/mkdirs` (`items` null: the server has no such route). */
function mkdirResult(
  node: LocalNode,
  items: MkdirsResponse['items'] | null,
  n: number,
): { outcome: Outcome } | { error: unknown } {
  if (!items) return { outcome: { kind: 'single' } };
  const item = items[n];
  if (item && 'entry' in item) return { outcome: { kind: 'done', entry: synced(node, item.entry, null) } };
  const code = item && isErrorCode(item.error.code) ? item.error.code : 'INTERNAL';
  return { error: new AppError(code, item?.error.message ?? 'The server did not answer for this folder.') };
}

async function mkdirRemote(ctx: OperationContext, rel: string): Promise<Outcome> {
  const { node } = await statLocal(ctx.root, rel);
  if (!node || node.kind !== 'dir') return { kind: 'done', rescanLocal: [rel] };
  const created = await ctx.remote.mkdir(rel);
  return { kind: 'done', entry: synced(node, created, null) };
}

async function deleteRemote(ctx: OperationContext, rel: string): Promise<Outcome> {
  const entry = ctx.journal.entry(ctx.folderId, rel);
  if (!entry) return DONE;
  const { node } = await statLocal(ctx.root, rel);
  // It is back: the scan decides. Back as the other kind (a folder where the synced file
  // was, or the reverse), the synced one is still gone: the new one waits for this.
  if (node && node.kind === entry.kind) return { kind: 'done', rescanLocal: [rel] };
  const current = await ctx.remote.stat(rel);
  if (!current || current.id !== entry.remoteId) {
    ctx.journal.deleteEntries(ctx.folderId, rel);
    return { kind: 'done', rescanRemote: current !== null };
  }
  if (current.kind === 'file' && current.revision !== entry.remoteRevision) {
    // Edited on the server while deleted here: the edit wins and comes back.
    ctx.journal.transaction(() => {
      ctx.journal.deleteEntries(ctx.folderId, rel);
      ctx.journal.enqueue(ctx.folderId, 'download', rel);
    });
    return DONE;
  }
  await ctx.remote.delete(rel);
  ctx.journal.deleteEntries(ctx.folderId, rel);
  return DONE;
}

async function moveRemote(ctx: OperationContext, from: string, to: string): Promise<Outcome> {
  const entry = ctx.journal.entry(ctx.folderId, from);
  const { node } = await statLocal(ctx.root, to);
  if (!entry || !node) return { kind: 'done', rescanLocal: [from, to] };
  try {
    await ctx.remote.move(from, to);
  } catch (err) {
    if (isCode(err, 'NOT_FOUND')) {
      const there = await ctx.remote.stat(to);
      if (!there || there.id !== entry.remoteId) {
        // The source is gone on the server: send `to` as a new item instead.
        ctx.journal.deleteEntries(ctx.folderId, from);
        return { kind: 'done', rescanLocal: [to] };
      }
      // Moved already (a redo after a crash).
    } else if (isCode(err, 'NAME_CONFLICT', 'CONFLICT')) {
      ctx.journal.transaction(() => {
        ctx.journal.enqueue(ctx.folderId, 'delete', from);
        ctx.journal.enqueue(ctx.folderId, node.kind === 'dir' ? 'mkdir' : 'upload', to);
      });
      return { kind: 'done', rescanLocal: [to] };
    } else throw err;
  }
  // The entry keeps its old stat: when the content changed too, the queued upload sees it.
  ctx.journal.renameEntries(ctx.folderId, from, to);
  return { kind: 'done', rescanLocal: [to] };
}

// ---------- server → local ----------

/** Brings the server's version of `rel` here (a file, or a folder for local-mkdir). */
async function download(ctx: OperationContext, rel: string): Promise<Outcome> {
  const current = await ctx.remote.stat(rel);
  if (!current) return DONE; // gone meanwhile; the next remote scan decides
  const entry = ctx.journal.entry(ctx.folderId, rel);
  const { node } = await statLocal(ctx.root, rel);
  // The synced item here was replaced on the server by one of the other kind, and this
  // operation was queued before that: the next remote scan plans the local deletion first.
  // (Thrown as a conflict it retried for ever, and held back that deletion queued after it.)
  const replacedThere =
    node !== null &&
    entry !== null &&
    entry.kind === node.kind &&
    entry.remoteId !== current.id &&
    !sameKind(node.kind, current.kind);
  if (replacedThere) return { kind: 'done', rescanRemote: true };
  if (current.kind === 'folder') {
    if (node && node.kind !== 'dir')
      throw new AppError('CONFLICT', `A local file is in the way of folder ${rel}.`);
    await fs.mkdir(absolute(ctx.root, rel), { recursive: true });
    const { node: made } = await statLocal(ctx.root, rel);
    return made ? { kind: 'done', entry: synced(made, current, null) } : DONE;
  }
  if (current.status !== 'ready' || !current.sha256) return { kind: 'later', at: Date.now() + 1_000 };
  if (node?.kind === 'dir') throw new AppError('CONFLICT', `A local folder is in the way of file ${rel}.`);
  // What `dest` must still be when the download replaces it: this file, or nothing.
  let expected: LocalNode | null = node;
  if (node) {
    if (
      entry &&
      entry.remoteId === current.id &&
      entry.remoteRevision === current.revision &&
      entry.sha256 === current.sha256
    ) {
      return DONE; // already have it (our own change coming back)
    }
    if (!entry || !sameStat(node, entry)) {
      const { sha256 } = await sha256File(absolute(ctx.root, rel));
      if (sha256 === current.sha256) return { kind: 'done', entry: synced(node, current, sha256) };
      if (!entry || sha256 !== entry.sha256) {
        // Changed here too (or new on both sides): keep both.
        const copy = conflictedCopyPath(rel, new Date(), ctx.host);
        await fs.rename(absolute(ctx.root, rel), absolute(ctx.root, copy));
        ctx.log.warn({ path: rel, copy }, 'conflict: both sides changed the file; keeping both');
        ctx.journal.enqueue(ctx.folderId, 'upload', copy);
        expected = null;
      }
    }
  }
  let landed: Landed;
  try {
    ({ landed } = await downloadFile(ctx.remote.client, {
      fileId: current.id as string,
      sha256: current.sha256,
      size: current.size,
      dest: absolute(ctx.root, rel),
      mtime: current.mtime,
      beforeReplace: async () => {
        const { node: now } = await statLocal(ctx.root, rel);
        if (!sameNode(now, expected)) throw new ChangedHere();
      },
    }));
  } catch (err) {
    if (!(err instanceof ChangedHere)) throw err;
    // Written to during the transfer: look again once it settles (an edit here becomes
    // a conflicted copy then); the verified partial is reused.
    ctx.log.debug({ path: rel }, 'changed here during the download; later');
    return { kind: 'later', at: Date.now() + ctx.settleMs };
  }
  // The journal records the bytes this download wrote (their inode, size and mtime), not
  // whatever is at `rel` by now: renamed at once, the file is then seen as moved; edited
  // at once, as changed.
  return {
    kind: 'done',
    entry: synced({ relPath: rel, kind: 'file', ...landed }, current, current.sha256),
  };
}

/** The local file replaced by a download changed during it. */
class ChangedHere extends Error {}

const sameNode = (a: LocalNode | null, b: LocalNode | null): boolean =>
  a === null || b === null ? a === b : sameStat(a, b);

/** Keeps a local file that the server deleted in the daemon's trash (never unlinked). */
async function toTrash(ctx: OperationContext, rel: string): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dest = path.join(ctx.trashDir, stamp, ...rel.split('/'));
  await fs.mkdir(path.dirname(dest), { recursive: true });
  try {
    await fs.rename(absolute(ctx.root, rel), dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fs.cp(absolute(ctx.root, rel), dest, { recursive: true, preserveTimestamps: true });
    await fs.rm(absolute(ctx.root, rel), { recursive: true, force: true });
  }
}

/**
 * The server deleted `rel`. Unchanged local files go to the trash; a file changed here
 * since the last sync stays and is uploaded again (an edit beats a delete).
 */
async function deleteLocal(ctx: OperationContext, rel: string): Promise<Outcome> {
  const entry = ctx.journal.entry(ctx.folderId, rel);
  if (!entry) return DONE;
  const current = await ctx.remote.stat(rel);
  if (current && current.id === entry.remoteId) return DONE; // restored meanwhile
  const { node } = await statLocal(ctx.root, rel);
  if (!node) {
    ctx.journal.deleteEntries(ctx.folderId, rel);
    return DONE;
  }
  if (node.kind === 'file') {
    if (sameStat(node, entry)) await toTrash(ctx, rel);
    ctx.journal.deleteEntries(ctx.folderId, rel);
    return { kind: 'done', rescanLocal: [rel] };
  }
  const entries = ctx.journal.entriesUnder(ctx.folderId, rel).reverse(); // children before parents
  for (const e of entries) {
    const { node: n } = await statLocal(ctx.root, e.relPath);
    if (!n) continue;
    if (n.kind === 'file' && sameStat(n, e)) await toTrash(ctx, e.relPath);
    if (n.kind === 'dir') await fs.rmdir(absolute(ctx.root, e.relPath)).catch(() => undefined);
  }
  ctx.journal.deleteEntries(ctx.folderId, rel);
  return { kind: 'done', rescanLocal: [rel] };
}

/** The server moved `from` to `to`: rename here when the local item is unchanged, else fetch `to`. */
async function moveLocal(ctx: OperationContext, from: string, to: string): Promise<Outcome> {
  const entry = ctx.journal.entry(ctx.folderId, from);
  const { node } = await statLocal(ctx.root, from);
  const { node: target } = await statLocal(ctx.root, to);
  if (!entry || !node || target || (node.kind === 'file' && !sameStat(node, entry))) {
    if (entry) ctx.journal.deleteEntries(ctx.folderId, from);
    return { kind: 'done', rescanLocal: [from], rescanRemote: true };
  }
  await fs.mkdir(path.dirname(absolute(ctx.root, to)), { recursive: true });
  await fs.rename(absolute(ctx.root, from), absolute(ctx.root, to));
  ctx.journal.renameEntries(ctx.folderId, from, to);
  return { kind: 'done', rescanRemote: true };
}
