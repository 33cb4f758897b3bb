/**
 * The syncer's batching of uploads: at most `batchesInFlight` batches of at most
 * `batchSize` uploads run at once, other operations a little further down the queue still
 * start beside them within `concurrency`, and every queued upload ends up in exactly one
 * batch. A new tree's mkdirs go as one batch before the uploads below them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Connectivity } from './connectivity.js';
import { Journal, type OpKind, type Operation } from './journal.js';
import type { BatchResult, Outcome } from './operations.js';
import { Syncer, type SyncerOptions } from './syncer.js';

const dirs: string[] = [];
const journals: Journal[] = [];
afterEach(() => {
  for (const j of journals.splice(0)) j.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function openJournal(): Journal {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-syncer-'));
  dirs.push(dir);
  const journal = Journal.open(path.join(dir, 'journal.db'));
  journals.push(journal);
  return journal;
}

/** A promise with its resolve function, to finish a task when the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const until = async (what: string, check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

type Queued = Array<[OpKind, string]>;

/**
 * A syncer over a fresh journal holding `queue`, with the test's task runners; `idle()`
 * says whether the queue has drained. Call `syncer.stop()` at the end.
 */
function syncerFor(
  queue: Queued,
  runners: Pick<SyncerOptions, 'run' | 'runBatch' | 'runMkdirs'>,
  concurrency = 4,
): { syncer: Syncer; journal: Journal; left: () => number; idle: () => boolean } {
  const journal = openJournal();
  const folderId = journal.folder('/tmp/x', '/x', 'acct').id;
  journal.transaction(() => {
    for (const [op, p] of queue) journal.enqueue(folderId, op, p);
  });
  let idle = false;
  const syncer = new Syncer({
    folderId,
    journal,
    connectivity: new Connectivity(1_000),
    concurrency,
    retryBaseMs: 10,
    retryMaxMs: 100,
    log: pino({ level: 'silent' }),
    ...runners,
    onRescan: () => undefined,
    onIdle: () => {
      idle = true;
    },
  });
  return { syncer, journal, left: () => journal.countOps(folderId), idle: () => idle };
}

const allDone = (ops: Operation[], outcome: Outcome = { kind: 'done' }): BatchResult =>
  new Map(ops.map((op) => [op.id, { outcome }]));

describe('Syncer batches', () => {
  it('runs at most three batches of at most 500 uploads at once, and other operations beside them', async () => {
    const uploads = (from: number, to: number): Queued =>
      Array.from({ length: to - from }, (_, i) => ['upload', `d/f${from + i}.bin`]);
    const running: Array<{ ops: Operation[]; done: () => void }> = [];
    const batched: string[] = [];
    let peakBatches = 0;
    const singles: string[] = [];
    const { syncer, left, idle } = syncerFor(
      [...uploads(0, 1_100), ['mkdir', 'other'], ...uploads(1_100, 1_600)],
      {
        run: async (op) => {
          singles.push(op.path);
          return { kind: 'done' };
        },
        runBatch: async (ops) => {
          const g = gate();
          running.push({ ops, done: g.open });
          peakBatches = Math.max(peakBatches, running.length);
          await g.promise;
          running.splice(
            running.findIndex((r) => r.ops === ops),
            1,
          );
          batched.push(...ops.map((op) => op.path));
          return allDone(ops);
        },
      },
    );
    syncer.kick();
    await until('three batches', () => running.length === 3);
    expect(running.map((r) => r.ops.length)).toEqual([500, 500, 500]);
    // The mkdir, queued after 1,100 uploads, did not wait for the batches.
    await until('the mkdir', () => singles.includes('other'));
    expect(singles).toEqual(['other']);
    // Finishing a batch lets the next one start, never a fourth at once.
    while (!idle()) {
      const next = running[0];
      if (next) next.done();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(peakBatches).toBe(3);
    expect(batched.sort()).toEqual(Array.from({ length: 1_600 }, (_, i) => `d/f${i}.bin`).sort());
    expect(left()).toBe(0);
    await syncer.stop();
  });

  it('sends a new tree’s mkdirs as one batch, nested ones too, before the uploads below them', async () => {
    const dirs = ['a', 'a/b', 'a/b/c', 'd'];
    const events: string[] = [];
    const mkdirGate = gate();
    const { syncer, left, idle } = syncerFor(
      [
        ...dirs.map((d): [OpKind, string] => ['mkdir', d]),
        ...dirs.map((d): [OpKind, string] => ['upload', `${d}/f.bin`]),
      ],
      {
        run: async (op) => {
          events.push(`${op.op} ${op.path}`);
          return { kind: 'done' };
        },
        runBatch: async (ops) => {
          events.push(`uploads ${ops.map((op) => op.path).join(',')}`);
          return allDone(ops);
        },
        runMkdirs: async (ops) => {
          events.push(`mkdirs ${ops.map((op) => op.path).join(',')}`);
          await mkdirGate.promise;
          return allDone(ops);
        },
      },
    );
    syncer.kick();
    await until('the mkdirs', () => events.length > 0);
    await new Promise((r) => setTimeout(r, 30));
    // One request for all four folders; nothing below them starts while it runs.
    expect(events).toEqual(['mkdirs a,a/b,a/b/c,d']);
    mkdirGate.open();
    await until('idle', idle);
    expect(events).toEqual(['mkdirs a,a/b,a/b/c,d', 'uploads a/f.bin,a/b/f.bin,a/b/c/f.bin,d/f.bin']);
    expect(left()).toBe(0);
    await syncer.stop();
  });

  it('starts the mkdirs at the head of the queue before the operations after them fill the pool', async () => {
    const started: string[] = [];
    const gates: Array<() => void> = [];
    const hold = async (what: string): Promise<void> => {
      started.push(what);
      const g = gate();
      gates.push(g.open);
      await g.promise;
    };
    const deletes = Array.from({ length: 6 }, (_, i): [OpKind, string] => ['delete', `old${i}`]);
    const { syncer, left, idle } = syncerFor(
      [['mkdir', 'm1'], ['mkdir', 'm2'], ...deletes],
      {
        run: async (op) => {
          await hold(`${op.op} ${op.path}`);
          return { kind: 'done' };
        },
        runMkdirs: async (ops) => {
          await hold(`mkdirs ${ops.map((op) => op.path).join(',')}`);
          return allDone(ops);
        },
      },
      2,
    );
    syncer.kick();
    await until('two tasks', () => started.length === 2);
    expect(started).toEqual(['mkdirs m1,m2', 'delete old0']);
    while (!idle()) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(left()).toBe(0);
    await syncer.stop();
  });

  it('reads a page or so of the queue per turn while a new tree’s files wait for its mkdirs', async () => {
    const files = Array.from({ length: 5_000 }, (_, i): [OpKind, string] => [
      'upload',
      `${i % 2 ? 'a' : 'b'}/f${i}`,
    ]);
    const mkdirsGate = gate();
    const { syncer, journal, left, idle } = syncerFor([['mkdir', 'a'], ['mkdir', 'b'], ...files], {
      run: async () => ({ kind: 'done' }),
      runBatch: async (ops) => allDone(ops),
      runMkdirs: async (ops) => {
        await mkdirsGate.promise;
        return allDone(ops);
      },
    });
    let rowsRead = 0;
    const opsAfter = journal.opsAfter.bind(journal);
    journal.opsAfter = (...args: Parameters<Journal['opsAfter']>) => {
      const rows = opsAfter(...args);
      rowsRead += rows.length;
      return rows;
    };
    syncer.kick();
    for (let i = 0; i < 5; i++) syncer.kick();
    // Six turns while the mkdirs run: each stops a page past the files that must wait.
    expect(rowsRead).toBeLessThanOrEqual(6 * 2 * 256);
    mkdirsGate.open();
    await until('idle', idle);
    expect(left()).toBe(0);
    await syncer.stop();
  });

  it('runs the mkdirs one by one when the batch answers single (an older server)', async () => {
    const singles: string[] = [];
    let batches = 0;
    const { syncer, left, idle } = syncerFor(
      [
        ['mkdir', 'p'],
        ['mkdir', 'q'],
      ],
      {
        run: async (op) => {
          singles.push(op.path);
          return { kind: 'done' };
        },
        runMkdirs: async (ops) => {
          batches++;
          return allDone(ops, { kind: 'single' });
        },
      },
    );
    syncer.kick();
    await until('idle', idle);
    expect(batches).toBe(1);
    expect(singles.sort()).toEqual(['p', 'q']);
    expect(left()).toBe(0);
    await syncer.stop();
  });
});
