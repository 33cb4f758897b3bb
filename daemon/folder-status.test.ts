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
import type { ApiClient } from '../contract/client.js';
import { createTestUser, type TestUser } from '../test/helpers/app.js';
import { serveForUser, type Served } from '../test/helpers/serve.js';
import { startHarness, type UploadHarness } from '../test/uploads-harness.js';
import { Connectivity } from './connectivity.js';
import { SyncFolder } from './folder.js';
import { Journal } from './journal.js';
import { readTunables } from './tunables.js';

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
