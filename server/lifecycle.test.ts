import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { periodic, startTasks, stopTasks, type BackgroundTask } from './lifecycle.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('periodic', () => {
  it('runs again after each interval, never two runs at once, and keeps going after a failure', async () => {
    const { logger, lines } = capture();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const task = periodic(
      'sweep',
      5,
      async () => {
        runs += 1;
        active += 1;
        maxActive = Math.max(maxActive, active);
        await sleep(15);
        active -= 1;
        if (runs === 1) throw new Error('first run fails');
      },
      { logger, firstDelayMs: 0 },
    );
    task.start();
    await expect.poll(() => runs, { timeout: 2000 }).toBeGreaterThanOrEqual(3);
    await task.stop();
    expect(maxActive).toBe(1);
    expect(lines).toContainEqual(expect.objectContaining({ task: 'sweep', msg: 'background task failed' }));
    const after = runs;
    await sleep(50);
    expect(runs).toBe(after);
  });

  it('stop() aborts the signal of the run in progress and waits for it to end', async () => {
    const { logger, lines } = capture();
    let sawAbort = false;
    let ended = false;
    const task = periodic(
      'relay',
      1000,
      async (signal) => {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        sawAbort = signal.aborted;
        await sleep(20);
        ended = true;
        throw new Error('aborted on purpose');
      },
      { logger, firstDelayMs: 0 },
    );
    task.start();
    await sleep(20);
    await task.stop();
    expect(sawAbort).toBe(true);
    expect(ended).toBe(true);
    // An error raised because of the abort is not reported as a failure.
    expect(lines.some((l) => l.msg === 'background task failed')).toBe(false);
  });
});

describe('startTasks / stopTasks', () => {
  it('starts in order, stops in reverse order, and stops the rest when one stop fails', async () => {
    const { logger, lines } = capture();
    const events: string[] = [];
    const make = (name: string, failStop = false): BackgroundTask => ({
      name,
      start: () => void events.push(`start ${name}`),
      stop: async () => {
        events.push(`stop ${name}`);
        if (failStop) throw new Error(`${name} stuck`);
      },
    });
    const tasks = [make('a'), make('b', true), make('c')];
    startTasks(tasks, logger);
    await stopTasks(tasks, logger);
    expect(events).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
    expect(lines).toContainEqual(
      expect.objectContaining({ task: 'b', msg: 'stopping a background task failed' }),
    );
  });
});
