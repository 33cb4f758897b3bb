/**
 * One daemon per config dir. The lock is an exclusive SQLite lock on `daemon.lock`
 * (an OS file lock, so it disappears with the process: a daemon killed with SIGKILL
 * leaves nothing to clean up, and its stale pid file is simply taken over).
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { AppError } from '../contract/errors.js';

export interface DaemonLock {
  release(): void;
}

export function readPid(pidFile: string): number | null {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Takes the lock and writes the pid file; throws CONFLICT when another daemon holds it. */
export function acquireDaemonLock(lockFile: string, pidFile: string): DaemonLock {
  const db = new Database(lockFile);
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
    db.exec('BEGIN EXCLUSIVE');
    db.prepare('DELETE FROM holder').run();
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      const pid = readPid(pidFile);
      throw new AppError(
        'CONFLICT',
        `Another aio daemon is already running for this config dir${pid ? ` (pid ${pid})` : ''}.`,
      );
    }
    throw err;
  }
  fs.writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
  return {
    release() {
      if (readPid(pidFile) === process.pid) fs.rmSync(pidFile, { force: true });
      db.close();
    },
  };
}
