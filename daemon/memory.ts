/**
 * Gives the daemon's garbage back once it is quiet.
 *
 * Why: a scan of 100,000 files (at start, after a restart) leaves ~40 MiB of garbage in
 * the V8 heap; the live heap of an idle daemon is ~26 MiB (heap snapshots at 20 s and 65 s
 * after a restart). V8 frees that garbage and hands the pages back only when its memory
 * reducer runs, which it did anywhere from ~30 s to more than a minute after the daemon
 * went idle: the bench's idle RSS at 100,000 files measured 102–106 MiB in some runs and
 * 170–176 MiB in others, from the same code (docs/performance.md, seventeenth pass). A
 * daemon sits idle in the background for hours, so it collects once itself: when every
 * folder is idle and watched, and the heap has grown by `growthBytes` since the last
 * collection it ran (so an idle daemon does not collect again and again).
 */
import v8 from 'node:v8';
import { gcAtRunTime, type GcFunction } from '../core/gc.js';

export interface CompactorDeps {
  /** A full, synchronous collection; null where none can be had (then nothing is done). */
  fullGc: (() => void) | null;
  /** Bytes in use in the V8 heap now. */
  heapUsed: () => number;
  /** True when every folder is idle (or paused) and watched: nothing to do for a while. */
  quiet: () => boolean;
  /** Growth of the heap since the last collection that makes the next one worthwhile. */
  growthBytes: number;
}

export class QuietCompactor {
  /** The heap in use right after the last collection (or at the start). */
  private baseline: number;

  constructor(private readonly deps: CompactorDeps) {
    this.baseline = deps.heapUsed();
  }

  /** Called now and then (a timer): collects when quiet and the heap has grown enough. */
  tick(): boolean {
    const { fullGc, heapUsed, quiet, growthBytes } = this.deps;
    if (!fullGc || heapUsed() - this.baseline < growthBytes || !quiet()) return false;
    fullGc();
    this.baseline = heapUsed();
    return true;
  }
}

/**
 * A full collection at once (plain `gc()`, core/gc.ts) that also compacts the old
 * generation; the function is found on first use, so a daemon that never gets to collect
 * does not pay for it at start.
 *
 * Why compacting: at 100,000 files a plain `gc()` freed the scan's garbage (heap in use
 * 73 → 27 MiB) but left the old generation's pages committed (46 MiB for 18 MiB live, the
 * live objects spread over them) and the RSS at 161–164 MiB until V8's memory reducer ran,
 * ~30 s later. Compacting moves the live objects together and gives the emptied pages back
 * at once: RSS 176 → 134 MiB right after the collection (the young generation's 32 MiB is
 * still the memory reducer's to shrink; nothing reachable from JavaScript shrinks it). V8
 * reads the flag at every full collection; it is set only around this one.
 */
export function lazyFullGc(): () => void {
  let gc: GcFunction | null | undefined;
  return () => {
    gc ??= gcAtRunTime();
    if (!gc) return;
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}
