/**
 * The watch list, `<config>/watches.json`: which local folder syncs with which remote
 * folder, in which mode, and whether it is paused. Written atomically by the CLI; the
 * daemon re-reads it when told over the control socket.
 */
import path from 'node:path';
import { readJsonFile, writeFileAtomic, ensurePrivateDir } from '../cli/paths.js';
import { daemonFiles } from './files.js';

export type SyncMode = 'two-way' | 'push';

export interface WatchConfig {
  /** Absolute local folder. */
  local: string;
  /** Absolute remote folder (`/` allowed). */
  remote: string;
  mode: SyncMode;
  paused: boolean;
}

interface WatchesFile {
  version: 1;
  watches: WatchConfig[];
}

export async function readWatches(configDir: string): Promise<WatchConfig[]> {
  const file = await readJsonFile<WatchesFile>(daemonFiles(configDir).watches);
  return (file?.watches ?? []).map((w) => ({
    local: w.local,
    remote: w.remote,
    mode: w.mode === 'push' ? 'push' : 'two-way',
    paused: Boolean(w.paused),
  }));
}

export async function writeWatches(configDir: string, watches: readonly WatchConfig[]): Promise<void> {
  await ensurePrivateDir(configDir);
  const body: WatchesFile = { version: 1, watches: [...watches] };
  await writeFileAtomic(daemonFiles(configDir).watches, `${JSON.stringify(body, null, 2)}\n`);
}

/** Whether one folder contains the other (watches may not overlap). */
export function overlaps(a: string, b: string): boolean {
  const inside = (x: string, y: string): boolean =>
    x === y || x.startsWith(y.endsWith(path.sep) ? y : y + path.sep);
  return inside(a, b) || inside(b, a);
}
