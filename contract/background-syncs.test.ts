import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackgroundSyncs } from './chunk-file.js';

/** A `datasync` whose calls are counted and settled by the test. */
function controlledHandle(): {
  handle: { datasync(): Promise<void> };
  calls: () => number;
  finish: (error?: Error) => void;
} {
  const pending: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  let calls = 0;
  return {
    handle: {
      datasync: () => {
        calls++;
        return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
      },
    },
    calls: () => calls,
    finish: (error) => {
      const next = pending.shift();
      if (!next) throw new Error('no flush in flight');
      if (error) next.reject(error);
      else next.resolve();
    },
  };
}

describe('BackgroundSyncs', () => {
  it('starts a flush once every so many bytes, never two at once', async () => {
    const h = controlledHandle();
    const syncs = new BackgroundSyncs(h.handle, 16);
    syncs.wrote(8);
    expect(h.calls()).toBe(0);
    syncs.wrote(8);
    expect(h.calls()).toBe(1);
    // Due again, but the first flush is still running: none is started.
    syncs.wrote(32);
    expect(h.calls()).toBe(1);
    h.finish();
    await syncs.drained();
    // Bytes written while it ran start the next one as soon as more arrive.
    syncs.wrote(16);
    expect(h.calls()).toBe(2);
    h.finish();
    await expect(syncs.settled()).resolves.toBeUndefined();
  });

  it('never flushes with an interval of 0', () => {
    const h = controlledHandle();
    const syncs = new BackgroundSyncs(h.handle, 0);
    syncs.wrote(1 << 30);
    expect(h.calls()).toBe(0);
  });

  it('throws the first failed flush from settled(), once the writing is over', async () => {
    const h = controlledHandle();
    const syncs = new BackgroundSyncs(h.handle, 4);
    syncs.wrote(4);
    h.finish(new Error('EIO: first'));
    await syncs.drained();
    syncs.wrote(4);
    h.finish(new Error('EIO: second'));
    await expect(syncs.settled()).rejects.toThrow('EIO: first');
  });

  it('flushes a real file', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-syncs-'));
    const file = path.join(dir, 'f');
    const handle = await fs.open(file, 'w');
    try {
      const syncs = new BackgroundSyncs(handle, 1024);
      await handle.write(Buffer.alloc(4096, 1), 0, 4096, 0);
      syncs.wrote(4096);
      await syncs.settled();
      expect((await handle.stat()).size).toBe(4096);
    } finally {
      await handle.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
