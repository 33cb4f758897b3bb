import { Readable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Entry, EntryPage } from '../contract/schemas/files.js';
import { binaryParser, createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';

let f: FilesTestApp;
let user: TestUser;

beforeAll(async () => {
  f = await createFilesTestApp();
  user = await createTestUser(f.t);
});
afterAll(async () => {
  await f?.t.close();
});

const get = (url: string, u: TestUser = user) => request(f.app).get(url).set(u.headers);
const post = (url: string, body: object, u: TestUser = user) =>
  request(f.app).post(url).set(u.headers).send(body);

async function listAll(path: string, query = ''): Promise<Entry[]> {
  const items: Entry[] = [];
  let cursor: string | null = null;
  do {
    const q: string = `path=${encodeURIComponent(path)}&limit=2${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await get(`/api/v1/fs/list?${q}`).expect(200);
    const page = res.body as EntryPage;
    expect(page.items.length).toBeLessThanOrEqual(2);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return items;
}

describe('listing', () => {
  beforeAll(async () => {
    await putFile(f.t, user, '/list/b.txt', 'bbbbbbbbbb', { mtime: 3000 });
    await putFile(f.t, user, '/list/A.txt', 'a', { mtime: 1000 });
    await putFile(f.t, user, '/list/c.txt', 'ccccc', { mtime: 2000 });
    await post('/api/v1/fs/mkdir', { path: '/list/sub' }).expect(201);
  });

  it('pages through a folder by name, case-insensitively, with paths and metadata', async () => {
    const items = await listAll('/list');
    expect(items.map((e) => e.name)).toEqual(['A.txt', 'b.txt', 'c.txt', 'sub']);
    const b = items.find((e) => e.name === 'b.txt') as Entry;
    expect(b).toMatchObject({
      path: '/list/b.txt',
      kind: 'file',
      size: 10,
      mtime: 3000,
      revision: 1,
      status: 'ready',
    });
    expect(b.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(items.find((e) => e.name === 'sub')).toMatchObject({ kind: 'folder', size: 0 });
  });

  it('sorts by size and by mtime in both orders', async () => {
    expect((await listAll('/list', '&sort=size&order=desc')).map((e) => e.name)).toEqual([
      'b.txt',
      'c.txt',
      'A.txt',
      'sub',
    ]);
    expect((await listAll('/list', '&sort=mtime&order=asc')).map((e) => e.name)).toEqual([
      'sub',
      'A.txt',
      'c.txt',
      'b.txt',
    ]);
  });

  it('lists the root by default and stats paths and the root', async () => {
    const root = await get('/api/v1/fs/list').expect(200);
    expect((root.body as EntryPage).items.map((e) => e.name)).toContain('list');
    const stat = await get('/api/v1/fs/stat?path=/list/c.txt').expect(200);
    expect(stat.body).toMatchObject({ name: 'c.txt', path: '/list/c.txt', size: 5 });
    const rootStat = await get('/api/v1/fs/stat?path=/').expect(200);
    expect(rootStat.body).toMatchObject({ id: null, path: '/', kind: 'folder' });
    await get('/api/v1/fs/stat?path=/list/nope').expect(404);
  });

  it('answers 409 for listing a file and 400 for a cursor of another sort', async () => {
    await get('/api/v1/fs/list?path=/list/c.txt').expect(409);
    const first = await get('/api/v1/fs/list?path=/list&limit=1').expect(200);
    const cursor = (first.body as EntryPage).nextCursor as string;
    await get(`/api/v1/fs/list?path=/list&sort=size&cursor=${encodeURIComponent(cursor)}`).expect(400);
  });

  it('refuses a request without a token and a read-only route without scope write', async () => {
    await request(f.app).get('/api/v1/fs/list').expect(401);
  });
});

describe('tree', () => {
  const tree = async (
    path: string,
    u: TestUser = user,
    query = '',
  ): Promise<{ entries: Entry[]; end: unknown }> => {
    const res = await get(`/api/v1/fs/tree?path=${encodeURIComponent(path)}${query}`, u)
      .buffer(true)
      .parse(binaryParser)
      .expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = (res.body as Buffer).toString('utf8').trimEnd().split('\n');
    const end: unknown = JSON.parse(lines.pop() as string);
    return { entries: lines.map((l) => JSON.parse(l) as Entry), end };
  };

  beforeAll(async () => {
    await putFile(f.t, user, '/tree/a.txt', 'a');
    await putFile(f.t, user, '/tree/sub/b.txt', 'bb');
    await putFile(f.t, user, '/tree/sub/deep/c.txt', 'ccc');
    await post('/api/v1/fs/mkdir', { path: '/tree/empty' }).expect(201);
    // More children than one page of the walk (1,000).
    const bytes = Buffer.from('x');
    const parentId = (await get('/api/v1/fs/stat?path=/tree/sub').expect(200)).body.id as string;
    for (let i = 0; i < 1005; i++) {
      const { sha256, size } = await f.t.deps.blobs.put(Readable.from([bytes]));
      await f.t.deps.metadata.commitFile({
        ownerId: user.id,
        parentId,
        name: `m${String(i).padStart(4, '0')}.txt`,
        sha256,
        size,
        mtime: null,
        mediaType: 'text/plain',
        sourceId: `tree:${i}`,
      });
    }
  });

  it('streams every entry below a folder, folders before their contents, then an end line with the count', async () => {
    const { entries, end } = await tree('/tree');
    expect(end).toEqual({ end: true, count: entries.length, path: '/tree' });
    expect(entries).toHaveLength(4 + 2 + 1005);
    const paths = entries.map((e) => e.path);
    expect(new Set(paths).size).toBe(paths.length);
    for (const p of [
      '/tree/a.txt',
      '/tree/sub',
      '/tree/empty',
      '/tree/sub/b.txt',
      '/tree/sub/deep',
      '/tree/sub/deep/c.txt',
      '/tree/sub/m1004.txt',
    ])
      expect(paths).toContain(p);
    expect(paths.indexOf('/tree/sub')).toBeLessThan(paths.indexOf('/tree/sub/b.txt'));
    expect(paths.indexOf('/tree/sub/deep')).toBeLessThan(paths.indexOf('/tree/sub/deep/c.txt'));
    expect(entries.find((e) => e.path === '/tree/sub/deep/c.txt')).toMatchObject({
      name: 'c.txt',
      kind: 'file',
      size: 3,
      revision: 1,
    });
    // The same entries as listing folder by folder.
    const byList = [...(await listAll('/tree/sub/deep')), ...(await listAll('/tree/empty'))];
    for (const e of byList) expect(entries).toContainEqual(e);
  });

  it('walks the whole tree from the root, and only the caller’s', async () => {
    const { entries } = await tree('/');
    expect(entries.map((e) => e.path)).toContain('/tree/sub/deep/c.txt');
    const other = await createTestUser(f.t);
    const theirs = await tree('/', other);
    expect(theirs).toEqual({ entries: [], end: { end: true, count: 0, path: '/' } });
    await get('/api/v1/fs/tree?path=/tree', other).expect(404);
  });

  it('sends only the fields asked for (and the path), the same values as the whole entries', async () => {
    const whole = await tree('/tree');
    const some = await tree('/tree', user, '&fields=kind,size,sha256,mtime');
    expect(some.end).toEqual(whole.end);
    expect(some.entries).toEqual(
      whole.entries.map((e) => ({
        path: e.path,
        kind: e.kind,
        size: e.size,
        sha256: e.sha256,
        mtime: e.mtime,
      })),
    );
    const ids = await tree('/tree/sub/deep', user, '&fields=id');
    expect(ids.entries).toEqual([{ path: '/tree/sub/deep/c.txt', id: expect.any(String) }]);
  });

  it('refuses unknown or empty fields with 400', async () => {
    for (const fields of ['owner', 'kind,nope', '', 'kind,,size']) {
      const res = await get(`/api/v1/fs/tree?path=/tree&fields=${encodeURIComponent(fields)}`).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('answers 404 for a missing folder, 409 for a file, 400 for /Shared itself and 401 without a token', async () => {
    await get('/api/v1/fs/tree?path=/tree/nope').expect(404);
    await get('/api/v1/fs/tree?path=/tree/a.txt').expect(409);
    await get('/api/v1/fs/tree?path=/Shared').expect(400);
    await get('/api/v1/fs/tree?path=/tree&limit=5').expect(400);
    await request(f.app).get('/api/v1/fs/tree?path=/').expect(401);
  });
});

describe('mkdir', () => {
  it('creates one folder and refuses an existing one with 409 NAME_CONFLICT', async () => {
    const res = await post('/api/v1/fs/mkdir', { path: '/m1' }).expect(201);
    expect(res.body).toMatchObject({ name: 'm1', path: '/m1', kind: 'folder' });
    const again = await post('/api/v1/fs/mkdir', { path: '/m1' }).expect(409);
    expect(again.body.error.code).toBe('NAME_CONFLICT');
  });

  it('needs the parent unless parents is set, then creates every level and accepts what exists', async () => {
    await post('/api/v1/fs/mkdir', { path: '/m2/x/y' }).expect(404);
    const deep = await post('/api/v1/fs/mkdir', { path: '/m2/x/y', parents: true }).expect(201);
    expect(deep.body).toMatchObject({ path: '/m2/x/y', name: 'y' });
    const again = await post('/api/v1/fs/mkdir', { path: '/m2/x/y', parents: true }).expect(200);
    expect(again.body.id).toBe(deep.body.id);
    await get('/api/v1/fs/stat?path=/m2/x').expect(200);
  });

  it('refuses mkdir -p through or onto a file', async () => {
    await putFile(f.t, user, '/m3/file', 'x');
    await post('/api/v1/fs/mkdir', { path: '/m3/file', parents: true }).expect(409);
    await post('/api/v1/fs/mkdir', { path: '/m3/file/sub', parents: true }).expect(409);
  });

  it('treats names that differ only in case as the same name', async () => {
    await post('/api/v1/fs/mkdir', { path: '/Case' }).expect(201);
    const res = await post('/api/v1/fs/mkdir', { path: '/cASE' }).expect(409);
    expect(res.body.error.code).toBe('NAME_CONFLICT');
    await putFile(f.t, user, '/casefile/Report.TXT', 'r');
    await post('/api/v1/fs/mkdir', { path: '/casefile/report.txt' }).expect(409);
  });
});

describe('mkdirs', () => {
  it('makes many folders (mkdir -p each) and answers per path, in order', async () => {
    await putFile(f.t, user, '/md/file', 'x');
    await post('/api/v1/fs/mkdir', { path: '/md/old' }).expect(201);
    const paths = [
      '/md/a',
      '/md/a/b/c',
      '/md/a/b',
      ...Array.from({ length: 40 }, (_, i) => `/md/s${i}`),
      '/md/old',
      '/md/file',
      '/md/file/sub',
      '/md/bad/../x',
      '/',
    ];
    const res = await post('/api/v1/fs/mkdirs', { paths }).expect(200);
    const items = res.body.items as Array<{ path: string; entry?: Entry; error?: { code: string } }>;
    expect(items.map((i) => i.path)).toEqual(paths);
    const byPath = new Map(items.map((i) => [i.path, i]));
    for (const p of ['/md/a', '/md/a/b/c', '/md/a/b', '/md/s0', '/md/s39', '/md/old']) {
      const item = byPath.get(p);
      expect(item?.entry).toMatchObject({ path: p, kind: 'folder' });
      const stat = await get(`/api/v1/fs/stat?path=${encodeURIComponent(p)}`).expect(200);
      expect(stat.body.id).toBe(item?.entry?.id);
    }
    expect(byPath.get('/md/file')?.error?.code).toBe('NAME_CONFLICT');
    // As `mkdir -p` through a file alone answers (409).
    expect(byPath.get('/md/file/sub')?.error?.code).toBe('CONFLICT');
    expect(byPath.get('/md/bad/../x')?.error?.code).toBe('INVALID_PATH');
    expect(byPath.get('/')?.entry).toMatchObject({ path: '/', kind: 'folder' });
    // Each folder once, though three paths needed /md/a at the same time.
    const names = (await listAll('/md')).map((e) => e.name);
    expect(names.filter((n) => n === 'a')).toHaveLength(1);
    expect(names).toHaveLength(3 + 40); // a, file, old and s0–s39
    expect((await listAll('/md/a')).map((e) => e.name)).toEqual(['b']);
    // Again: every folder exists now, nothing new.
    const again = await post('/api/v1/fs/mkdirs', { paths: paths.slice(0, 5) }).expect(200);
    expect(again.body.items.map((i: { entry?: Entry }) => i.entry?.id)).toEqual(
      items.slice(0, 5).map((i) => i.entry?.id),
    );
  });

  it('refuses an empty list and more than 1,000 paths as a whole', async () => {
    const empty = await post('/api/v1/fs/mkdirs', { paths: [] }).expect(400);
    expect(empty.body.error.code).toBe('VALIDATION_FAILED');
    const many = Array.from({ length: 1001 }, (_, i) => `/mx/${i}`);
    await post('/api/v1/fs/mkdirs', { paths: many }).expect(400);
    await get('/api/v1/fs/stat?path=/mx').expect(404);
  });
});

describe('bad names', () => {
  const bad = [
    '../x',
    '/a/../x',
    'a\0b',
    '\uff0e\uff0e\uff0fx',
    `/${'n'.repeat(300)}`,
    '/tab\there',
    '/ lead',
    '/a//b',
  ];

  it.each(bad)('answers 400 for mkdir %j and writes nothing', async (path) => {
    const before = await f.t.deps.metadata.latestChangeSeq(user.id);
    const res = await post('/api/v1/fs/mkdir', { path, parents: true }).expect(400);
    expect(['INVALID_PATH', 'INVALID_NAME']).toContain(res.body.error.code);
    expect(await f.t.deps.metadata.latestChangeSeq(user.id)).toBe(before);
  });

  it('checks the names of move and copy targets before touching anything', async () => {
    await putFile(f.t, user, '/names/ok.txt', 'ok');
    const before = await f.t.deps.metadata.latestChangeSeq(user.id);
    for (const to of ['/names/../../etc', '/names/a\u0001b', '/names/\uff0e\uff0e']) {
      await post('/api/v1/fs/move', { from: '/names/ok.txt', to }).expect(400);
      await post('/api/v1/fs/copy', { from: '/names/ok.txt', to }).expect(400);
    }
    await post('/api/v1/fs/move', { from: '/names/../x', to: '/y' }).expect(400);
    expect(await f.t.deps.metadata.latestChangeSeq(user.id)).toBe(before);
    await get('/api/v1/fs/stat?path=/names/ok.txt').expect(200);
  });

  it('answers 400 for an unknown body field', async () => {
    await post('/api/v1/fs/mkdir', { path: '/zz', mode: 777 }).expect(400);
  });
});

describe('move', () => {
  it('renames a file in place and moves a folder with its content', async () => {
    await putFile(f.t, user, '/mv/a/one.txt', '1');
    const renamed = await post('/api/v1/fs/move', { from: '/mv/a/one.txt', to: '/mv/a/uno.txt' }).expect(200);
    expect(renamed.body).toMatchObject({ name: 'uno.txt', path: '/mv/a/uno.txt' });
    await post('/api/v1/fs/mkdir', { path: '/mv/b' }).expect(201);
    await post('/api/v1/fs/move', { from: '/mv/a', to: '/mv/b/a2' }).expect(200);
    const stat = await get('/api/v1/fs/stat?path=/mv/b/a2/uno.txt').expect(200);
    expect(stat.body.id).toBe(renamed.body.id);
    await get('/api/v1/fs/stat?path=/mv/a').expect(404);
  });

  it('allows a case-only rename of the same item', async () => {
    await putFile(f.t, user, '/mvcase/readme', 'r');
    await post('/api/v1/fs/move', { from: '/mvcase/readme', to: '/mvcase/README' }).expect(200);
    const list = await get('/api/v1/fs/list?path=/mvcase').expect(200);
    expect((list.body as EntryPage).items.map((e) => e.name)).toEqual(['README']);
  });

  it('refuses to move a folder into its own subtree with 409', async () => {
    await post('/api/v1/fs/mkdir', { path: '/loop/inner/deeper', parents: true }).expect(201);
    const res = await post('/api/v1/fs/move', { from: '/loop', to: '/loop/inner/deeper/loop' }).expect(409);
    expect(res.body.error.code).toBe('CONFLICT');
    await post('/api/v1/fs/move', { from: '/loop', to: '/loop/x' }).expect(409);
    await get('/api/v1/fs/stat?path=/loop/inner/deeper').expect(200);
  });

  it('refuses a target that exists up to case, and a missing source or target folder', async () => {
    await putFile(f.t, user, '/mvc/x.txt', 'x');
    await putFile(f.t, user, '/mvc/Y.txt', 'y');
    const res = await post('/api/v1/fs/move', { from: '/mvc/x.txt', to: '/mvc/y.TXT' }).expect(409);
    expect(res.body.error.code).toBe('NAME_CONFLICT');
    await post('/api/v1/fs/move', { from: '/mvc/none', to: '/mvc/z' }).expect(404);
    await post('/api/v1/fs/move', { from: '/mvc/x.txt', to: '/nowhere/z' }).expect(404);
    await post('/api/v1/fs/move', { from: '/', to: '/z' }).expect(400);
  });
});

describe('copy', () => {
  it('copies a file as a new node sharing the blob', async () => {
    const original = await putFile(f.t, user, '/cp/src.bin', 'copied bytes', {
      mediaType: 'text/plain',
      mtime: 42,
    });
    const usedBefore = (await f.t.deps.metadata.getUserById(user.id))?.storageUsed ?? 0;
    const res = await post('/api/v1/fs/copy', { from: '/cp/src.bin', to: '/cp/dst.bin' }).expect(201);
    expect(res.body).toMatchObject({
      path: '/cp/dst.bin',
      sha256: original.sha256,
      size: 12,
      mtime: 42,
      revision: 1,
    });
    expect(res.body.id).not.toBe(original.id);
    expect((await f.t.deps.metadata.getUserById(user.id))?.storageUsed).toBe(usedBefore + 12);
    const body = await get(`/api/v1/files/${res.body.id}/content`)
      .buffer(true)
      .parse(binaryParser)
      .expect(200);
    expect((body.body as Buffer).toString()).toBe('copied bytes');
    await post('/api/v1/fs/copy', { from: '/cp/src.bin', to: '/cp/DST.bin' }).expect(409);
  });

  it('copies a folder recursively and refuses a copy into itself', async () => {
    await putFile(f.t, user, '/cpd/tree/a.txt', 'a');
    await putFile(f.t, user, '/cpd/tree/sub/b.txt', 'bb');
    await post('/api/v1/fs/mkdir', { path: '/cpd/tree/empty' }).expect(201);
    await post('/api/v1/fs/copy', { from: '/cpd/tree', to: '/cpd/clone' }).expect(201);
    const names = (await listAll('/cpd/clone')).map((e) => e.name);
    expect(names).toEqual(['a.txt', 'empty', 'sub']);
    const b = await get('/api/v1/fs/stat?path=/cpd/clone/sub/b.txt').expect(200);
    expect(b.body.size).toBe(2);
    const res = await post('/api/v1/fs/copy', { from: '/cpd/tree', to: '/cpd/tree/sub/again' }).expect(409);
    expect(res.body.error.code).toBe('CONFLICT');
    await get('/api/v1/fs/stat?path=/cpd/tree/sub/again').expect(404);
  });

  it('refuses a copy over the quota with 507 and writes nothing', async () => {
    const small = await createTestUser(f.t, { quota: 20 });
    await putFile(f.t, small, '/q/ten.txt', '0123456789');
    await post('/api/v1/fs/copy', { from: '/q/ten.txt', to: '/q/ten2.txt' }, small).expect(201);
    const before = await f.t.deps.metadata.latestChangeSeq(small.id);
    const res = await post('/api/v1/fs/copy', { from: '/q/ten.txt', to: '/q/ten3.txt' }, small).expect(507);
    expect(res.body.error.code).toBe('QUOTA_EXCEEDED');
    expect(await f.t.deps.metadata.latestChangeSeq(small.id)).toBe(before);
  });
});

describe('delete', () => {
  it('moves an item to the trash so the path is free again', async () => {
    await putFile(f.t, user, '/del/gone.txt', 'g');
    const res = await post('/api/v1/fs/delete', { path: '/del/gone.txt' }).expect(200);
    expect(res.body.trashedAt).not.toBeNull();
    await get('/api/v1/fs/stat?path=/del/gone.txt').expect(404);
    await putFile(f.t, user, '/del/gone.txt', 'new');
    await post('/api/v1/fs/delete', { path: '/del/missing' }).expect(404);
  });

  it('needs scope write for mutations', async () => {
    const { hashSecret, newSecret, API_TOKEN_PREFIX } = await import('../server/auth/secrets.js');
    const token = newSecret(API_TOKEN_PREFIX);
    await f.t.deps.metadata.createApiToken({
      userId: user.id,
      name: 'ro',
      prefix: token.slice(0, 10),
      tokenHash: hashSecret(token),
      scopes: ['read'],
      expiresAt: null,
    });
    const ro = { ...user, headers: { Authorization: `Bearer ${token}` } };
    await get('/api/v1/fs/list', ro).expect(200);
    const res = await post('/api/v1/fs/mkdir', { path: '/ro' }, ro).expect(403);
    expect(res.body.error.code).toBe('INSUFFICIENT_SCOPE');
  });
});
