/**
 * The daemon's timing knobs, read once from the environment at start-up. Defaults suit
 * people; tests shorten them (`AIO_DAEMON_DEBOUNCE_MS=100`, …).
 */
export interface Tunables {
  /** Quiet time per path before the scanner looks at it. */
  debounceMs: number;
  /** Longest a busy path waits for the scanner. */
  maxDelayMs: number;
  /** Full rescan period (the watcher may miss events). */
  rescanMs: number;
  /** Long-poll length of the change feed, seconds. */
  pollWaitSeconds: number;
  /** First retry delay of a failed operation; doubles per attempt. */
  retryBaseMs: number;
  /** Longest wait between retries of one operation. */
  retryMaxMs: number;
  /** Longest wait while the server is unreachable. */
  offlineMaxMs: number;
  /** A file modified less than this long ago is not uploaded yet (still being written). */
  settleMs: number;
  /** Operations running at once per folder. */
  concurrency: number;
  /** The mass-delete guard trips above half of the synced files, from this many files on… */
  massDeleteMin: number;
  /** …and always from this many. */
  massDeleteMax: number;
  /** Deletions let through within this long count with a later batch's for the guard. */
  massDeleteWindowMs: number;
  /** How often a folder in the error state looks again. */
  errorRetryMs: number;
  /** Longest the watcher waits, after the first scan, for that scan's work to drain. */
  watchDeferMs: number;
  /** How often the daemon checks whether it is quiet with garbage to give back (daemon/memory.ts). */
  compactCheckMs: number;
  /** Heap growth since its last collection that makes a quiet daemon collect (daemon/memory.ts). */
  compactGrowthBytes: number;
  /** Log file size that triggers rotation, and how many old files are kept. */
  logMaxBytes: number;
  logKeep: number;
}

function num(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  const value = raw === undefined || raw === '' ? NaN : Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}

export function readTunables(env: NodeJS.ProcessEnv = process.env): Tunables {
  return Object.freeze({
    debounceMs: num(env, 'AIO_DAEMON_DEBOUNCE_MS', 100),
    maxDelayMs: num(env, 'AIO_DAEMON_MAX_DELAY_MS', 5_000),
    rescanMs: num(env, 'AIO_DAEMON_RESCAN_MS', 60 * 60_000),
    pollWaitSeconds: num(env, 'AIO_DAEMON_POLL_WAIT_S', 30),
    retryBaseMs: num(env, 'AIO_DAEMON_RETRY_BASE_MS', 1_000),
    retryMaxMs: num(env, 'AIO_DAEMON_RETRY_MAX_MS', 5 * 60_000),
    offlineMaxMs: num(env, 'AIO_DAEMON_OFFLINE_MAX_MS', 30_000),
    settleMs: num(env, 'AIO_DAEMON_SETTLE_MS', 100),
    concurrency: Math.max(1, num(env, 'AIO_DAEMON_CONCURRENCY', 4)),
    massDeleteMin: num(env, 'AIO_DAEMON_MASS_DELETE_MIN', 10),
    massDeleteMax: num(env, 'AIO_DAEMON_MASS_DELETE_MAX', 1_000),
    massDeleteWindowMs: num(env, 'AIO_DAEMON_MASS_DELETE_WINDOW_MS', 60_000),
    errorRetryMs: num(env, 'AIO_DAEMON_ERROR_RETRY_MS', 5_000),
    watchDeferMs: num(env, 'AIO_DAEMON_WATCH_DEFER_MS', 5_000),
    compactCheckMs: num(env, 'AIO_DAEMON_COMPACT_CHECK_MS', 5_000),
    compactGrowthBytes: num(env, 'AIO_DAEMON_COMPACT_GROWTH_BYTES', 24 * 1024 * 1024),
    logMaxBytes: num(env, 'AIO_DAEMON_LOG_MAX_BYTES', 10 * 1024 * 1024),
    logKeep: num(env, 'AIO_DAEMON_LOG_KEEP', 3),
  });
}
