import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job, JobQueue } from '../../ports/job-queue.js';
import { jobQueueSuite } from '../../testing/job-queue.suite.js';
import type { SqliteDatabase } from '../../sqlite.js';
import { openSqlite } from '../../sqlite.js';
import type { EmbeddedJobQueueOptions } from './embedded.js';
import { EmbeddedJobQueue } from './embedded.js';

const TEST_OPTIONS: EmbeddedJobQueueOptions = { pollIntervalMs: 25, visibilityTimeoutMs: 400 };

/** Temp database files and the queues opened on them, each with its own handle (like a process). */
function sqliteHarness(options: EmbeddedJobQueueOptions = TEST_OPTIONS) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-queue-'));
  const file = path.join(dir, 'aio.sqlite');
  const open = new Map<EmbeddedJobQueue, SqliteDatabase>();
  return {
    file,
    async open(): Promise<EmbeddedJobQueue> {
      const db = openSqlite(file);
      const queue = new EmbeddedJobQueue(db, options);
      open.set(queue, db);
      return queue;
    },
    async close(queue: JobQueue): Promise<void> {
      const q = queue as EmbeddedJobQueue;
      await q.close();
      open.get(q)?.close();
      open.delete(q);
    },
    async crash(queue: JobQueue): Promise<void> {
      const q = queue as EmbeddedJobQueue;
      q.abandon();
      open.get(q)?.close();
      open.delete(q);
    },
    async cleanup(): Promise<void> {
      // abandon, not close: a failed test may have left a handler that never finishes.
      for (const [queue, db] of open) {
        queue.abandon();
        db.close();
      }
      open.clear();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

jobQueueSuite('EmbeddedJobQueue (SQLite file)', async () => sqliteHarness());

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('EmbeddedJobQueue', () => {
  let harness: ReturnType<typeof sqliteHarness>;

  beforeEach(() => {
    harness = sqliteHarness();
  });

  afterEach(async () => {
    await harness.cleanup();
  });

  it('never delivers a job to two instances on one database file at the same time', async () => {
    const a = await harness.open();
    const b = await harness.open();
    const total = 60;
    for (let i = 0; i < total; i++) {
      await a.publish({ queue: 'file.upload', payload: { i }, idempotencyKey: `job-${i}` });
    }
    const seen = new Map<string, string[]>();
    const handler = (who: string) => async (job: Job) => {
      seen.set(job.idempotencyKey, [...(seen.get(job.idempotencyKey) ?? []), who]);
      await sleep(5);
    };
    const ca = await a.consume('file.upload', handler('a'), { concurrency: 3 });
    const cb = await b.consume('file.upload', handler('b'), { concurrency: 3 });
    await waitFor('every job', () => seen.size === total);
    await sleep(150);
    await Promise.all([ca.stop(), cb.stop()]);

    expect([...seen.values()].every((who) => who.length === 1)).toBe(true);
    const byA = [...seen.values()].filter((who) => who[0] === 'a').length;
    expect(byA).toBeGreaterThan(0);
    expect(byA).toBeLessThan(total);
    expect(await a.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 0 });
  });

  it('shares one database file with a worker in another process without delivering a job twice', async () => {
    const fixture = fileURLToPath(new URL('./embedded-worker.fixture.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, harness.file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const byChild: string[] = [];
      let buffered = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        byChild.push(...lines);
      });
      await waitFor('the worker process', () => byChild.includes('ready'), 20_000);

      const server = await harness.open();
      const byParent: string[] = [];
      const consumer = await server.consume(
        'file.upload',
        async (job) => {
          byParent.push(job.idempotencyKey);
          await sleep(5);
        },
        { concurrency: 2 },
      );
      const total = 80;
      for (let i = 0; i < total; i++) {
        await server.publish({ queue: 'file.upload', payload: { i }, idempotencyKey: `job-${i}` });
      }
      const handled = () => [...byParent, ...byChild.filter((l) => l !== 'ready')];
      await waitFor('every job', () => handled().length >= total, 20_000);
      await sleep(200);
      await consumer.stop();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);

      const keys = handled();
      expect(keys).toHaveLength(total);
      expect(new Set(keys).size).toBe(total);
      expect(byParent.length).toBeGreaterThan(0);
      expect(byChild.length - 1).toBeGreaterThan(0);
      expect(await server.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 0 });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('extends the lease of a handler that runs longer than the visibility timeout', async () => {
    const a = await harness.open();
    const b = await harness.open();
    await a.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'long' });
    const deliveries: string[] = [];
    const ca = await a.consume('file.upload', async () => {
      deliveries.push('a');
      await sleep(1200); // three times the 400 ms lease
    });
    await waitFor('the first delivery', () => deliveries.length === 1);
    const cb = await b.consume('file.upload', async () => void deliveries.push('b'));
    await ca.stop();
    await sleep(100);
    await cb.stop();
    expect(deliveries).toEqual(['a']);
    expect((await b.depth('file.upload')).inFlight).toBe(0);
  });

  it('wakes a consumer in the same process at once when a job is published', async () => {
    const slow = sqliteHarness({ pollIntervalMs: 60_000 });
    try {
      const server = await slow.open();
      const worker = await slow.open();
      const got: number[] = [];
      const consumer = await worker.consume('file.upload', async () => void got.push(Date.now()));
      await sleep(50); // the consumer's first (empty) poll is over
      const publishedAt = Date.now();
      await server.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'wake' });
      await waitFor('the delivery', () => got.length === 1, 2000);
      expect((got[0] as number) - publishedAt).toBeLessThan(500);
      await consumer.stop();
    } finally {
      await slow.cleanup();
    }
  });

  it('leaves the shared database open when closed, and refuses to publish afterwards', async () => {
    const db = openSqlite(path.join(path.dirname(harness.file), 'shared.sqlite'));
    try {
      const queue = new EmbeddedJobQueue(db, TEST_OPTIONS);
      await queue.close();
      expect(db.open).toBe(true);
      expect(db.prepare('SELECT COUNT(*) AS n FROM jobs').get()).toEqual({ n: 0 });
      await expect(
        queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'x' }),
      ).rejects.toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
      });
    } finally {
      db.close();
    }
  });

  it('applies its migrations once, so a second instance on the same handle reuses the table', async () => {
    const db = openSqlite(path.join(path.dirname(harness.file), 'twice.sqlite'));
    try {
      const first = new EmbeddedJobQueue(db, TEST_OPTIONS);
      await first.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'x' });
      const second = new EmbeddedJobQueue(db, TEST_OPTIONS);
      expect((await second.depth('file.upload')).ready).toBe(1);
      expect(
        db.prepare("SELECT COUNT(*) AS n FROM schema_migrations WHERE component = 'queue'").get(),
      ).toEqual({
        n: 1,
      });
    } finally {
      db.close();
    }
  });

  it('rejects a priority outside 0..9', async () => {
    const queue = await harness.open();
    await expect(
      queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'p', priority: 10 }),
    ).rejects.toThrow(RangeError);
    await expect(
      queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'p', priority: 1.5 }),
    ).rejects.toThrow(RangeError);
  });

  it('answers UnavailableError when its database is gone', async () => {
    const db = openSqlite(path.join(path.dirname(harness.file), 'gone.sqlite'));
    const queue = new EmbeddedJobQueue(db, TEST_OPTIONS);
    db.close();
    await expect(queue.ping()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    await expect(queue.depth('file.upload')).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });
});
