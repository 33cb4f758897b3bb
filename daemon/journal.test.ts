import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal, type JournalEntry } from './journal.js';

const dirs: string[] = [];
function open(): { journal: Journal; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-journal-'));
  dirs.push(dir);
  const file = path.join(dir, 'journal.db');
  return { journal: Journal.open(file), file };
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const entry = (relPath: string, kind: 'file' | 'dir' = 'file'): JournalEntry => ({
  relPath,
  kind,
  size: 1,
  mtimeMs: 1,
  ino: 1,
  sha256: kind === 'file' ? 'ab' : null,
  remoteId: `id-${relPath}`,
  remoteRevision: 1,
});

describe('Journal', () => {
  it('keeps queued operations and synced entries across a reopen', () => {
    const { journal, file } = open();
    const folder = journal.folder('/l', '/r', 'acct');
    journal.putEntry(folder.id, entry('a.txt'));
    expect(journal.enqueue(folder.id, 'upload', 'b.txt')).toBe(true);
    expect(journal.enqueue(folder.id, 'upload', 'b.txt')).toBe(false);
    journal.close();
    const again = Journal.open(file);
    const same = again.folder('/l', '/r', 'acct');
    expect(same.id).toBe(folder.id);
    expect(again.entry(same.id, 'a.txt')?.remoteId).toBe('id-a.txt');
    expect(again.pendingOps(same.id).map((o) => o.path)).toEqual(['b.txt']);
    again.close();
  });

  it('renames and deletes a folder together with its descendants only', () => {
    const { journal } = open();
    const { id } = journal.folder('/l', '/r', 'acct');
    for (const p of ['a', 'a/x', 'a/y/z', 'ab', 'b'])
      journal.putEntry(id, entry(p, p === 'a' ? 'dir' : 'file'));
    journal.renameEntries(id, 'a', 'c');
    expect(journal.entriesUnder(id, '').map((e) => e.relPath)).toEqual(['ab', 'b', 'c', 'c/x', 'c/y/z']);
    journal.deleteEntries(id, 'c');
    expect(journal.entriesUnder(id, '').map((e) => e.relPath)).toEqual(['ab', 'b']);
    journal.close();
  });

  it('takes a path and its descendants only, not names that merely start with it', () => {
    const { journal } = open();
    const { id } = journal.folder('/l', '/r', 'acct');
    const other = journal.folder('/l2', '/r2', 'acct').id;
    // '-', '.', ' ' sort before '/', '0' and 'b' after it: all are neighbours of 'a/…'.
    const paths = ['a', 'a b', 'a-x', 'a.txt', 'a/b', 'a/c/d', 'a0', 'ab', 'b'];
    for (const p of paths) journal.putEntry(id, entry(p));
    journal.putEntry(other, entry('a/b'));
    expect(journal.entriesUnder(id, 'a').map((e) => e.relPath)).toEqual(['a', 'a/b', 'a/c/d']);
    expect(journal.entriesUnder(id, 'a/c').map((e) => e.relPath)).toEqual(['a/c/d']);
    const seen: string[] = [];
    journal.eachEntryUnder(id, 'a.txt', (e) => seen.push(e.relPath));
    expect(seen).toEqual(['a.txt']);
    expect(journal.entriesUnder(id, '').map((e) => e.relPath)).toEqual(paths);
    journal.deleteEntries(id, 'a');
    expect(journal.entriesUnder(id, '').map((e) => e.relPath)).toEqual([
      'a b',
      'a-x',
      'a.txt',
      'a0',
      'ab',
      'b',
    ]);
    expect(journal.entriesUnder(other, '').map((e) => e.relPath)).toEqual(['a/b']);
    journal.close();
  });

  it('starts a folder over when its remote path or account changes', () => {
    const { journal } = open();
    const first = journal.folder('/l', '/r', 'acct');
    journal.putEntry(first.id, entry('a.txt'));
    journal.setCursor(first.id, 7);
    const moved = journal.folder('/l', '/elsewhere', 'acct');
    expect(journal.entriesUnder(moved.id, '')).toEqual([]);
    expect(journal.cursor(moved.id)).toBeNull();
    journal.close();
  });
});
