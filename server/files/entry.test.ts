import { describe, expect, it } from 'vitest';
import type { EntryField } from '../../contract/schemas/files.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { pickEntry, toEntry } from './entry.js';

const node: TreeNode = {
  id: '0190a000-0000-7000-8000-000000000001',
  ownerId: 'owner',
  parentId: null,
  name: 'report.pdf',
  kind: 'file',
  size: 1234,
  sha256: 'a'.repeat(64),
  mediaType: 'application/pdf',
  mtime: 1_700_000_000_000,
  revision: 3,
  status: 'ready',
  trashedAt: null,
  createdAt: new Date('2026-01-02T03:04:05.678Z'),
  updatedAt: new Date('2026-02-03T04:05:06.789Z'),
};

describe('pickEntry', () => {
  it('writes exactly what JSON.stringify(toEntry(...), keys) wrote: those fields, in that order, once each', () => {
    const lists: EntryField[][] = [
      ['path', 'kind', 'size', 'sha256', 'mtime'],
      ['path', 'updatedAt', 'id', 'trashedAt'],
      ['path', 'size', 'size', 'name', 'path'],
      ['path', ...(Object.keys(toEntry(node, '/x')) as EntryField[])],
    ];
    for (const keys of lists)
      expect(JSON.stringify(pickEntry(node, '/docs/report.pdf', keys))).toBe(
        JSON.stringify(toEntry(node, '/docs/report.pdf'), keys),
      );
  });
});
