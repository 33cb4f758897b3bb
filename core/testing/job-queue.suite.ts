/**
 * The conformance suite every `JobQueue` adapter passes. Each test gets a fresh,
 * isolated backend from `factory` and real time (small backoff values keep it fast).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job, JobQueue } from '../ports/job-queue.js';
import { PermanentJobError, PRIORITY } from '../ports/job-queue.js';

export interface JobQueueHarness {
  /**
   * Opens an instance on this test's backend with its own connection (database handle,
   * AMQP connection), as a separate process would.
   */
  open(): Promise<JobQueue>;
  /** Closes `queue` gracefully together with what `open` created for it (e.g. its database handle). */
  close(queue: JobQueue): Promise<void>;
  /**
   * Ends `queue` as a crash would: nothing in flight is acknowledged or waited for.
   * Its unacknowledged jobs must then reach another instance's consumer.
   */
  crash(queue: JobQueue): Promise<void>;
  /** Closes what is still open and deletes the backend's state (files, queues). */
  cleanup(): Promise<void>;
}

/** Small delays so retries finish in well under a second. */
const FAST = { baseDelayMs: 100, maxDelayMs: 1000 } as const;

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function jobQueueSuite(name: string, factory: () => Promise<JobQueueHarness>): void {
  describe(`JobQueue conformance: ${name}`, () => {
    let harness: JobQueueHarness;
    let queue: JobQueue;

    beforeEach(async () => {
      harness = await factory();
      queue = await harness.open();
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    it('answers ping', async () => {
      await expect(queue.ping()).resolves.toBeUndefined();
    });

    it('delivers a published job with its payload, idempotency key, priority and attempt 1', async () => {
      const before = Date.now();
      const { id } = await queue.publish({
        queue: 'file.upload',
        payload: { uploadId: 'u1', nested: { n: 3, list: [1, 'two'] } },
        idempotencyKey: 'upload:u1',
        priority: PRIORITY.interactive,
      });
      const got: Job[] = [];
      const consumer = await queue.consume('file.upload', async (job) => {
        got.push(job);
      });
      await waitFor('the delivery', () => got.length === 1);
      await consumer.stop();

      const job = got[0] as Job;
      expect(job.id).toBe(id);
      expect(job.queue).toBe('file.upload');
      expect(job.payload).toEqual({ uploadId: 'u1', nested: { n: 3, list: [1, 'two'] } });
      expect(job.idempotencyKey).toBe('upload:u1');
      expect(job.priority).toBe(PRIORITY.interactive);
      expect(job.attempt).toBe(1);
      expect(job.publishedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(job.publishedAt.getTime()).toBeLessThanOrEqual(Date.now());
      expect(await queue.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 0 });
    });

    it('uses the normal priority when none is given', async () => {
      await queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'k' });
      const got: Job[] = [];
      const consumer = await queue.consume('file.upload', async (job) => void got.push(job));
      await waitFor('the delivery', () => got.length === 1);
      await consumer.stop();
      expect(got[0]?.priority).toBe(PRIORITY.normal);
    });

    it('delivers jobs only to consumers of their queue', async () => {
      await queue.publish({ queue: 'video.transcode', payload: { v: 1 }, idempotencyKey: 'v1' });
      await queue.publish({ queue: 'file.download', payload: { d: 1 }, idempotencyKey: 'd1' });
      const seen: string[] = [];
      const consumer = await queue.consume(
        'file.download',
        async (job) => void seen.push(job.idempotencyKey),
      );
      await waitFor('the download job', () => seen.length === 1);
      await sleep(200);
      await consumer.stop();
      expect(seen).toEqual(['d1']);
      expect((await queue.depth('video.transcode')).ready).toBe(1);
    });

    it('retries a failing handler with growing delays and an increasing attempt number', async () => {
      await queue.publish({ queue: 'file.upload', payload: { x: 1 }, idempotencyKey: 'retry-me' });
      const calls: { attempt: number; at: number; id: string }[] = [];
      const consumer = await queue.consume(
        'file.upload',
        async (job) => {
          calls.push({ attempt: job.attempt, at: Date.now(), id: job.id });
          if (job.attempt < 3) throw new Error(`transient failure ${job.attempt}`);
        },
        { ...FAST, maxAttempts: 5 },
      );
      await waitFor('the third attempt', () => calls.length === 3);
      await sleep(150);
      await consumer.stop();

      expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
      expect(new Set(calls.map((c) => c.id)).size).toBe(1);
      const [first, second, third] = calls as [(typeof calls)[0], (typeof calls)[0], (typeof calls)[0]];
      // Retry 1 waits baseDelayMs, retry 2 twice that (a little slack for timer granularity).
      expect(second.at - first.at).toBeGreaterThanOrEqual(FAST.baseDelayMs - 15);
      expect(third.at - second.at).toBeGreaterThanOrEqual(2 * FAST.baseDelayMs - 15);
      expect(await queue.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 0 });
    });

    it('dead-letters a job after maxAttempts failures, keeping the last error, without removing it on listing', async () => {
      const { id } = await queue.publish({
        queue: 'file.upload',
        payload: { bad: true },
        idempotencyKey: 'doomed',
        priority: 7,
      });
      let calls = 0;
      const consumer = await queue.consume(
        'file.upload',
        async (job) => {
          calls++;
          throw new Error(`broken on attempt ${job.attempt}`);
        },
        { baseDelayMs: 50, maxDelayMs: 100, maxAttempts: 3 },
      );
      await waitFor('the dead letter', async () => (await queue.depth('file.upload')).dead === 1);
      await sleep(300);
      await consumer.stop();
      expect(calls).toBe(3);

      const dead = await queue.listDead('file.upload', 10);
      expect(dead).toHaveLength(1);
      const entry = dead[0]!;
      expect(entry.error).toBe('broken on attempt 3');
      expect(entry.job.id).toBe(id);
      expect(entry.job.idempotencyKey).toBe('doomed');
      expect(entry.job.payload).toEqual({ bad: true });
      expect(entry.job.priority).toBe(7);
      expect(entry.job.attempt).toBe(3);
      expect(entry.failedAt).toBeInstanceOf(Date);
      // Listing again still shows it: listing does not consume.
      expect(await queue.listDead('file.upload', 10)).toHaveLength(1);
      expect(await queue.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 1 });
    });

    it('dead-letters at once when the handler throws PermanentJobError', async () => {
      await queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'hopeless' });
      let calls = 0;
      const consumer = await queue.consume(
        'file.upload',
        async () => {
          calls++;
          throw new PermanentJobError('the upload is gone');
        },
        { ...FAST, maxAttempts: 5 },
      );
      await waitFor('the dead letter', async () => (await queue.listDead('file.upload', 10)).length === 1);
      await sleep(250);
      await consumer.stop();
      expect(calls).toBe(1);
      const [entry] = await queue.listDead('file.upload', 10);
      expect(entry?.error).toBe('the upload is gone');
      expect(entry?.job.attempt).toBe(1);
    });

    it('lists dead jobs oldest first, up to the limit', async () => {
      for (const key of ['d1', 'd2', 'd3']) {
        await queue.publish({ queue: 'file.upload', payload: { key }, idempotencyKey: key });
      }
      const consumer = await queue.consume('file.upload', async (job) => {
        throw new PermanentJobError(`no ${job.idempotencyKey}`);
      });
      await waitFor('three dead letters', async () => (await queue.depth('file.upload')).dead === 3);
      await consumer.stop();
      const two = await queue.listDead('file.upload', 2);
      expect(two.map((d) => d.job.idempotencyKey)).toEqual(['d1', 'd2']);
      expect(two.map((d) => d.error)).toEqual(['no d1', 'no d2']);
      expect(await queue.listDead('file.download', 10)).toEqual([]);
    });

    it('delivers the job again to another instance when the consumer dies before acknowledging', async () => {
      const { id } = await queue.publish({
        queue: 'file.upload',
        payload: { p: 1 },
        idempotencyKey: 'crashy',
      });
      const started = deferred<Job>();
      const never = deferred();
      await queue.consume('file.upload', async (job) => {
        started.resolve(job);
        await never.promise;
      });
      const first = await started.promise;
      expect(first.id).toBe(id);
      await harness.crash(queue);

      const survivor = await harness.open();
      const again: Job[] = [];
      const consumer = await survivor.consume('file.upload', async (job) => void again.push(job));
      await waitFor('the redelivery', () => again.length === 1, 10_000);
      // The dead consumer's handler finishing late must not disturb anything.
      never.resolve();
      await sleep(100);
      await consumer.stop();
      expect(again[0]?.id).toBe(id);
      expect(again[0]?.idempotencyKey).toBe('crashy');
      expect(again[0]?.payload).toEqual({ p: 1 });
      expect(again).toHaveLength(1);
      expect(await survivor.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 0 });
    });

    it('keeps published jobs across closing and reopening', async () => {
      const { id } = await queue.publish({
        queue: 'file.download',
        payload: { zip: 'a' },
        idempotencyKey: 'keep',
      });
      await harness.close(queue);

      const reopened = await harness.open();
      expect((await reopened.depth('file.download')).ready).toBe(1);
      const got: Job[] = [];
      const consumer = await reopened.consume('file.download', async (job) => void got.push(job));
      await waitFor('the kept job', () => got.length === 1);
      await consumer.stop();
      expect(got[0]?.id).toBe(id);
      expect(got[0]?.payload).toEqual({ zip: 'a' });
    });

    it('delivers the higher priority first when several jobs are waiting', async () => {
      await queue.publish({
        queue: 'file.upload',
        payload: {},
        idempotencyKey: 'bulk',
        priority: PRIORITY.bulk,
      });
      await queue.publish({
        queue: 'file.upload',
        payload: {},
        idempotencyKey: 'normal',
        priority: PRIORITY.normal,
      });
      await queue.publish({
        queue: 'file.upload',
        payload: {},
        idempotencyKey: 'interactive',
        priority: PRIORITY.interactive,
      });
      await queue.publish({
        queue: 'file.upload',
        payload: {},
        idempotencyKey: 'normal2',
        priority: PRIORITY.normal,
      });
      const order: string[] = [];
      const consumer = await queue.consume(
        'file.upload',
        async (job) => void order.push(job.idempotencyKey),
        {
          concurrency: 1,
        },
      );
      await waitFor('all four', () => order.length === 4);
      await consumer.stop();
      expect(order).toEqual(['interactive', 'normal', 'normal2', 'bulk']);
    });

    it('runs up to `concurrency` handlers at once', async () => {
      for (let i = 0; i < 4; i++)
        await queue.publish({ queue: 'file.upload', payload: { i }, idempotencyKey: `c${i}` });
      let running = 0;
      let peak = 0;
      const release = deferred();
      const consumer = await queue.consume(
        'file.upload',
        async () => {
          running++;
          peak = Math.max(peak, running);
          await release.promise;
          running--;
        },
        { concurrency: 2 },
      );
      await waitFor('two running', () => running === 2);
      await sleep(200);
      expect(running).toBe(2);
      release.resolve();
      await waitFor('all done', async () => (await queue.depth('file.upload')).ready === 0 && running === 0);
      await consumer.stop();
      expect(peak).toBe(2);
    });

    it('stop() waits for in-flight handlers and acknowledges their jobs', async () => {
      await queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'slow' });
      const started = deferred();
      let finished = false;
      const consumer = await queue.consume('file.upload', async () => {
        started.resolve();
        await sleep(300);
        finished = true;
      });
      await started.promise;
      await consumer.stop();
      expect(finished).toBe(true);
      expect(await queue.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 0 });

      // Nothing left to deliver: a new consumer sees nothing.
      const again: Job[] = [];
      const next = await queue.consume('file.upload', async (job) => void again.push(job));
      await sleep(300);
      await next.stop();
      expect(again).toEqual([]);
    });

    it('stops taking new jobs after stop()', async () => {
      const consumer = await queue.consume('file.upload', async () => undefined);
      await consumer.stop();
      await queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'later' });
      await sleep(300);
      expect((await queue.depth('file.upload')).ready).toBe(1);
    });

    it('counts ready, delayed, in-flight and dead jobs', async () => {
      expect(await queue.depth('file.upload')).toEqual({ ready: 0, delayed: 0, inFlight: 0, dead: 0 });
      await queue.publish({
        queue: 'file.upload',
        payload: { kind: 'block' },
        idempotencyKey: 'a',
        priority: 9,
      });
      await queue.publish({
        queue: 'file.upload',
        payload: { kind: 'retry' },
        idempotencyKey: 'b',
        priority: 5,
      });
      await queue.publish({
        queue: 'file.upload',
        payload: { kind: 'dead' },
        idempotencyKey: 'c',
        priority: 1,
      });
      expect(await queue.depth('file.upload')).toEqual({ ready: 3, delayed: 0, inFlight: 0, dead: 0 });

      const release = deferred();
      const blocked = deferred();
      const handled: string[] = [];
      const consumer = await queue.consume(
        'file.upload',
        async (job) => {
          handled.push(job.idempotencyKey);
          if (job.payload.kind === 'block') {
            blocked.resolve();
            await release.promise;
          } else if (job.payload.kind === 'retry') {
            throw new Error('later');
          } else {
            throw new PermanentJobError('never');
          }
        },
        // A long retry delay keeps the failed job waiting while we look.
        { concurrency: 1, baseDelayMs: 20_000, maxDelayMs: 20_000 },
      );
      await blocked.promise;
      await waitFor('one in flight', async () => {
        const d = await queue.depth('file.upload');
        return d.inFlight === 1 && d.ready === 2;
      });
      release.resolve();
      await waitFor('the other two handled', () => handled.length === 3);
      await consumer.stop();
      expect(await queue.depth('file.upload')).toEqual({ ready: 0, delayed: 1, inFlight: 0, dead: 1 });
    });
  });
}
