import type { Server } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import { notifications } from '../cli/commands/notifications.js';
import { shareCreate, shareList, shareRevoke, sharedWithMe, shareUser } from '../cli/commands/share.js';
import { createContext, type CliContext } from '../cli/context.js';
import { Output } from '../cli/output.js';
import type { TestApp, TestUser } from './helpers/app.js';
import { putFile, shareApp, user } from './share-fixtures.js';

describe('aio share and aio notifications', () => {
  let t: TestApp;
  let server: Server;
  let base: string;
  let owner: TestUser;
  let friend: TestUser;

  beforeEach(async () => {
    t = await shareApp();
    owner = await user(t);
    friend = await user(t);
    server = t.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    await t.close();
  });

  /** A context as `aio --json --server <base>` with AIO_TOKEN, capturing stdout. */
  async function cli(who: TestUser, stdin = ''): Promise<{ ctx: CliContext; json: () => unknown }> {
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (c: Buffer) => chunks.push(c));
    const ctx = await createContext(
      { server: base, json: true },
      { AIO_TOKEN: who.accessToken, AIO_CONFIG_DIR: t.dataDir, AIO_NO_KEYRING: '1' },
      { stdin: Readable.from([stdin]) },
    );
    ctx.out = new Output({ json: true, quiet: false, progress: false, stdout, stderr: new PassThrough() });
    return { ctx, json: () => JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  }

  it('creates a password link with an absolute URL, lists it with its downloads, and revokes it', async () => {
    await putFile(t, owner, '/report.txt', 'numbers');
    const create = await cli(owner, 'link password\n');
    await shareCreate(create.ctx, 'report.txt', { expires: '2d', passwordStdin: true, maxDownloads: '2' });
    const created = create.json() as { id: string; url: string; hasPassword: boolean; maxDownloads: number };
    expect(created.url).toMatch(new RegExp(`^${base}/s/[A-Za-z0-9_-]{43}$`));
    expect(created).toMatchObject({ hasPassword: true, maxDownloads: 2 });
    const path = new URL(created.url).pathname;
    expect((await request(t.app).get(path)).status).toBe(401);
    expect(
      (await request(t.app).post(`${path}/auth`).type('form').send({ password: 'link password' })).status,
    ).toBe(303);

    const ls = await cli(owner);
    await shareList(ls.ctx);
    expect(ls.json()).toEqual({
      items: [expect.objectContaining({ id: created.id, type: 'link', downloads: 0 })],
    });

    const revoke = await cli(owner);
    await shareRevoke(revoke.ctx, created.id);
    expect(revoke.json()).toEqual({ revoked: created.id });
    expect((await request(t.app).get(path)).status).toBe(404);
  });

  it('shares a folder with a user, who sees it in shared-with-me and in their notifications once', async () => {
    await putFile(t, owner, '/Team/a.txt', 'a');
    const grant = await cli(owner);
    await shareUser(grant.ctx, '/Team', { with: friend.email, role: 'editor' });
    expect(grant.json()).toEqual({ email: friend.email, role: 'editor', path: '/Team' });

    const mine = await cli(friend);
    await sharedWithMe(mine.ctx);
    expect(mine.json()).toEqual({
      items: [
        expect.objectContaining({
          path: '/Shared/Team',
          role: 'editor',
          owner: { id: owner.id, email: owner.email },
        }),
      ],
    });

    const first = await cli(friend);
    await notifications(first.ctx, {});
    expect(first.json()).toEqual({
      items: [expect.objectContaining({ type: 'share.received', readAt: null })],
    });
    const again = await cli(friend);
    await notifications(again.ctx, {});
    expect(again.json()).toEqual({ items: [] });
    const all = await cli(friend);
    await notifications(all.ctx, { all: true });
    expect((all.json() as { items: unknown[] }).items).toHaveLength(1);
  });

  it('rejects a bad role and a bad --max-downloads before calling the server', async () => {
    const c = await cli(owner);
    await expect(shareUser(c.ctx, '/x', { with: friend.email, role: 'owner' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(shareCreate(c.ctx, '/x', { maxDownloads: '0' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(shareCreate(c.ctx, '/x', { expires: 'soon' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});
