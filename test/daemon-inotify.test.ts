/**
 * inotify exhaustion: the daemon runs in its own user namespace whose inotify watch
 * limit is set to 8 (a real kernel limit, scoped to that namespace), so chokidar hits
 * ENOSPC. The folder must fall back to polling, say so, and keep syncing.
 */
import { execFileSync } from 'node:child_process';
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

/** True when this machine lets us create a user namespace and set its inotify limit. */
function canLimitInotify(): boolean {
  try {
    execFileSync('unshare', ['-U', '-r', 'sh', '-c', 'echo 8 > /proc/sys/user/max_inotify_watches'], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

const LIMITED = [
  'unshare',
  '-U',
  '-r',
  'sh',
  '-c',
  'echo 8 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"',
];

describe('aio daemon when inotify watches run out', () => {
  it('falls back to polling, reports it in status and still syncs every change', async (ctx) => {
    if (!canLimitInotify()) {
      if (process.env.CI === 'true') throw new Error('CI must allow unshare -U to test inotify exhaustion');
      ctx.skip();
    }
    const account = await startAccount();
    const dir = await fs.realpath(await tempDir('aio-inotify-'));
    for (let i = 0; i < 20; i++) {
      await fs.mkdir(path.join(dir, `d${i}`));
      await fs.writeFile(path.join(dir, `d${i}`, 'f.txt'), `file ${i}`);
    }
    const config = await tempDir('aio-inotify-config-');
    expect((await aio(['watch', 'add', dir, '/limited', '--mode', 'push'], config, account)).code).toBe(0);
    const daemon = await runDaemon(config, account, {}, LIMITED);

    const converged = async () =>
      waitFor(
        async () => sameFiles(await localFiles(dir), await remoteFiles(account.client, '/limited')),
        30_000,
        async () =>
          `local ${show(await localFiles(dir))} remote ${show(await remoteFiles(account.client, '/limited'))}`,
      );
    await converged();

    const status = await aio(['status', '--json'], config, account);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/"polling":\s*true/);
    expect(
      daemon.output() + (await fs.readFile(path.join(config, 'daemon.log'), 'utf8').catch(() => '')),
    ).toMatch(/poll/i);

    await fs.writeFile(path.join(dir, 'd7', 'new.txt'), 'written after the fallback');
    await fs.writeFile(path.join(dir, 'd3', 'f.txt'), 'changed after the fallback');
    await converged();
    expect(daemon.child.exitCode).toBeNull();
  }, 90_000);
});
