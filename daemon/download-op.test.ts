/**
 * The daemon's download operation against a real server, with a user acting on the file
 * while it lands (a watcher on the folder stands in for the user's hands):
 * - renamed as soon as it appears: the journal describes the bytes the download wrote, so
 *   the next scan sees a move (it used to see a deletion of an older revision, which the
 *   server then restored next to the renamed copy);
 * - created here while the download runs: the local file is left alone and the operation
 *   comes back later, when the local file becomes a conflicted copy.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../contract/client.js';
import { createFilesTestApp, putFile, type FilesTestApp } from '../test/fs-helpers.js';
import { createTestUser, type TestUser } from '../test/helpers/app.js';
import { opFolder } from '../test/helpers/op-context.js';
import { serveForUser, type Served } from '../test/helpers/serve.js';
import { IgnoreRules } from './ignore.js';
import type { Operation } from './journal.js';
import { runOperation, type OperationContext } from './operations.js';
import { Scanner } from './scanner.js';

let f: FilesTestApp;
let user: TestUser;
let served: Served;
let client: ApiClient;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  f = await createFilesTestApp();
  user = await createTestUser(f.t);
  served = await serveForUser(f.app, user);
  client = served.client;
});
afterAll(async () => {
  await served?.close();
  await f?.t.close();
});
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function folder(remoteRoot: string): { root: string; ctx: OperationContext; scanner: Scanner } {
  const { root, ctx } = opFolder(remoteRoot, client, cleanups);
  return { root, ctx, scanner: new Scanner(root, ctx.folderId, ctx.journal, new IgnoreRules(root)) };
}

/** Calls `act` (once) when `name` appears in `dir`. */
function whenAppears(dir: string, name: string, act: () => void): void {
  let done = false;
  const watcher = fs.watch(dir, (_event, changed) => {
    if (done || changed !== name || !fs.existsSync(path.join(dir, name))) return;
    done = true;
    act();
  });
  cleanups.push(() => watcher.close());
}

const op = (relPath: string): Operation => ({
  id: 1,
  folderId: 1,
  op: 'download',
  path: relPath,
  toPath: null,
  attempts: 0,
  nextAttemptAt: 0,
  lastError: null,
  createdAt: Date.now(),
});

describe('daemon download operation', () => {
  it('records the bytes it wrote, so a file renamed the moment it lands is seen as moved', async () => {
    await putFile(f.t, user, '/moved/one.txt', 'one, from the server');
    const { root, ctx, scanner } = folder('/moved');
    whenAppears(root, 'one.txt', () =>
      fs.renameSync(path.join(root, 'one.txt'), path.join(root, 'renamed.txt')),
    );

    const outcome = await runOperation(ctx, op('one.txt'));
    expect(outcome.kind).toBe('done');
    const entry = outcome.kind === 'done' ? outcome.entry : undefined;
    const renamed = fs.statSync(path.join(root, 'renamed.txt'));
    expect(entry).toMatchObject({ relPath: 'one.txt', ino: renamed.ino, size: renamed.size });
    expect(entry?.mtimeMs).toBe(renamed.mtimeMs);
    ctx.journal.putEntry(ctx.folderId, entry as NonNullable<typeof entry>);

    const plan = await scanner.scan(['one.txt', 'renamed.txt']);
    expect(plan.ops).toEqual([{ op: 'move', path: 'one.txt', toPath: 'renamed.txt' }]);
  });

  it('leaves a file created here during the download alone, then keeps both versions', async () => {
    const fromServer = Buffer.alloc(4 * 1024 * 1024, 's');
    await putFile(f.t, user, '/both/doc.bin', fromServer);
    const { root, ctx } = folder('/both');
    whenAppears(root, 'doc.bin.partial', () => fs.writeFileSync(path.join(root, 'doc.bin'), 'made here'));

    const first = await runOperation(ctx, op('doc.bin'));
    expect(first.kind).toBe('later');
    expect(fs.readFileSync(path.join(root, 'doc.bin'), 'utf8')).toBe('made here');

    const second = await runOperation(ctx, op('doc.bin'));
    expect(second.kind).toBe('done');
    const names = fs.readdirSync(root).sort();
    expect(names).toHaveLength(2);
    expect(fs.readFileSync(path.join(root, 'doc.bin')).equals(fromServer)).toBe(true);
    const copy = names.find((n) => n !== 'doc.bin') as string;
    expect(copy).toMatch(/^doc \(conflicted copy .+\)\.bin$/);
    expect(fs.readFileSync(path.join(root, copy), 'utf8')).toBe('made here');
  });
});
