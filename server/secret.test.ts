import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JWT_SECRET_FILE, resolveJwtSecret } from './secret.js';

describe('resolveJwtSecret', () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'aio-secret-')), 'data');
  });

  afterEach(async () => {
    await fs.rm(path.dirname(dataDir), { recursive: true, force: true });
  });

  it('uses AIO_JWT_SECRET when it is set and writes no file', async () => {
    const secret = await resolveJwtSecret({ dataDir, jwtSecret: 'x'.repeat(40) });
    expect(Buffer.from(secret).toString('utf8')).toBe('x'.repeat(40));
    await expect(fs.stat(path.join(dataDir, JWT_SECRET_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('generates a 256-bit secret in a 0600 file and returns the same one on later calls', async () => {
    const first = await resolveJwtSecret({ dataDir, jwtSecret: undefined });
    expect(first.length).toBe(32);
    const file = path.join(dataDir, JWT_SECRET_FILE);
    const stat = await fs.stat(file);
    expect(stat.mode & 0o777).toBe(0o600);
    const second = await resolveJwtSecret({ dataDir, jwtSecret: undefined });
    expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
    expect((await fs.readdir(dataDir)).sort()).toEqual([JWT_SECRET_FILE]);
  });

  it('gives every one of several concurrent callers the same secret', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => resolveJwtSecret({ dataDir, jwtSecret: undefined })),
    );
    const first = Buffer.from(results[0] as Uint8Array);
    for (const r of results) expect(Buffer.from(r).equals(first)).toBe(true);
    expect(await fs.readdir(dataDir)).toEqual([JWT_SECRET_FILE]);
  });

  it('refuses a file that does not hold a valid secret instead of replacing it', async () => {
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(path.join(dataDir, JWT_SECRET_FILE), 'short\n');
    await expect(resolveJwtSecret({ dataDir, jwtSecret: undefined })).rejects.toThrow(
      /does not hold a valid secret/,
    );
    expect(await fs.readFile(path.join(dataDir, JWT_SECRET_FILE), 'utf8')).toBe('short\n');
  });
});
