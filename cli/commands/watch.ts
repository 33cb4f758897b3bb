/** `aio watch add LOCAL REMOTE [--mode two-way|push]`, `aio watch ls`, `aio watch rm LOCAL`. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../contract/errors.js';
import { splitPath } from '../../core/domain/names.js';
import { daemonFiles } from '../../daemon/files.js';
import { ipcRequest } from '../../daemon/ipc.js';
import {
  overlaps,
  readWatches,
  writeWatches,
  type SyncMode,
  type WatchConfig,
} from '../../daemon/watches.js';
import type { CliContext } from '../context.js';

export interface WatchAddFlags {
  mode?: string;
}

/** Tells a running daemon to re-read the watch list; no daemon is fine (it reads the list at start). */
export async function notifyDaemon(ctx: CliContext): Promise<boolean> {
  try {
    await ipcRequest(daemonFiles(ctx.configDir).socket, { cmd: 'watch-changed' });
    return true;
  } catch (err) {
    if (err instanceof AppError && err.code === 'SERVICE_UNAVAILABLE') return false;
    throw err;
  }
}

export function normaliseRemote(remote: string): string {
  const segments = splitPath(remote.startsWith('/') ? remote : `/${remote}`);
  return `/${segments.join('/')}`;
}

export async function watchAdd(
  ctx: CliContext,
  local: string,
  remote: string,
  flags: WatchAddFlags,
): Promise<void> {
  const mode = (flags.mode ?? 'two-way') as SyncMode;
  if (mode !== 'two-way' && mode !== 'push') throw new AppError('BAD_REQUEST', '--mode is two-way or push.');
  const abs = path.resolve(local);
  const stat = await fs.stat(abs).catch(() => null);
  if (!stat?.isDirectory()) throw new AppError('BAD_REQUEST', `Not a folder: ${abs}`);
  const real = await fs.realpath(abs);
  if (overlaps(real, ctx.configDir)) {
    throw new AppError('BAD_REQUEST', 'The config dir cannot be inside a watched folder (or contain one).');
  }
  const target = normaliseRemote(remote);
  const watches = await readWatches(ctx.configDir);
  const clash = watches.find((w) => w.local !== real && overlaps(w.local, real));
  if (clash) throw new AppError('CONFLICT', `${real} overlaps the watched folder ${clash.local}.`);
  const entry: WatchConfig = { local: real, remote: target, mode, paused: false };
  const next = [...watches.filter((w) => w.local !== real), entry];
  await writeWatches(ctx.configDir, next);
  const notified = await notifyDaemon(ctx);
  ctx.out.result({ watch: entry, daemon: notified ? 'notified' : 'not running' }, () => [
    `Watching ${real} ↔ ${target} (${mode}).`,
    ...(notified ? [] : ['The daemon is not running; start it with `aio daemon start`.']),
  ]);
}

export async function watchList(ctx: CliContext): Promise<void> {
  const watches = await readWatches(ctx.configDir);
  ctx.out.result({ watches }, () =>
    watches.length
      ? watches.map((w) => `${w.local}\t${w.remote}\t${w.mode}${w.paused ? '\tpaused' : ''}`)
      : ['Nothing is watched. Add a folder with `aio watch add LOCAL REMOTE`.'],
  );
}

export async function watchRemove(ctx: CliContext, local: string): Promise<void> {
  const watches = await readWatches(ctx.configDir);
  const abs = path.resolve(local);
  const real = await fs.realpath(abs).catch(() => abs);
  const found = watches.find((w) => w.local === real || w.local === abs);
  if (!found) throw new AppError('NOT_FOUND', `${abs} is not watched.`);
  await writeWatches(
    ctx.configDir,
    watches.filter((w) => w !== found),
  );
  const notified = await notifyDaemon(ctx);
  ctx.out.result({ removed: found, daemon: notified ? 'notified' : 'not running' }, () => [
    `No longer watching ${found.local} (local and remote files are left as they are).`,
  ]);
}
