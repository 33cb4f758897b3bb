/**
 * FolderWatcher started after a scan (`start(changedSince)`): what changed since the
 * scan began is hinted while the watches are set up, what is older is not, and later
 * events are hinted as before. Real chokidar on a real folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { IgnoreRules } from './ignore.js';
import { FolderWatcher } from './watcher.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-watcher-'));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  for (const dir of ['a', 'b', 'c']) {
    fs.mkdirSync(path.join(root, dir));
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(root, dir, `f${i}.txt`), `${dir}${i}`);
  }
  return root;
}

function watcher(root: string, usePolling = false): { w: FolderWatcher; hints: Set<string> } {
  const hints = new Set<string>();
  const w = new FolderWatcher({
    root,
    rules: new IgnoreRules(root),
    log: pino({ level: 'silent' }),
    onHint: (rel) => hints.add(rel),
    usePolling,
  });
  cleanups.push(() => w.close());
  return { w, hints };
}

/** Until `check` holds (or fails the test after 5 s). */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

/** A moment after everything written so far, on the file system's clock (coarse, a tick behind). */
async function pastEverything(root: string): Promise<number> {
  await sleep(50);
  const probe = path.join(root, '.clock');
  fs.writeFileSync(probe, '');
  const t = fs.statSync(probe).ctimeMs + 1;
  fs.rmSync(probe);
  await sleep(50);
  return t;
}

describe('FolderWatcher.start(changedSince)', () => {
  for (const usePolling of [false, true]) {
    it(`hints what changed since, and only that (${usePolling ? 'polling' : 'inotify'})`, async () => {
      const root = tree();
      const since = await pastEverything(root);
      // Changed "between the scan and the watch": a new file, an edited file, a deleted
      // file (only its folder's mtime tells), a new folder with a file in it.
      fs.writeFileSync(path.join(root, 'a', 'new.txt'), 'new');
      fs.appendFileSync(path.join(root, 'b', 'f3.txt'), ' edited');
      fs.rmSync(path.join(root, 'c', 'f7.txt'));
      fs.mkdirSync(path.join(root, 'd'));
      fs.writeFileSync(path.join(root, 'd', 'inner.txt'), 'inner');
      const { w, hints } = watcher(root, usePolling);
      w.start(since);
      expect(w.ready).toBe(false);
      // Ready only once the folders changed since were checked too.
      await until(() => w.ready);
      expect(hints).toContain('c');
      await sleep(300);
      expect(hints).toContain('a/new.txt');
      expect(hints).toContain('b/f3.txt');
      expect(hints).toContain('c'); // the deleted file's folder
      expect(hints).toContain('d');
      // Nothing older than `since` is hinted: not the untouched files, not `b` (no entry of it came or went).
      for (const old of ['a/f0.txt', 'b/f0.txt', 'c/f0.txt', 'b', 'a/f3.txt'])
        expect(hints).not.toContain(old);
    });
  }

  it('a restart before the first walk is done (a fallback to polling) still hints what changed since', async () => {
    const root = tree();
    const since = await pastEverything(root);
    fs.writeFileSync(path.join(root, 'b', 'between.txt'), 'between');
    const { w, hints } = watcher(root);
    w.start(since);
    await w.restart();
    await until(() => w.ready);
    expect(hints).toContain('b/between.txt');
    expect(hints).toContain('b');
    expect(hints).not.toContain('a/f0.txt');
  });

  it('without changedSince hints nothing at start, then the changes that follow; a second start is a no-op', async () => {
    const root = tree();
    fs.writeFileSync(path.join(root, 'a', 'just-written.txt'), 'x');
    const { w, hints } = watcher(root);
    w.start();
    // Had this started a second chokidar, `0` would hint every entry.
    w.start(0);
    await sleep(500);
    expect(hints.size).toBe(0);
    fs.writeFileSync(path.join(root, 'b', 'later.txt'), 'later');
    await until(() => hints.has('b/later.txt'));
  });
});
