/**
 * The sync daemon pushes local changes to a real server: a real `aio-server` child, a
 * real `aio daemon run` child, temp folders.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry, RevisionBody } from '../contract/schemas/files.js';
import {
  converged,
  watched,
  remoteFiles,
  runDaemon,
  sha,
  startAccount,
  stopDaemonProcesses,
  waitFor,
} from './helpers/daemon.js';
import { stopAllProcesses } from './helpers/processes.js';

afterEach(async () => {
  await stopDaemonProcesses();
  await stopAllProcesses();
});

describe('aio daemon (push)', () => {
  it('propagates create, modify, mkdir, rename and delete to the server', async () => {
    const account = await startAccount();
    const { dir, config } = await watched(account);
    await fs.writeFile(path.join(dir, 'before.txt'), 'existed before the daemon started');
    await runDaemon(config, account);
    await converged(account, dir);

    await fs.mkdir(path.join(dir, 'docs/deep'), { recursive: true });
    await fs.writeFile(path.join(dir, 'docs/deep/a.txt'), 'alpha');
    await fs.writeFile(path.join(dir, 'before.txt'), 'modified');
    await converged(account, dir);
    const folder = await account.client.get<Entry>('/api/v1/fs/stat', {
      searchParams: { path: '/sync/docs/deep' },
    });
    expect(folder.kind).toBe('folder');

    const moved = await account.client.get<Entry>('/api/v1/fs/stat', {
      searchParams: { path: '/sync/docs/deep/a.txt' },
    });
    await fs.rename(path.join(dir, 'docs/deep/a.txt'), path.join(dir, 'docs/b.txt'));
    await converged(account, dir);
    const after = await account.client.get<Entry>('/api/v1/fs/stat', {
      searchParams: { path: '/sync/docs/b.txt' },
    });
    expect(after.id).toBe(moved.id); // a server move, not delete + upload

    await fs.rm(path.join(dir, 'before.txt'));
    await converged(account, dir);
    expect((await remoteFiles(account.client, '/sync')).has('before.txt')).toBe(false);
  });

  it('turns an editor-style atomic save into exactly one new revision', async () => {
    const account = await startAccount();
    const { dir, config } = await watched(account);
    await fs.writeFile(path.join(dir, 'note.md'), 'version one');
    await runDaemon(config, account);
    await converged(account, dir);

    await fs.writeFile(path.join(dir, '.note.md.tmp'), 'version two');
    await fs.rename(path.join(dir, '.note.md.tmp'), path.join(dir, 'note.md'));
    await converged(account, dir);
    const entry = await account.client.get<Entry>('/api/v1/fs/stat', {
      searchParams: { path: '/sync/note.md' },
    });
    await new Promise((r) => setTimeout(r, 1000)); // nothing else may follow
    const versions = await account.client.get<{ items: RevisionBody[] }>(
      `/api/v1/files/${entry.id}/versions`,
    );
    expect(versions.items.map((v) => v.sha256)).toEqual([sha('version two'), sha('version one')]);
  });

  it('sends small files in batches, bigger ones alone, and edits as new revisions of the same files', async () => {
    const account = await startAccount();
    const { dir, config } = await watched(account);
    for (let d = 0; d < 3; d++) {
      await fs.mkdir(path.join(dir, `d${d}`));
      for (let f = 0; f < 100; f++) await fs.writeFile(path.join(dir, `d${d}`, `f${f}.txt`), `${d}/${f}`);
    }
    await fs.writeFile(path.join(dir, 'big.bin'), Buffer.alloc(200 * 1024, 7)); // over the batch size
    const daemon = await runDaemon(config, account, { AIO_LOG_LEVEL: 'debug' });
    await converged(account, dir);
    const first = await account.client.get<Entry>('/api/v1/fs/stat', {
      searchParams: { path: '/sync/d1/f42.txt' },
    });

    for (let f = 0; f < 50; f++) await fs.writeFile(path.join(dir, 'd1', `f${f}.txt`), `edited ${f}`);
    await converged(account, dir);
    const edited = await account.client.get<Entry>('/api/v1/fs/stat', {
      searchParams: { path: '/sync/d1/f42.txt' },
    });
    expect(edited.id).toBe(first.id);
    expect(edited.revision).toBe(first.revision + 1);
    await daemon.stop();
    const log = (await fs.readFile(path.join(config, 'daemon.log'), 'utf8')).split('\n');
    const batched = log.filter((l) => l.includes('"operation done"') && l.includes('"batch":true'));
    expect(batched.length).toBeGreaterThanOrEqual(300);
    expect(batched.some((l) => l.includes('big.bin'))).toBe(false);
  });

  it('uploads a file written slowly over 3 seconds complete', async () => {
    const account = await startAccount();
    const { dir, config } = await watched(account);
    await runDaemon(config, account);
    const file = path.join(dir, 'slow.bin');
    const handle = await fs.open(file, 'w');
    const chunks: Buffer[] = [];
    for (let i = 0; i < 15; i++) {
      const chunk = Buffer.alloc(64 * 1024, i);
      chunks.push(chunk);
      await handle.write(chunk);
      await new Promise((r) => setTimeout(r, 200));
    }
    await handle.close();
    const whole = sha(Buffer.concat(chunks));
    await waitFor(async () => (await remoteFiles(account.client, '/sync')).get('slow.bin') === whole, 20_000);
  });
});
