import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { readSmallFile } from './small-file.js';

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

describe('readSmallFile', () => {
  it('returns the bytes and mtime, refuses a file over the limit with CONFLICT, and passes other errors on', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-read-'));
    roots.push(root);
    const file = path.join(root, 'f.bin');
    await fs.writeFile(file, Buffer.from('hello'));
    const when = new Date('2026-01-02T03:04:05.678Z');
    await fs.utimes(file, when, when);
    const read = readSmallFile(file, 5);
    expect(read.bytes.toString()).toBe('hello');
    expect(Math.round(read.mtimeMs)).toBe(when.getTime());
    let error: unknown;
    try {
      readSmallFile(file, 4);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('CONFLICT');
    expect(() => readSmallFile(path.join(root, 'missing'), 5)).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
  });
});
