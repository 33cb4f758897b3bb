/** `aio status`, `aio pause [LOCAL]`, `aio resume [LOCAL] [--confirm-deletes]`. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../contract/errors.js';
import { daemonFiles } from '../../daemon/files.js';
import type { FolderStatus } from '../../daemon/folder.js';
import { ipcRequest } from '../../daemon/ipc.js';
import type { DaemonStatus } from '../../daemon/main.js';
import { readWatches, writeWatches } from '../../daemon/watches.js';
import type { CliContext } from '../context.js';
import { shown } from '../output.js';

async function resolveLocal(local: string | undefined): Promise<string | undefined> {
  if (local === undefined) return undefined;
  const abs = path.resolve(local);
  return fs.realpath(abs).catch(() => abs);
}

function describeFolder(f: FolderStatus): string[] {
  const lines = [
    `${f.local} ↔ ${f.remote} (${f.mode})`,
    `  state: ${f.state}${f.offline ? ' (server unreachable, waiting)' : ''}${f.polling ? ' (polling)' : ''}${f.watching === false ? ' (watcher starting)' : ''}`,
    `  queued operations: ${f.queued}${f.running ? ` (${f.running} running)` : ''}`,
    `  last sync: ${f.lastSyncAt ?? 'never'}`,
  ];
  if (f.lastError) lines.push(`  last error: ${f.lastError}`);
  if (f.state === 'needs-confirmation')
    lines.push(`  ${f.pendingDeletes} deletions wait for \`aio resume ${f.local} --confirm-deletes\``);
  for (const e of f.errors) lines.push(`  error: ${e.op} ${e.path}: ${e.error} (${e.attempts} attempts)`);
  for (const s of f.skipped) lines.push(`  not synced: ${shown(s.path)} (${s.reason})`);
  return lines;
}

export async function status(ctx: CliContext): Promise<void> {
  const files = daemonFiles(ctx.configDir);
  let daemon: DaemonStatus | null = null;
  try {
    daemon = await ipcRequest<DaemonStatus>(files.socket, { cmd: 'status' });
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'SERVICE_UNAVAILABLE')) throw err;
  }
  if (daemon) {
    const running = daemon;
    ctx.out.result({ daemon: 'running', ...running }, () => [
      `daemon: running (pid ${running.pid}) → ${running.server}`,
      ...(running.folders.length ? running.folders.flatMap(describeFolder) : ['Nothing is watched.']),
    ]);
    return;
  }
  const watches = await readWatches(ctx.configDir);
  const folders = watches.map((w) => ({ ...w, state: w.paused ? 'paused' : 'stopped' }));
  ctx.out.result({ daemon: 'stopped', folders }, () => [
    'daemon: not running (start it with `aio daemon start`)',
    ...folders.map((f) => `${f.local} ↔ ${f.remote} (${f.mode}): ${f.state}`),
  ]);
}

async function setPaused(
  ctx: CliContext,
  local: string | undefined,
  paused: boolean,
  confirmDeletes = false,
): Promise<void> {
  const target = await resolveLocal(local);
  const watches = await readWatches(ctx.configDir);
  if (target !== undefined && !watches.some((w) => w.local === target))
    throw new AppError('NOT_FOUND', `${target} is not watched.`);
  const files = daemonFiles(ctx.configDir);
  try {
    const result = await ipcRequest<DaemonStatus>(files.socket, {
      cmd: paused ? 'pause' : 'resume',
      ...(target ? { local: target } : {}),
      ...(confirmDeletes ? { confirmDeletes: true } : {}),
    });
    const folders = result.folders.filter((f) => target === undefined || f.local === target);
    ctx.out.result({ folders }, () => folders.map((f) => `${f.local}: ${f.state}`));
    return;
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'SERVICE_UNAVAILABLE')) throw err;
  }
  if (confirmDeletes) throw new AppError('SERVICE_UNAVAILABLE', 'The daemon is not running; start it first.');
  // No daemon: the flag is kept in the watch list and applies when it starts.
  for (const w of watches) if (target === undefined || w.local === target) w.paused = paused;
  await writeWatches(ctx.configDir, watches);
  const changed = watches.filter((w) => target === undefined || w.local === target);
  ctx.out.result({ folders: changed }, () =>
    changed.map((w) => `${w.local}: ${paused ? 'paused' : 'resumed'}`),
  );
}

export async function pause(ctx: CliContext, local?: string): Promise<void> {
  await setPaused(ctx, local, true);
}

export async function resume(
  ctx: CliContext,
  local: string | undefined,
  flags: { confirmDeletes?: boolean },
): Promise<void> {
  await setPaused(ctx, local, false, Boolean(flags.confirmDeletes));
}
