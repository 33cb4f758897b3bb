import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/domain/clock.js';
import { TrashPurge } from '../server/files/trash-purge.js';
import { createFilesTestApp, putFile, type FilesTestApp } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';

const DAY = 86_400_000;
let f: FilesTestApp;
let user: TestUser;
const clock = new ManualClock(Date.UTC(2026, 4, 1));

beforeAll(async () => {
  f = await createFilesTestApp({ clock });
  user = await createTestUser(f.t);
});
afterAll(async () => {
  await f?.t.close();
});

async function trash(path: string): Promise<{ id: string; sha256: string }> {
  const node = await putFile(f.t, user, path, `bytes of ${path}`);
  await f.t.deps.metadata.trashNode(user.id, node.id, clock.now());
  return { id: node.id, sha256: node.sha256 as string };
}

describe('TrashPurge', () => {
  it('purges only what has been in the trash for 30 days, deleting unreferenced blobs', async () => {
    const purge = new TrashPurge({ ...f.t.deps, intervalMs: 60_000 });
    const old = await trash('/p1/old.bin');
    clock.advance(20 * DAY);
    const young = await trash('/p1/young.bin');
    clock.advance(11 * DAY);
    const seq = await f.t.deps.metadata.latestChangeSeq(user.id);

    const result = await purge.runOnce();

    expect(result).toEqual({ purged: 1, blobsDeleted: 1, keepsExpired: 0 });
    expect(await f.t.deps.metadata.getNode(user.id, old.id)).toBeNull();
    expect(await f.t.deps.blobs.stat(old.sha256)).toBeNull();
    expect(await f.t.deps.metadata.getNode(user.id, young.id)).not.toBeNull();
    expect(await f.t.deps.blobs.stat(young.sha256)).not.toBeNull();
    const [change] = await f.t.deps.metadata.listChanges(user.id, seq, 10);
    expect(change).toMatchObject({ kind: 'purge', nodeId: old.id });
  });

  it('sweeps at once on start, and stop waits for the sweep', async () => {
    const stale = await trash('/p2/stale.bin');
    clock.advance(31 * DAY);
    const purge = new TrashPurge({ ...f.t.deps, intervalMs: 60_000 });
    purge.start();
    await purge.stop();
    expect(await f.t.deps.metadata.getNode(user.id, stale.id)).toBeNull();
  });

  it('skips a sweep while another instance holds the lock', async () => {
    const held = await trash('/p3/held.bin');
    clock.advance(31 * DAY);
    const lock = await f.t.deps.cache.tryLock('lock:trash-purge', 60_000);
    expect(lock).not.toBeNull();
    const purge = new TrashPurge({ ...f.t.deps });
    expect(await purge.runOnce()).toEqual({ purged: 0, blobsDeleted: 0, keepsExpired: 0 });
    expect(await f.t.deps.metadata.getNode(user.id, held.id)).not.toBeNull();
    await lock?.release();
    expect((await purge.runOnce()).purged).toBe(1);
  });
});
