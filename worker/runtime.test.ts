import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqlite, type SqliteDatabase } from '../core/sqlite.js';
import { EmbeddedJobQueue } from '../core/adapters/queue/embedded.js';
import { PermanentJobError, type Job } from '../core/ports/job-queue.js';
import { Metrics } from '../server/metrics.js';
import { startWorker, type WorkerRuntime } from './runtime.js';

/** A pino logger writing JSON lines into an array. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('startWorker', () => {
  let db: SqliteDatabase;
  let queue: EmbeddedJobQueue;
  let runtime: WorkerRuntime | undefined;

  beforeEach(() => {
    db = openSqlite(':memory:');
    queue = new EmbeddedJobQueue(db, { pollIntervalMs: 10, logger: pino({ level: 'silent' }) });
  });

  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
    await queue.close();
    db.close();
  });

  it('consumes only the queues that have a handler', async () => {
    const { logger } = capturingLogger();
    const seen: Job[] = [];
    runtime = await startWorker(
      { queue, logger },
      { 'file.upload': async (job) => void seen.push(job) },
      { concurrency: 1 },
    );
    expect(runtime.queues).toEqual(['file.upload']);
    await queue.publish({ queue: 'file.download', payload: { n: 1 }, idempotencyKey: 'd1' });
    await queue.publish({ queue: 'file.upload', payload: { n: 2 }, idempotencyKey: 'u1' });
    await until(() => seen.length === 1);
    expect(seen[0]?.payload).toEqual({ n: 2 });
    expect((await queue.depth('file.download')).ready).toBe(1);
  });

  it('logs and measures each job with its queue, id, attempt, duration and outcome', async () => {
    const { logger, lines } = capturingLogger();
    const metrics = new Metrics({ defaultMetrics: false });
    runtime = await startWorker(
      { queue, logger },
      {
        'file.upload': async () => undefined,
        'video.transcode': async () => {
          throw new PermanentJobError('not a video');
        },
      },
      { concurrency: 2, metrics },
    );
    const ok = await queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'a' });
    const bad = await queue.publish({ queue: 'video.transcode', payload: {}, idempotencyKey: 'b' });
    await until(
      () =>
        lines.some((l) => l.jobId === ok.id && l.outcome) &&
        lines.some((l) => l.jobId === bad.id && l.outcome),
    );

    const done = lines.find((l) => l.jobId === ok.id && l.outcome);
    expect(done).toMatchObject({ queue: 'file.upload', attempt: 1, outcome: 'success', msg: 'job done' });
    expect(typeof done?.durationMs).toBe('number');
    const failed = lines.find((l) => l.jobId === bad.id && l.outcome);
    expect(failed).toMatchObject({ queue: 'video.transcode', attempt: 1, outcome: 'dead', level: 50 });
    expect((failed?.err as { message?: string }).message).toBe('not a video');

    const text = await metrics.registry.metrics();
    expect(text).toMatch(/aio_job_duration_seconds_count\{queue="file.upload",outcome="success"\} 1/);
    expect(text).toMatch(/aio_job_duration_seconds_count\{queue="video.transcode",outcome="dead"\} 1/);
    expect(text).toMatch(/aio_job_failures_total\{queue="video.transcode"\} 1/);
  });

  it('labels a failure before the last attempt as a retry', async () => {
    const { logger, lines } = capturingLogger();
    runtime = await startWorker(
      { queue, logger },
      {
        'file.upload': async () => {
          throw new Error('disk busy');
        },
      },
      { concurrency: 1, maxAttempts: 3 },
    );
    const job = await queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'r' });
    await until(() => lines.some((l) => l.jobId === job.id && l.outcome));
    expect(lines.find((l) => l.jobId === job.id && l.outcome)).toMatchObject({
      outcome: 'retry',
      attempt: 1,
      level: 40,
    });
  });

  it('stop() waits for the job in flight to finish', async () => {
    const { logger } = capturingLogger();
    let release: () => void = () => undefined;
    let started = false;
    let finished = false;
    runtime = await startWorker(
      { queue, logger },
      {
        'file.upload': async () => {
          started = true;
          await new Promise<void>((r) => (release = r));
          finished = true;
        },
      },
      { concurrency: 1 },
    );
    await queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 's' });
    await until(() => started);
    let stopped = false;
    const stopping = runtime.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(true);
    expect((await queue.depth('file.upload')).ready + (await queue.depth('file.upload')).inFlight).toBe(0);
  });
});
