import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IgnoreRules } from './ignore.js';
import { Journal } from './journal.js';
import { Scanner } from './scanner.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A watched folder of `count` synced files (f0.txt …), the journal knowing each as it is. */
function syncedFolder(count: number): { root: string; journal: Journal; folderId: number; scanner: Scanner } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-scanner-'));
  dirs.push(dir);
  const root = path.join(dir, 'watched');
  fs.mkdirSync(root);
  const journal = Journal.open(path.join(dir, 'journal.db'));
  const folderId = journal.folder(root, '/sync', 'acct').id;
  for (let i = 0; i < count; i++) {
    const file = path.join(root, `f${i}.txt`);
    fs.writeFileSync(file, `file ${i}`);
    const st = fs.statSync(file);
    journal.putEntry(folderId, {
      relPath: `f${i}.txt`,
      kind: 'file',
      size: st.size,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      sha256: null,
      remoteId: `id-${i}`,
      remoteRevision: 1,
    });
  }
  return { root, journal, folderId, scanner: new Scanner(root, folderId, journal, new IgnoreRules(root)) };
}

describe('Scanner: deletions for the mass-delete guard', () => {
  it('reports the deletions an earlier batch queued, not run yet, beside this batch’s', async () => {
    const { root, journal, folderId, scanner } = syncedFolder(10);
    const removed = (from: number, to: number): string[] => {
      const paths: string[] = [];
      for (let i = from; i < to; i++) {
        fs.rmSync(path.join(root, `f${i}.txt`));
        paths.push(`f${i}.txt`);
      }
      return paths;
    };
    const first = await scanner.scan(removed(0, 4));
    expect(first).toMatchObject({ deletedFiles: 4, queuedDeletedFiles: 0 });
    for (const op of first.ops) journal.enqueue(folderId, op.op, op.path, op.toPath ?? null);

    // The rest of the same `rm` arrives as the next batch: one mass delete of 8.
    const second = await scanner.scan(removed(4, 8));
    expect(second.ops.map((o) => o.path)).toEqual(['f4.txt', 'f5.txt', 'f6.txt', 'f7.txt']);
    expect(second).toMatchObject({ deletedFiles: 4, queuedDeletedFiles: 4 });

    // A batch without deletions reports none, whatever is queued.
    fs.writeFileSync(path.join(root, 'new.txt'), 'new');
    expect(await scanner.scan(['new.txt'])).toMatchObject({ deletedFiles: 0, queuedDeletedFiles: 0 });
    // Once the queued deletions ran (their entries gone), they no longer count.
    for (const op of journal.pendingOpsOf(folderId, 'delete')) {
      journal.deleteEntries(folderId, op.path);
      journal.completeOp(op.id);
    }
    expect(await scanner.scan(removed(8, 9))).toMatchObject({ deletedFiles: 1, queuedDeletedFiles: 0 });
    journal.close();
  });
});

describe('Scanner: names that differ only in case', () => {
  const ops = (plan: { ops: Array<{ op: string; path: string; toPath?: string | null }> }): string[] =>
    plan.ops.map((o) => `${o.op} ${o.path}${o.toPath ? ` → ${o.toPath}` : ''}`);

  it('syncs one of two new twins (the first in code-point order, every time) and reports the other', async () => {
    const { root, scanner } = syncedFolder(0);
    fs.writeFileSync(path.join(root, 'a.txt'), 'lower');
    fs.writeFileSync(path.join(root, 'A.txt'), 'upper');
    fs.mkdirSync(path.join(root, 'Docs'));
    fs.writeFileSync(path.join(root, 'Docs', 'x.txt'), 'x');
    fs.mkdirSync(path.join(root, 'docs'));
    fs.writeFileSync(path.join(root, 'docs', 'y.txt'), 'y');
    for (const paths of [null, ['a.txt', 'A.txt', 'docs/y.txt', 'Docs/x.txt']]) {
      const plan = await scanner.scan(paths);
      expect(ops(plan)).toEqual(['mkdir Docs', 'upload A.txt', 'upload Docs/x.txt']);
      expect([...plan.skipped.keys()].sort()).toEqual(['a.txt', 'docs']);
      expect(plan.skipped.get('a.txt')).toMatch(/"A\.txt".*unique ignoring case/);
    }
  });

  it('keeps the synced twin and reports a new one, from a full scan and from its own event', async () => {
    const { root, scanner } = syncedFolder(2);
    fs.writeFileSync(path.join(root, 'F1.TXT'), 'a twin of a synced file');
    for (const paths of [null, ['F1.TXT']]) {
      const plan = await scanner.scan(paths);
      expect(ops(plan)).toEqual([]);
      expect([...plan.skipped.keys()]).toEqual(['F1.TXT']);
      expect(plan.skipped.get('F1.TXT')).toMatch(/"f1\.txt"/);
    }
  });

  it('syncs a held-back twin as soon as its synced rival is deleted, from that deletion alone', async () => {
    const { root, scanner } = syncedFolder(2);
    fs.writeFileSync(path.join(root, 'F1.TXT'), 'a twin of a synced file');
    expect([...(await scanner.scan(['F1.TXT'])).skipped.keys()]).toEqual(['F1.TXT']);
    fs.rmSync(path.join(root, 'f1.txt'));
    const plan = await scanner.scan(['f1.txt']);
    expect(ops(plan)).toEqual(['delete f1.txt', 'upload F1.TXT']);
    expect(plan.skipped.size).toBe(0);
  });

  it('still renames a synced file to a name that differs only in case', async () => {
    const { root, scanner } = syncedFolder(2);
    fs.renameSync(path.join(root, 'f1.txt'), path.join(root, 'F1.txt'));
    for (const paths of [null, ['f1.txt', 'F1.txt']]) {
      const plan = await scanner.scan(paths);
      expect(ops(plan)).toEqual(['move f1.txt → F1.txt']);
      expect(plan.skipped.size).toBe(0);
    }
  });
});

describe('Scanner: a path that changed kind', () => {
  it('deletes the synced file before the folder now in its place, and the synced folder before the file', async () => {
    const { root, journal, folderId, scanner } = syncedFolder(2);
    // f0.txt becomes a folder with a file in it.
    fs.rmSync(path.join(root, 'f0.txt'));
    fs.mkdirSync(path.join(root, 'f0.txt'));
    fs.writeFileSync(path.join(root, 'f0.txt', 'inner.txt'), 'inner');
    // A synced folder `dir` (with dir/a.txt) becomes a file.
    journal.putEntry(folderId, {
      relPath: 'dir',
      kind: 'dir',
      size: 0,
      mtimeMs: 1,
      ino: 1,
      sha256: null,
      remoteId: 'id-dir',
      remoteRevision: 0,
    });
    journal.putEntry(folderId, {
      relPath: 'dir/a.txt',
      kind: 'file',
      size: 1,
      mtimeMs: 1,
      ino: 2,
      sha256: null,
      remoteId: 'id-a',
      remoteRevision: 1,
    });
    fs.writeFileSync(path.join(root, 'dir'), 'now a file');
    const plan = await scanner.scan(null);
    expect(plan.ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'delete dir',
      'delete f0.txt',
      'mkdir f0.txt',
      'upload dir',
      'upload f0.txt/inner.txt',
    ]);
    expect(plan.deletedFiles).toBe(2); // f0.txt and dir/a.txt, for the mass-delete guard
  });
});
