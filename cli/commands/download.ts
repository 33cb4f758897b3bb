/**
 * `aio download REMOTE [LOCAL] [-r] [--force] [--transfers N]`: files, and folders with
 * `-r`. Never overwrites a different local file without `--force`; a local file with the
 * same sha256 is left alone. `LOCAL` `-` writes one file to stdout.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { downloadFile, streamFile } from '../../contract/download-client.js';
import { AppError } from '../../contract/errors.js';
import { batchFailure, parseTransfers } from '../batch.js';
import type { Entry } from '../../contract/schemas/files.js';
import { sha256File } from '../../core/domain/hash.js';
import { requireLogin, type CliContext } from '../context.js';
import { formatBytes } from '../output.js';
import { runPool } from '../../core/domain/pool.js';
import { createProgress } from '../progress.js';
import { listAll, remoteStat } from './remote.js';

export interface DownloadFlags {
  recursive?: boolean;
  force?: boolean;
  transfers?: string;
}

interface Planned {
  entry: Entry;
  dest: string;
}

async function isDir(p: string): Promise<boolean> {
  return (await fs.stat(p).catch(() => null))?.isDirectory() ?? false;
}

export async function download(
  ctx: CliContext,
  remote: string,
  local: string | undefined,
  flags: DownloadFlags,
) {
  const transfers = parseTransfers(flags.transfers, 4);
  if (local === '-' && ctx.out.json) {
    throw new AppError(
      'BAD_REQUEST',
      '--json prints its document on stdout, where - writes the file: use one or the other.',
    );
  }
  await requireLogin(ctx);
  const root = await remoteStat(ctx, remote);
  if (local === '-') return toStdout(ctx, root);
  const plan: Planned[] = [];
  if (root.kind === 'file') {
    const target = local ?? root.name;
    plan.push({ entry: root, dest: (await isDir(target)) ? path.join(target, root.name) : target });
  } else {
    if (!flags.recursive) throw new AppError('BAD_REQUEST', `${root.path} is a folder: pass -r.`);
    const base = local ?? (root.id === null ? '.' : root.name);
    const queue: Array<{ remote: string; local: string }> = [{ remote: root.path, local: base }];
    while (queue.length) {
      const dir = queue.shift() as { remote: string; local: string };
      await fs.mkdir(dir.local, { recursive: true });
      for (const e of await listAll(ctx, dir.remote)) {
        const dest = path.join(dir.local, e.name);
        // Names come from the server already validated; refuse anything that would escape anyway.
        if (path.relative(base, dest).startsWith('..') || e.name.includes('/') || e.name.includes('\\')) {
          throw new AppError('INVALID_NAME', `Refusing to write outside ${base}: ${e.name}`);
        }
        if (e.kind === 'folder') queue.push({ remote: e.path, local: dest });
        else if (e.status === 'ready') plan.push({ entry: e, dest });
      }
    }
  }

  const progress = await createProgress(
    ctx.out,
    plan.reduce((n, p) => n + p.entry.size, 0),
  );
  const results = await runPool(plan, transfers, async ({ entry, dest }) => {
    const existing = await fs.stat(dest).catch(() => null);
    if (existing) {
      if (!existing.isFile()) throw new AppError('CONFLICT', `${dest} exists and is not a file.`);
      const local = await sha256File(dest);
      if (local.sha256 === entry.sha256)
        return { path: entry.path, dest, size: entry.size, how: 'unchanged' as const };
      if (!flags.force) {
        throw new AppError(
          'CONFLICT',
          `${dest} exists with different content: pass --force to overwrite it.`,
        );
      }
    }
    const bar = progress.bar(entry.path, entry.size);
    try {
      await downloadFile(ctx.client, {
        fileId: entry.id as string,
        sha256: entry.sha256 as string,
        size: entry.size,
        dest,
        mtime: entry.mtime,
        onProgress: (n) => bar.update(n),
      });
    } finally {
      bar.stop();
    }
    ctx.out.event({ event: 'downloaded', path: entry.path, dest, size: entry.size }, null);
    return { path: entry.path, dest, size: entry.size, how: 'downloaded' as const };
  });
  progress.stop();

  const done = results.flatMap((r) => (r.ok ? [r.value] : []));
  const failed = results.flatMap((r, i) =>
    r.ok
      ? []
      : [
          {
            path: plan[i]?.entry.path,
            error: (r.error as Error).message,
            code: r.error instanceof AppError ? r.error.code : 'INTERNAL',
          },
        ],
  );
  for (const f of failed) ctx.out.error(`${f.path}: ${f.error}`);
  const bytes = done.reduce((n, d) => n + (d.how === 'downloaded' ? d.size : 0), 0);
  const unchanged = done.filter((d) => d.how === 'unchanged').length;
  if (ctx.out.json)
    ctx.out.result({ event: 'summary', downloaded: done.length, unchanged, failed, bytes }, () => null);
  else if (!ctx.out.quiet)
    ctx.out.result(null, () => {
      const parts = [`${done.length - unchanged} file(s) downloaded (${formatBytes(bytes)})`];
      if (unchanged) parts.push(`${unchanged} already there with the same sha256`);
      if (failed.length) parts.push(`${failed.length} failed`);
      return `${parts.join(', ')}.`;
    });
  if (failed.length) {
    throw batchFailure(
      results.flatMap((r) => (r.ok ? [] : [r.error])),
      plan.length,
      'file(s)',
    );
  }
}

/**
 * `aio download FILE -`: the file's bytes on stdout, as `cat` would print them, for
 * pipes (`aio download /db.sql.gz - | gunzip`). Nothing else goes to stdout; the sha256
 * is checked as the bytes pass and a mismatch fails the command after them (exit code),
 * since bytes already written cannot be taken back. A reader that stops early (`| head`)
 * ends the transfer quietly.
 */
async function toStdout(ctx: CliContext, root: Entry): Promise<void> {
  if (root.kind !== 'file') {
    throw new AppError('BAD_REQUEST', `${root.path} is a folder: only a file can be written to stdout (-).`);
  }
  if (root.status !== 'ready' || root.id === null || root.sha256 === null) {
    throw new AppError('CONFLICT', `${root.path} is not ready yet.`);
  }
  const progress = await createProgress(ctx.out, root.size);
  const bar = progress.bar(root.path, root.size);
  try {
    await streamFile(ctx.client, {
      fileId: root.id,
      sha256: root.sha256,
      size: root.size,
      out: ctx.out.dataStream,
      onProgress: (n) => bar.update(n),
    });
  } finally {
    bar.stop();
    progress.stop();
  }
}
