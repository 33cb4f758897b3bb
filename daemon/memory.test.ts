import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { lazyFullGc, QuietCompactor } from './memory.js';

const MiB = 1024 * 1024;

describe('QuietCompactor', () => {
  function setup(): { heap: { used: number; quiet: boolean; gcs: number }; compactor: QuietCompactor } {
    const heap = { used: 20 * MiB, quiet: false, gcs: 0 };
    const compactor = new QuietCompactor({
      fullGc: () => {
        heap.gcs++;
        heap.used = 26 * MiB; // what is live
      },
      heapUsed: () => heap.used,
      quiet: () => heap.quiet,
      growthBytes: 24 * MiB,
    });
    return { heap, compactor };
  }

  it('collects once quiet after the heap grew, and not again until it grows as much once more', () => {
    const { heap, compactor } = setup();
    heap.used = 64 * MiB; // a scan's garbage
    expect(compactor.tick()).toBe(false); // still busy
    expect(heap.gcs).toBe(0);
    heap.quiet = true;
    expect(compactor.tick()).toBe(true);
    expect(heap.gcs).toBe(1);
    // Idle, a little growth: nothing (an idle daemon does not collect again and again).
    heap.used = 26 * MiB + 23 * MiB;
    expect(compactor.tick()).toBe(false);
    heap.used = 26 * MiB + 24 * MiB;
    expect(compactor.tick()).toBe(true);
    expect(heap.gcs).toBe(2);
  });

  it('does nothing while the heap has not grown, or without a collection to run', () => {
    const { heap, compactor } = setup();
    heap.quiet = true;
    for (let i = 0; i < 5; i++) expect(compactor.tick()).toBe(false);
    expect(heap.gcs).toBe(0);
    const none = new QuietCompactor({
      fullGc: null,
      heapUsed: () => 500 * MiB,
      quiet: () => true,
      growthBytes: 1,
    });
    expect(none.tick()).toBe(false);
  });
});

describe('lazyFullGc', () => {
  it('gives a full collection that frees garbage in the old generation', async () => {
    const gc = lazyFullGc();
    expect(gc).toBeTypeOf('function');
    // Garbage that lived long enough to be promoted, then dropped.
    let maps: Array<Map<string, { n: number }>> | null = [];
    for (let i = 0; i < 20; i++) {
      const m = new Map<string, { n: number }>();
      for (let j = 0; j < 10_000; j++) m.set(`k${i}_${j}`, { n: j });
      maps.push(m);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const before = v8.getHeapStatistics().used_heap_size;
    expect(maps.length).toBe(20);
    maps = null;
    gc();
    const after = v8.getHeapStatistics().used_heap_size;
    expect(before - after).toBeGreaterThan(10 * MiB);
  });

  it('compacts the old generation: the pages the garbage spread the live objects over are given back', async () => {
    const gc = lazyFullGc();
    const oldSpace = () => {
      const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'old_space');
      return { committed: s?.space_size ?? 0, used: s?.space_used_size ?? 0 };
    };
    gc();
    const base = oldSpace();
    // ~60 MiB promoted to the old generation, then six objects in seven dropped: what
    // stays live is spread thinly over every page.
    let all: Array<{ s: string; n: number[] }> | null = [];
    const kept: Array<{ s: string; n: number[] }> = [];
    for (let i = 0; i < 600_000; i++) {
      const o = { s: `item-${i}`, n: [i, i + 1] };
      all.push(o);
      if (i % 7 === 0) kept.push(o);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(oldSpace().committed - base.committed).toBeGreaterThan(30 * MiB);
    all = null;
    gc();
    const after = oldSpace();
    expect(kept.length).toBe(Math.ceil(600_000 / 7));
    // Without compaction the free space stayed committed inside the pages (tens of MiB).
    expect(after.committed - after.used).toBeLessThan(8 * MiB);
  });
});
