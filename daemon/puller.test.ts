import { describe, expect, it } from 'vitest';
import type { Entry } from '../contract/schemas/files.js';
import type { JournalEntry } from './journal.js';
import { planRemote } from './puller.js';

const remote = (path: string, id: string, kind: 'file' | 'folder'): [string, Entry] => [
  path,
  {
    id,
    name: path.split('/').pop() as string,
    path: `/sync/${path}`,
    parentId: null,
    kind,
    size: kind === 'file' ? 1 : 0,
    sha256: kind === 'file' ? 'a'.repeat(64) : null,
    mtime: 1,
    revision: kind === 'file' ? 1 : 0,
    status: 'ready',
    mediaType: null,
    trashedAt: null,
    createdAt: '2026-12-06T00:00:00.000Z',
    updatedAt: '2026-12-06T00:00:00.000Z',
  } as Entry,
];

const synced = (relPath: string, remoteId: string, kind: 'file' | 'dir'): JournalEntry => ({
  relPath,
  kind,
  size: kind === 'file' ? 1 : 0,
  mtimeMs: 1,
  ino: 1,
  sha256: kind === 'file' ? 'b'.repeat(64) : null,
  remoteId,
  remoteRevision: kind === 'file' ? 1 : 0,
});

describe('planRemote', () => {
  it('removes the local item first when the server put the other kind at its path', () => {
    const entries = [
      synced('x', 'old-x', 'file'),
      synced('y', 'old-y', 'dir'),
      synced('y/in.txt', 'old-in', 'file'),
    ];
    const tree = new Map([
      remote('x', 'new-x', 'folder'),
      remote('x/inner.txt', 'new-inner', 'file'),
      remote('y', 'new-y', 'file'),
    ]);
    expect(planRemote(tree, entries).map((p) => `${p.op} ${p.path}`)).toEqual([
      'local-delete x',
      'local-delete y',
      'local-mkdir x',
      'download y',
      'download x/inner.txt',
    ]);
  });
});
