/** The daemon survives SIGKILL in the middle of many changes and a server that goes away. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  aio,
  localFiles,
  remoteFiles,
  runDaemon,
  sameFiles,
  show,
  startAccount,
  stopDaemonProcesses,
  waitFor,
} from './helpers/daemon.js';
import { stopAllProcesses, tempDir } from './helpers/processes.js';

afterEach(async () => {
  await stopDaemonProcesses();
  await stopAllProcesses();
});

describe('aio daemon (durability)', () => {
  it('ends identical to the local tree after a SIGKILL in the middle of 500 small changes', async () => {
    const account = await startAccount();
    const dir = await fs.realpath(await tempDir('aio-local-'));
    const config = await tempDir('aio-config-');
    expect((await aio(['watch', 'add', dir, '/bulk', '--mode', 'push'], config, account)).code).toBe(0);
    const fast = { AIO_DAEMON_CONCURRENCY: '8' };
    const first = await runDaemon(config, account, fast);
    for (let i = 0; i < 500; i++) {
      await fs.mkdir(path.join(dir, `d${i % 10}`), { recursive: true });
      await fs.writeFile(path.join(dir, `d${i % 10}/f${i}.txt`), `content ${i}`);
    }
    await waitFor(async () => (await remoteFiles(account.client, '/bulk')).size > 20, 20_000);
    await first.stop('SIGKILL');
    for (let i = 0; i < 50; i++) await fs.writeFile(path.join(dir, `d${i % 10}/f${i}.txt`), `changed ${i}`);
    await runDaemon(config, account, fast);
    await waitFor(
      async () => sameFiles(await localFiles(dir), await remoteFiles(account.client, '/bulk')),
      50_000,
      async () =>
        `${(await localFiles(dir)).size} local vs ${(await remoteFiles(account.client, '/bulk')).size} remote`,
    );
  }, 90_000);

  it('pushes everything that changed while the server was down for 30 s once it is back', async () => {
    const account = await startAccount();
    const port = new URL(account.url).port;
    const dir = await fs.realpath(await tempDir('aio-local-'));
    const config = await tempDir('aio-config-');
    expect((await aio(['watch', 'add', dir, '/off'], config, account)).code).toBe(0);
    await fs.writeFile(path.join(dir, 'a.txt'), 'a');
    await runDaemon(config, account);
    await waitFor(async () => (await remoteFiles(account.client, '/off')).size === 1);

    await account.server.stop('SIGTERM');
    await fs.writeFile(path.join(dir, 'b.txt'), 'written while offline');
    await fs.writeFile(path.join(dir, 'a.txt'), 'a, edited offline');
    // Down for 30 s, with more changes in the middle of the outage.
    await new Promise((r) => setTimeout(r, 15_000));
    await fs.mkdir(path.join(dir, 'later'));
    await fs.writeFile(path.join(dir, 'later', 'c.txt'), 'written half-way through the outage');
    await new Promise((r) => setTimeout(r, 15_000));
    await startAccountServer(account.dataDir, port);
    await waitFor(
      async () => sameFiles(await localFiles(dir), await remoteFiles(account.client, '/off')),
      20_000,
      async () =>
        `local ${show(await localFiles(dir))} remote ${show(await remoteFiles(account.client, '/off')).toString()}`,
    );
  }, 90_000);
});

async function startAccountServer(dataDir: string, port: string): Promise<void> {
  const { startServer } = await import('./helpers/processes.js');
  await startServer({ AIO_DATA_DIR: dataDir, AIO_BCRYPT_COST: '4', AIO_PORT: port });
}
