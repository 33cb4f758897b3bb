/**
 * Waiting for something another process will do (a commit, a job finishing) without
 * busy polling: subscribe to a Cache channel *before* re-checking, so no wake-up is
 * lost, and re-check every `fallbackMs` on its own, so a Cache outage or a lost message
 * costs at most that much latency, never a missed result.
 */
import type { Cache, Unsubscribe } from '../core/ports/cache.js';

export interface WaitOptions {
  /** 0: check once. */
  waitMs: number;
  /** Re-check period while waiting. Default 1000 ms. */
  fallbackMs?: number;
  /** Ends the wait early (client disconnected); the last check's result is returned. */
  signal?: AbortSignal;
}

/**
 * Calls `check` until it returns a value `done` accepts, a message arrives on `channel`
 * and the re-check accepts it, or the time runs out. Returns the last value checked.
 */
export async function waitOnChannel<T>(
  cache: Cache,
  channel: string,
  check: () => Promise<T>,
  done: (value: T) => boolean,
  options: WaitOptions,
): Promise<T> {
  const { signal } = options;
  const first = await check();
  if (done(first) || options.waitMs <= 0 || signal?.aborted) return first;

  const deadline = Date.now() + options.waitMs;
  const fallbackMs = options.fallbackMs ?? 1000;
  let nudged = false;
  let wake: () => void = () => undefined;
  let unsubscribe: Unsubscribe | null = null;
  try {
    unsubscribe = await cache.subscribe(channel, () => {
      nudged = true;
      wake();
    });
  } catch {
    // Cache down: the periodic re-check below still sees the result.
  }
  try {
    for (;;) {
      nudged = false;
      const value = await check();
      if (done(value) || signal?.aborted) return value;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return value;
      if (nudged) continue; // a message arrived while checking: check again at once
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, Math.min(remaining, fallbackMs));
        function finish(): void {
          clearTimeout(timer);
          signal?.removeEventListener('abort', finish);
          wake = () => undefined;
          resolve();
        }
        wake = finish;
        signal?.addEventListener('abort', finish, { once: true });
      });
    }
  } finally {
    await unsubscribe?.().catch(() => undefined);
  }
}
