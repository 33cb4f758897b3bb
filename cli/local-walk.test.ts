import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { walkLocal } from './local-walk.js';

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

describe('walkLocal', () => {
  it('lists every regular file with its size, folder by folder in name order, and skips links and special files', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-walk-'));
    roots.push(root);
    await fs.mkdir(path.join(root, 'b', 'deep'), { recursive: true });
    await fs.mkdir(path.join(root, 'a'));
    await fs.writeFile(path.join(root, 'z.txt'), 'zz');
    await fs.writeFile(path.join(root, 'a', '2.txt'), '22');
    await fs.writeFile(path.join(root, 'a', '1.txt'), '1');
    await fs.writeFile(path.join(root, 'b', 'deep', 'x.bin'), Buffer.alloc(300));
    await fs.symlink(path.join(root, 'z.txt'), path.join(root, 'link.txt'));
    await fs.symlink(root, path.join(root, 'b', 'loop'));
    execFileSync('mkfifo', [path.join(root, 'pipe')]);

    const walked = await walkLocal(root);
    expect(walked.files.map((f) => [f.relative, f.size])).toEqual([
      ['z.txt', 2],
      ['a/1.txt', 1],
      ['a/2.txt', 2],
      ['b/deep/x.bin', 300],
    ]);
    expect(walked.files[0]?.absolute).toBe(path.join(root, 'z.txt'));
    expect(walked.files.every((f) => f.mtimeMs > 0)).toBe(true);
    expect(walked.skipped.map((s) => [path.relative(root, s.path), s.reason]).sort()).toEqual([
      ['b/loop', 'symlink'],
      ['link.txt', 'symlink'],
      ['pipe', 'special file'],
    ]);
  });

  it('reports a folder it cannot read and goes on', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-walk-'));
    roots.push(root);
    await fs.writeFile(path.join(root, 'ok.txt'), 'ok');
    const walked = await walkLocal(path.join(root, 'missing'));
    expect(walked.files).toEqual([]);
    expect(walked.skipped).toEqual([{ path: path.join(root, 'missing'), reason: 'ENOENT' }]);
    expect((await walkLocal(root)).files.map((f) => f.relative)).toEqual(['ok.txt']);
  });
});
