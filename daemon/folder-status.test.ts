/**
 * A watched folder's state while `resume` rescans it, against a real server and worker:
 * the queue is empty until the scan has planned the paused-time changes, and the folder
 * used to report `idle` (with a new "last sync") in that gap, as if everything were
 * pushed. Whoever waits for `idle` (`aio status`, scripts) then stopped too early.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../contract/client.js';
import { createTestUser, type TestUser } from '../test/helpers/app.js';
import { serveForUser, type Served } from '../test/helpers/serve.js';
import { startHarness, type UploadHarness } from '../test/uploads-harness.js';
import { Connectivity } from './connectivity.js';
import { SyncFolder } from './folder.js';
import { Journal } from './journal.js';
import { readTunables, type Tunables } from './tunables.js';

let h: UploadHarness;
let user: TestUser;
let served: Served;
let client: ApiClient;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-folder-status-'));

beforeAll(async () => {
  h = await startHarness();
  user = await createTestUser(h.t);
  served = await serveForUser(h.app, user);
  client = served.client;
});
afterAll(async () => {
  await served?.close();
  await h?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function folderFor(local: string, remote: string, api: ApiClient, tunables: Tunables): SyncFolder {
  return new SyncFolder({
    config: { local, remote, mode: 'push', paused: false },
    journal: Journal.open(path.join(dir, `journal-${path.basename(local)}.db`)),
    client: api,
    account: 'test',
    connectivity: new Connectivity(1_000),
    tunables,
    log: pino({ level: 'silent' }),
    host: 'test-host',
    trashDir: path.join(dir, `trash-${path.basename(local)}`),
  });
}

describe('SyncFolder watcher start', () => {
  it('sets up its watches once the first push has drained; a file written before that is pushed too', async () => {
    const local = path.join(dir, 'deferred');
    fs.mkdirSync(local);
    for (let i = 0; i < 150; i++) fs.writeFileSync(path.join(local, `f-${i}.txt`), `file ${i}`);
    // The cap is far away: the watcher must start because the push drained.
    const folder = folderFor(
      local,
      '/deferred',
      client,
      readTunables({
        AIO_DAEMON_SETTLE_MS: '0',
        AIO_DAEMON_DEBOUNCE_MS: '20',
        AIO_DAEMON_WATCH_DEFER_MS: '600000',
      }),
    );
    try {
      folder.start();
      const seen: Array<{ state: string; watching: boolean }> = [];
      let wroteLate = false;
      await until(() => {
        const s = folder.status();
        seen.push({ state: s.state, watching: s.watching });
        if (s.state === 'syncing' && !wroteLate) {
          // After the first scan, before any watch: only the watcher's walk can find it.
          fs.writeFileSync(path.join(local, 'late.txt'), 'written during the first push');
          wroteLate = true;
        }
        return s.state === 'idle' && s.queued === 0;
      });
      expect(wroteLate).toBe(true);
      expect(seen.filter((s) => s.state === 'syncing' && s.watching)).toEqual([]);
      await until(() => folder.status().watching);
      await until(async () => {
        const listed = await client.get<{ items: Array<{ name: string; status: string }> }>(
          '/api/v1/fs/list?path=%2Fdeferred&limit=1000',
        );
        return listed.items.filter((e) => e.status === 'ready').length === 151;
      });
    } finally {
      await folder.stop();
    }
  });

  it('sets up its watches after AIO_DAEMON_WATCH_DEFER_MS when the first push cannot drain', async () => {
    const local = path.join(dir, 'unreachable');
    fs.mkdirSync(local);
    fs.writeFileSync(path.join(local, 'a.txt'), 'a');
    // Nothing listens on port 1: the upload stays queued (offline, retried with backoff).
    const offline = new ApiClient('http://127.0.0.1:1', {
      current: async () => user.accessToken,
      refresh: async () => null,
    });
    const folder = folderFor(
      local,
      '/unreachable',
      offline,
      readTunables({ AIO_DAEMON_SETTLE_MS: '0', AIO_DAEMON_WATCH_DEFER_MS: '300' }),
    );
    try {
      folder.start();
      await until(() => folder.status().watching);
      expect(folder.status().queued).toBeGreaterThan(0);
      expect(folder.status().state).not.toBe('idle');
    } finally {
      await folder.stop();
    }
  });
});

describe('SyncFolder state around resume', () => {
  it('is not idle until the changes made while paused are pushed', async () => {
    const local = path.join(dir, 'local');
    fs.mkdirSync(local);
    fs.writeFileSync(path.join(local, 'first.txt'), 'first');
    const journal = Journal.open(path.join(dir, 'journal.db'));
    const folder = new SyncFolder({
      config: { local, remote: '/resumed', mode: 'push', paused: false },
      journal,
      client,
      account: 'test',
      connectivity: new Connectivity(1_000),
      tunables: readTunables({ AIO_DAEMON_SETTLE_MS: '0', AIO_DAEMON_DEBOUNCE_MS: '20' }),
      log: pino({ level: 'silent' }),
      host: 'test-host',
      trashDir: path.join(dir, 'trash'),
    });
    try {
      folder.start();
      await until(() => folder.status().state === 'idle');
      folder.pause();
      for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(local, `paused-${i}.txt`), `file ${i}`);
      const resumedAt = Date.now();

      folder.resume(false);
      expect(folder.status().state).toBe('scanning');
      await until(() => folder.status().state === 'idle');
      const status = folder.status();
      expect(status.queued).toBe(0);
      expect(Date.parse(status.lastSyncAt ?? '')).toBeGreaterThanOrEqual(resumedAt);
      // Idle means pushed: every file is on the server the moment the folder says so.
      const listed = await client.get<{ items: Array<{ name: string; status: string }> }>(
        '/api/v1/fs/list?path=%2Fresumed&limit=1000',
      );
      expect(listed.items.filter((e) => e.status === 'ready')).toHaveLength(301);
    } finally {
      await folder.stop();
      journal.close();
    }
  });
});
