import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BodyMemory, RECLAIM_EVERY_BYTES, exposedMajorGc, exposedMinorGc } from './body-memory.js';

describe('BodyMemory', () => {
  it('collects once per RECLAIM_EVERY_BYTES of body, counted across calls (and requests)', () => {
    let collections = 0;
    const memory = new BodyMemory(() => collections++);
    const chunk = 64 * 1024;
    for (let seen = 0; seen < 3 * RECLAIM_EVERY_BYTES; seen += chunk) memory.received(chunk);
    expect(collections).toBe(3);
    memory.received(RECLAIM_EVERY_BYTES - 1);
    expect(collections).toBe(3);
    memory.received(1);
    expect(collections).toBe(4);
  });

  it('a single chunk bigger than the interval collects once; its bytes past the interval count on', () => {
    let collections = 0;
    const memory = new BodyMemory(() => collections++, 100);
    memory.received(350);
    expect(collections).toBe(1);
    memory.received(49);
    expect(collections).toBe(1);
    memory.received(1);
    expect(collections).toBe(2);
  });
});

describe('BodyMemory.sent', () => {
  it('runs a full collection once per interval of bytes sent, counted across responses', () => {
    let compactions = 0;
    const memory = new BodyMemory(
      () => undefined,
      100,
      () => compactions++,
      1_000,
    );
    memory.sent(600);
    expect(compactions).toBe(0);
    memory.sent(600);
    expect(compactions).toBe(1);
    // One collection however big the response; the bytes past the interval count on
    // (200 + 2,500 = 2,700: 700 towards the next).
    memory.sent(2_500);
    expect(compactions).toBe(2);
    memory.sent(299);
    expect(compactions).toBe(2);
    memory.sent(1);
    expect(compactions).toBe(3);
  });

  it('does nothing without a full collection to run', () => {
    let collections = 0;
    const memory = new BodyMemory(() => collections++, 100);
    memory.sent(10_000);
    expect(collections).toBe(0);
  });
});

describe('exposedMajorGc', () => {
  it('is null without --expose-gc, and asks gc for a full collection on a task of its own', () => {
    expect(exposedMajorGc({})).toBeNull();
    const calls: unknown[] = [];
    exposedMajorGc({ gc: (options: unknown) => calls.push(options) })?.();
    expect(calls).toEqual([{ type: 'major', execution: 'async' }]);
  });

  it("node's real gc takes those options", () => {
    const script = `gc({ type: 'major', execution: 'async' }).then(() => console.log('collected'));`;
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('collected');
  });
});

describe('exposedMinorGc', () => {
  it('is null without --expose-gc, and calls gc({ type: "minor" }) when gc is there', () => {
    expect(exposedMinorGc({})).toBeNull();
    const calls: unknown[] = [];
    const collect = exposedMinorGc({ gc: (options: unknown) => calls.push(options) });
    collect?.();
    expect(calls).toEqual([{ type: 'minor' }]);
  });

  it("node's real gc takes the minor option and frees dead buffers that would otherwise stay", () => {
    const script = `
      const before = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 200; i++) Buffer.alloc(64 * 1024).fill(i);
      setTimeout(() => {
        const idle = process.memoryUsage().arrayBuffers - before;
        gc({ type: 'minor' });
        // Their memory is released by a sweeper that may run beside the main thread.
        setTimeout(() => {
          const left = process.memoryUsage().arrayBuffers - before;
          console.log(JSON.stringify({ idle, left }));
        }, 100);
      }, 100);`;
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const { idle, left } = JSON.parse(run.stdout) as { idle: number; left: number };
    // Without a collection the 12.5 MiB of dead buffers are still held after 100 ms…
    expect(idle).toBeGreaterThan(10 * 1024 * 1024);
    // …and one young-generation collection frees them.
    expect(left).toBeLessThan(idle / 4);
  });
});
