/**
 * Two-way sync between two real daemons (separate config dirs, one account) through a
 * real server, conflicts, and the safety rules.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RemoteFolder } from '../daemon/remote.js';
import {
  aio,
  converged,
  watched,
  localFiles,
  remoteFiles,
  runDaemon,
  sha,
  startAccount,
  stopDaemonProcesses,
  waitFor,
} from './helpers/daemon.js';
import { stopAllProcesses, tempDir } from './helpers/processes.js';

afterEach(async () => {
  await stopDaemonProcesses();
  await stopAllProcesses();
});

type Account = Awaited<ReturnType<typeof startAccount>>;
type Watched = Awaited<ReturnType<typeof watched>>;

/** A running daemon whose watched folder holds ten files (f0.txt …), all on the server. */
async function tenSyncedFiles(): Promise<{ account: Account; a: Watched }> {
  const account = await startAccount();
  const a = await watched(account);
  for (let i = 0; i < 10; i++) await fs.writeFile(path.join(a.dir, `f${i}.txt`), `file ${i}`);
  await runDaemon(a.config, account);
  await converged(account, a.dir);
  return { account, a };
}

/**
 * The mass-delete guard holds what is left of eight deletions: the folder waits for
 * confirmation with `onServer` files still there, and ends with two once confirmed.
 */
async function heldThenConfirmed(account: Account, a: Watched, onServer: number): Promise<void> {
  await waitFor(async () => (await aio(['status'], a.config, account)).stdout.includes('needs-confirmation'));
  await new Promise((r) => setTimeout(r, 1000));
  expect((await remoteFiles(account.client, '/sync')).size).toBe(onServer);
  const resumed = await aio(['resume', a.dir, '--confirm-deletes'], a.config, account);
  expect(resumed.code, resumed.stderr).toBe(0);
  await converged(account, a.dir);
  expect((await remoteFiles(account.client, '/sync')).size).toBe(2);
}

describe('aio daemon (two-way)', () => {
  it('carries creates, edits, renames and deletes from one daemon to another', async () => {
    const account = await startAccount();
    const a = await watched(account);
    const b = await watched(account);
    await runDaemon(a.config, account);
    await runDaemon(b.config, account);

    await fs.mkdir(path.join(a.dir, 'shared'));
    await fs.writeFile(path.join(a.dir, 'shared/one.txt'), 'one');
    await waitFor(async () => (await localFiles(b.dir)).get('shared/one.txt') === sha('one'));

    await fs.writeFile(path.join(b.dir, 'shared/one.txt'), 'one, edited on b');
    await waitFor(async () => (await localFiles(a.dir)).get('shared/one.txt') === sha('one, edited on b'));

    await fs.rename(path.join(a.dir, 'shared/one.txt'), path.join(a.dir, 'shared/renamed.txt'));
    await waitFor(async () => {
      const files = await localFiles(b.dir);
      return files.get('shared/renamed.txt') === sha('one, edited on b') && !files.has('shared/one.txt');
    });

    await fs.rm(path.join(b.dir, 'shared/renamed.txt'));
    await waitFor(async () => !(await localFiles(a.dir)).has('shared/renamed.txt'));
    // The local copy the server deleted is kept in the daemon's trash, not unlinked.
    const trash = await localFiles(path.join(a.config, '.aio-trash'));
    expect([...trash.values()]).toContain(sha('one, edited on b'));
    await converged(account, a.dir);
  });

  it('carries a file that became a folder, and a folder that became a file, to the other daemon', async () => {
    const account = await startAccount();
    const a = await watched(account);
    const b = await watched(account);
    await fs.writeFile(path.join(a.dir, 'was-file'), 'a file');
    await fs.mkdir(path.join(a.dir, 'was-folder'));
    await fs.writeFile(path.join(a.dir, 'was-folder/in.txt'), 'in');
    await runDaemon(a.config, account);
    await runDaemon(b.config, account);
    await waitFor(async () => (await localFiles(b.dir)).get('was-folder/in.txt') === sha('in'));

    await fs.rm(path.join(a.dir, 'was-file'));
    await fs.mkdir(path.join(a.dir, 'was-file'));
    await fs.writeFile(path.join(a.dir, 'was-file/inner.txt'), 'inner');
    await fs.rm(path.join(a.dir, 'was-folder'), { recursive: true });
    await fs.writeFile(path.join(a.dir, 'was-folder'), 'now a file');
    const expected = new Map([
      ['was-file/inner.txt', sha('inner')],
      ['was-folder', sha('now a file')],
    ]);
    // Before, the daemon sent the folder onto the file ("A file exists") and the file onto
    // the folder, again and again, and never went idle.
    await waitFor(
      async () => {
        const files = await localFiles(b.dir);
        return files.size === 2 && [...expected].every(([p, h]) => files.get(p) === h);
      },
      20_000,
      async () =>
        `a ${JSON.stringify([...(await localFiles(a.dir)).keys()])} b ${JSON.stringify([...(await localFiles(b.dir)).keys()])} server ${JSON.stringify([...(await remoteFiles(account.client, '/sync')).keys()])}; a: ${(await aio(['status'], a.config, account)).stdout}; b: ${(await aio(['status'], b.config, account)).stdout}`,
    );
    await converged(account, a.dir);
    expect(await localFiles(a.dir)).toEqual(expected);
  });

  it('applies changes made through the API and keeps both versions when both sides edit', async () => {
    const account = await startAccount();
    const a = await watched(account);
    await fs.writeFile(path.join(a.dir, 'doc.txt'), 'base');
    const daemon = await runDaemon(a.config, account);
    await converged(account, a.dir);

    // Another client uploads a new file through the API.
    const other = new RemoteFolder(account.client, '/sync');
    const tmp = path.join(await tempDir(), 'x');
    await fs.writeFile(tmp, 'from the api');
    await other.upload({
      localFile: tmp,
      relPath: 'api.txt',
      size: 12,
      sha256: sha('from the api'),
      mtimeMs: Date.now(),
      baseRevision: 0,
    });
    await waitFor(async () => (await localFiles(a.dir)).get('api.txt') === sha('from the api'));

    // Both sides edit doc.txt while the daemon is stopped.
    await daemon.stop();
    const current = await other.stat('doc.txt');
    await fs.writeFile(tmp, 'server edit');
    await other.upload({
      localFile: tmp,
      relPath: 'doc.txt',
      size: 11,
      sha256: sha('server edit'),
      mtimeMs: Date.now(),
      baseRevision: current?.revision ?? 1,
    });
    await fs.writeFile(path.join(a.dir, 'doc.txt'), 'local edit');
    await runDaemon(a.config, account);
    await waitFor(async () => {
      const files = await localFiles(a.dir);
      const copies = [...files.keys()].filter((k) =>
        /^doc \(conflicted copy \d{4}-\d\d-\d\d \d{6} .+\)\.txt$/.test(k),
      );
      return (
        files.get('doc.txt') === sha('server edit') &&
        copies.length === 1 &&
        files.get(copies[0] as string) === sha('local edit')
      );
    });
    await converged(account, a.dir);
  });

  it('holds the rest of a mass delete that comes in two goes, the first already on the server', async () => {
    const { account, a } = await tenSyncedFiles();
    // Four deletions, under the guard's minimum (5 here): they go through.
    for (let i = 0; i < 4; i++) await fs.rm(path.join(a.dir, `f${i}.txt`));
    await waitFor(async () => (await remoteFiles(account.client, '/sync')).size === 6);
    // Four more within the window: eight of ten in all.
    for (let i = 4; i < 8; i++) await fs.rm(path.join(a.dir, `f${i}.txt`));
    await heldThenConfirmed(account, a, 6);
  });

  it('holds a mass delete until confirmed and deletes nothing when the watched root disappears', async () => {
    const { account, a } = await tenSyncedFiles();
    for (let i = 0; i < 8; i++) await fs.rm(path.join(a.dir, `f${i}.txt`));
    await heldThenConfirmed(account, a, 10);

    await fs.rm(a.dir, { recursive: true });
    await waitFor(async () => (await aio(['status'], a.config, account)).stdout.includes('state: error'));
    await new Promise((r) => setTimeout(r, 1000));
    expect((await remoteFiles(account.client, '/sync')).size).toBe(2);
  });

  it('ignores a symlink loop and reports a FIFO (unreadable as a file; tests run as root, so chmod 000 is simulated) while other files sync', async () => {
    const account = await startAccount();
    const a = await watched(account);
    await fs.mkdir(path.join(a.dir, 'loop'));
    await fs.symlink('..', path.join(a.dir, 'loop/up'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(a.dir, 'pipe')]);
    await fs.writeFile(path.join(a.dir, 'ok.txt'), 'fine');
    await fs.writeFile(path.join(a.dir, 'x.swp'), 'editor swap file');
    await runDaemon(a.config, account);
    await waitFor(async () => (await remoteFiles(account.client, '/sync')).get('ok.txt') === sha('fine'));
    const status = await aio(['--json', 'status'], a.config, account);
    const body = JSON.parse(status.stdout) as { folders: Array<{ skipped: Array<{ path: string }> }> };
    expect(body.folders[0]?.skipped.map((s) => s.path).sort()).toEqual(['loop/up', 'pipe']);
    expect([...(await remoteFiles(account.client, '/sync')).keys()]).toEqual(['ok.txt']);
  });

  it('reports names the server refuses as not synced, instead of sending them again and again, and goes idle', async () => {
    const account = await startAccount();
    const a = await watched(account);
    const refused = ['back\\slash.txt', 'trailing ', 'new\nline.txt', 'ＡＢ／ＣＤ'];
    for (const name of refused) await fs.writeFile(path.join(a.dir, name), name);
    await fs.mkdir(path.join(a.dir, ' spaced dir'));
    await fs.writeFile(path.join(a.dir, ' spaced dir', 'inside.txt'), 'not reached');
    await fs.writeFile(path.join(a.dir, 'ok.txt'), 'fine');
    await runDaemon(a.config, account);
    await waitFor(async () => (await remoteFiles(account.client, '/sync')).get('ok.txt') === sha('fine'));
    type Status = {
      folders: Array<{
        state: string;
        queued: number;
        lastSyncAt: string | null;
        errors: unknown[];
        skipped: Array<{ path: string; reason: string }>;
      }>;
    };
    let folder: Status['folders'][number] | undefined;
    await waitFor(async () => {
      const status = await aio(['--json', 'status'], a.config, account);
      folder = (JSON.parse(status.stdout) as Status).folders[0];
      return folder?.state === 'idle' && folder.lastSyncAt !== null;
    });
    expect(folder?.queued).toBe(0);
    expect(folder?.errors).toEqual([]);
    expect(folder?.skipped.map((s) => s.path).sort()).toEqual([' spaced dir', ...refused].sort());
    for (const s of folder?.skipped ?? []) expect(s.reason).toMatch(/^name not allowed on the server: /);
    expect([...(await remoteFiles(account.client, '/sync')).keys()]).toEqual(['ok.txt']);
    // For people, one line each: the newline in a name is written as \n.
    const human = await aio(['status'], a.config, account);
    expect(human.stdout).toContain('  not synced: new\\nline.txt (name not allowed on the server: ');
  });

  it('syncs one of two names that differ only in case and reports the other, even when it is edited', async () => {
    const account = await startAccount();
    const a = await watched(account);
    await fs.writeFile(path.join(a.dir, 'Notes.txt'), 'upper');
    await fs.writeFile(path.join(a.dir, 'notes.txt'), 'lower');
    await runDaemon(a.config, account);
    await waitFor(async () => (await remoteFiles(account.client, '/sync')).get('Notes.txt') === sha('upper'));
    const idle = async (): Promise<{ skipped: Array<{ path: string; reason: string }> } | undefined> => {
      const status = await aio(['--json', 'status'], a.config, account);
      const folder = (
        JSON.parse(status.stdout) as {
          folders: Array<{
            state: string;
            lastSyncAt: string | null;
            skipped: Array<{ path: string; reason: string }>;
          }>;
        }
      ).folders[0];
      return folder?.state === 'idle' && folder.lastSyncAt !== null ? folder : undefined;
    };
    await waitFor(async () => (await idle()) !== undefined);
    expect((await idle())?.skipped).toEqual([
      { path: 'notes.txt', reason: expect.stringMatching(/"Notes\.txt"/) as unknown as string },
    ]);
    await fs.writeFile(path.join(a.dir, 'notes.txt'), 'lower, edited');
    await new Promise((r) => setTimeout(r, 1500));
    await waitFor(async () => (await idle()) !== undefined);
    // Nothing was sent over its twin, and no conflicted copy appeared on either side.
    expect([...(await remoteFiles(account.client, '/sync')).entries()]).toEqual([
      ['Notes.txt', sha('upper')],
    ]);
    expect((await fs.readdir(a.dir)).sort()).toEqual(['Notes.txt', 'notes.txt']);
    expect(await fs.readFile(path.join(a.dir, 'notes.txt'), 'utf8')).toBe('lower, edited');

    // Its rival deleted, the twin syncs at once (not at the next full rescan).
    await fs.rm(path.join(a.dir, 'Notes.txt'));
    await waitFor(async () => {
      const remote = await remoteFiles(account.client, '/sync');
      return remote.size === 1 && remote.get('notes.txt') === sha('lower, edited');
    });
    await waitFor(async () => (await idle())?.skipped.length === 0);
  });
});
