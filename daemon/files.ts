/** The daemon's files in the config dir (AIO_CONFIG_DIR). */
import path from 'node:path';

export interface DaemonFiles {
  /** Control socket, mode 0600. */
  socket: string;
  /** Informational pid of the running daemon. */
  pid: string;
  /** Held with an exclusive SQLite lock while a daemon runs (released by the OS when it dies). */
  lock: string;
  /** JSON log (pino), rotated. */
  log: string;
  /** stdout/stderr of a detached daemon (crash traces). */
  outLog: string;
  /** The journal: synced state and operation queue. */
  journal: string;
  /** The watch list. */
  watches: string;
  /** Where local files removed because of a remote deletion are kept. */
  trash: string;
}

export function daemonFiles(configDir: string): DaemonFiles {
  return {
    socket: path.join(configDir, 'daemon.sock'),
    pid: path.join(configDir, 'daemon.pid'),
    lock: path.join(configDir, 'daemon.lock'),
    log: path.join(configDir, 'daemon.log'),
    outLog: path.join(configDir, 'daemon.out.log'),
    journal: path.join(configDir, 'journal.db'),
    watches: path.join(configDir, 'watches.json'),
    trash: path.join(configDir, '.aio-trash'),
  };
}
