/**
 * The daemon's batched `mkdir` (`POST /fs/mkdirs`) against a real server: every folder of
 * a new tree in one request, each operation with its own outcome (the entry it recorded,
 * a refusal of its own, a local folder gone meanwhile), and an older server without the
 * route answering every operation `single`, so they run one by one as before.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../contract/errors.js';
import type { Entry } from '../contract/schemas/files.js';
import { createFilesTestApp, putFile, type FilesTestApp } from '../test/fs-helpers.js';
import { createTestUser, type TestUser } from '../test/helpers/app.js';
import { opFolder } from '../test/helpers/op-context.js';
import { serveForUser, type Served } from '../test/helpers/serve.js';
import type { Operation } from './journal.js';
import { mkdirMany, type OperationContext } from './operations.js';

let f: FilesTestApp;
let user: TestUser;
let served: Served;
/** The same server without `/fs/mkdirs`, as a server from before it answers. */
let older: Served;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  f = await createFilesTestApp();
  user = await createTestUser(f.t);
  served = await serveForUser(f.app, user);
  const withoutRoute: http.RequestListener = (req, res) => {
    if (req.url?.startsWith('/api/v1/fs/mkdirs')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(new AppError('ROUTE_NOT_FOUND').toBody()));
      return;
    }
    f.app(req, res);
  };
  older = await serveForUser(withoutRoute, user);
});
afterAll(async () => {
  await served?.close();
  await older?.close();
  await f?.t.close();
});
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const folder = (remoteRoot: string, via: Served): { root: string; ctx: OperationContext } =>
  opFolder(remoteRoot, via.client, cleanups);

const mkdirOps = (paths: string[]): Operation[] =>
  paths.map((p, i) => ({
    id: i + 1,
    folderId: 1,
    op: 'mkdir',
    path: p,
    toPath: null,
    attempts: 0,
    nextAttemptAt: 0,
    lastError: null,
    createdAt: Date.now(),
  }));

async function stat(remotePath: string): Promise<Entry> {
  return served.client.get<Entry>('/api/v1/fs/stat', { searchParams: { path: remotePath } });
}

describe('daemon mkdir operations in one request', () => {
  it('makes every folder of a new tree and records each with its remote id', async () => {
    const { root, ctx } = folder('/tree', served);
    const made = ['a', 'a/b', 'a/b/c', ...Array.from({ length: 30 }, (_, i) => `s${i}`)];
    for (const p of made) fs.mkdirSync(path.join(root, p), { recursive: true });
    fs.writeFileSync(path.join(root, 'now-a-file'), 'x'); // was a folder when queued
    fs.mkdirSync(path.join(root, 'taken'));
    await putFile(f.t, user, '/tree/taken', 'a file on the server');
    const ops = mkdirOps([...made, 'now-a-file', 'gone', 'taken']);

    const results = await mkdirMany(ctx, ops);

    expect(results.size).toBe(ops.length);
    for (const op of ops.slice(0, made.length)) {
      const result = results.get(op.id);
      const remote = await stat(`/tree/${op.path}`);
      expect(result).toEqual({
        outcome: {
          kind: 'done',
          entry: expect.objectContaining({ relPath: op.path, kind: 'dir', remoteId: remote.id }),
        },
      });
    }
    const byPath = new Map(ops.map((op) => [op.path, results.get(op.id)]));
    expect(byPath.get('now-a-file')).toEqual({ outcome: { kind: 'done', rescanLocal: ['now-a-file'] } });
    expect(byPath.get('gone')).toEqual({ outcome: { kind: 'done', rescanLocal: ['gone'] } });
    const refused = byPath.get('taken');
    expect(refused && 'error' in refused && refused.error).toMatchObject({ code: 'NAME_CONFLICT' });
    await expect(stat('/tree/now-a-file')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('answers every operation single when the server has no /fs/mkdirs', async () => {
    const { root, ctx } = folder('/old', older);
    fs.mkdirSync(path.join(root, 'x'));
    fs.mkdirSync(path.join(root, 'y'));
    const ops = mkdirOps(['x', 'y']);

    const results = await mkdirMany(ctx, ops);

    expect([...results.values()]).toEqual([{ outcome: { kind: 'single' } }, { outcome: { kind: 'single' } }]);
    await expect(stat('/old/x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
