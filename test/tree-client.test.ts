/**
 * The remote tree as clients read it (`contract/tree-client.ts`), over real HTTP: in one
 * request from `GET /fs/tree`, and folder by folder from a server that has no such
 * endpoint (an older one: here the same app behind a 404 for that path). `aio sync` and
 * the daemon's two-way folders both rely on the two giving the same tree.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../contract/client.js';
import type { Entry } from '../contract/schemas/files.js';
import { fetchTree, relativeTo } from '../contract/tree-client.js';
import { RemoteFolder } from '../daemon/remote.js';
import { createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';

let f: FilesTestApp;
let user: TestUser;
const servers: http.Server[] = [];

async function serve(app: express.Express | http.RequestListener): Promise<ApiClient> {
  const server = http.createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return new ApiClient(`http://127.0.0.1:${port}`, {
    current: async () => user.accessToken,
    refresh: async () => null,
  });
}

beforeAll(async () => {
  f = await createFilesTestApp();
  user = await createTestUser(f.t);
  await putFile(f.t, user, '/root/a.txt', 'a');
  await putFile(f.t, user, '/root/sub/b.txt', 'bb');
  await putFile(f.t, user, '/root/sub/deep/c.txt', 'ccc');
  await putFile(f.t, user, '/other/x.txt', 'x');
});
afterAll(async () => {
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  await f?.t.close();
});

const expected = ['a.txt', 'sub', 'sub/b.txt', 'sub/deep', 'sub/deep/c.txt'];

describe('fetchTree', () => {
  it('reads every entry below a folder, with only the fields asked for, or null for a missing folder', async () => {
    const client = await serve(f.app);
    const tree = await fetchTree(client, '/root', ['kind', 'size']);
    expect(tree?.path).toBe('/root');
    const rel = (tree?.entries ?? []).map((e) => relativeTo('/root', e.path)).sort();
    expect(rel).toEqual(expected);
    expect(tree?.entries.find((e) => e.path === '/root/sub/deep/c.txt')).toEqual({
      path: '/root/sub/deep/c.txt',
      kind: 'file',
      size: 3,
    });
    expect(await fetchTree(client, '/nope')).toBeNull();
    expect(() => relativeTo('/root', '/other/x.txt')).toThrow(/listed \/other\/x.txt under \/root/);
  });
});

describe('RemoteFolder.listTree', () => {
  it('gives the same tree from GET /fs/tree as folder by folder from a server without it', async () => {
    const withTree = await serve(f.app);
    const older = express();
    older.get('/api/v1/fs/tree', (_req, res) => {
      res.status(404).json({ error: { code: 'NOT_FOUND', message: 'No such route.' } });
    });
    older.use(f.app);
    const withoutTree = await serve(older);

    const one = await new RemoteFolder(withTree, '/root').listTree();
    const walked = await new RemoteFolder(withoutTree, '/root').listTree();
    expect([...one.keys()].sort()).toEqual(expected);
    const byPath = (m: Map<string, Entry>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(byPath(one)).toEqual(byPath(walked));
    expect(one.get('sub/deep/c.txt')).toMatchObject({ kind: 'file', size: 3, revision: 1 });
    // A missing root is an empty tree, both ways.
    expect((await new RemoteFolder(withTree, '/missing').listTree()).size).toBe(0);
    expect((await new RemoteFolder(withoutTree, '/missing').listTree()).size).toBe(0);
  });
});
