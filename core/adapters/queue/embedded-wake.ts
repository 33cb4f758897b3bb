/**
 * In-process wake-ups for `EmbeddedJobQueue`: a publish wakes the consumers of the same
 * database file in this process at once instead of at their next poll. Consumers in
 * other processes still find the job by polling.
 */
import path from 'node:path';
import type { SqliteDatabase } from '../../sqlite.js';

type Listener = (queue: string) => void;

// Keyed by the resolved file path, so two handles on one file (as in tests and in a
// server running its worker inline) wake each other; in-memory databases by identity.
const listeners = new Map<unknown, Set<Listener>>();

function keyOf(db: SqliteDatabase): unknown {
  return db.memory ? db : path.resolve(db.name);
}

/** Registers `listener`; returns the function that removes it. */
export function onPublish(db: SqliteDatabase, listener: Listener): () => void {
  const key = keyOf(db);
  let set = listeners.get(key);
  if (!set) {
    set = new Set();
    listeners.set(key, set);
  }
  set.add(listener);
  return () => {
    const current = listeners.get(key);
    if (!current) return;
    current.delete(listener);
    if (current.size === 0) listeners.delete(key);
  };
}

/** Tells every listener on `db`'s file that `queue` has a new job (asynchronously, after the caller's commit). */
export function notifyPublish(db: SqliteDatabase, queue: string): void {
  const set = listeners.get(keyOf(db));
  if (!set) return;
  setImmediate(() => {
    for (const listener of set) listener(queue);
  });
}
