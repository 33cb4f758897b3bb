/**
 * `aio upload LOCAL... REMOTE [-r] [--transfers N] [--no-wait]`.
 *
 * REMOTE is a folder when it ends with `/`, when there are several sources or a folder
 * source, or when it exists as a folder; otherwise it is the target file path. A folder
 * source lands as REMOTE/NAME; with a trailing slash (`photos/`) its contents land in
 * REMOTE itself, as with rsync.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../contract/errors.js';
import { batchFailure, parseTransfers } from '../batch.js';
import { requireLogin, type CliContext } from '../context.js';
import { caseTwins, twinError, walkLocal } from '../local-walk.js';
import { formatBytes, shown } from '../output.js';
import { createProgress } from '../progress.js';
import { uploadBatch } from '../batch-upload.js';
import type { UploadOutcome } from '../upload-file.js';
import { remoteStat } from './remote.js';

export interface UploadFlags {
  recursive?: boolean;
  transfers?: string;
  wait?: boolean;
}

interface Planned {
  local: string;
  remote: string;
  size: number;
}

export function joinRemote(folder: string, rel: string): string {
  const base = folder.endsWith('/') ? folder : `${folder}/`;
  return `${base.startsWith('/') ? '' : '/'}${base}${rel}`.replace(/\/{2,}/g, '/');
}

/** A folder named with a trailing separator (`photos/`) stands for its contents. */
function contentsOnly(source: string): boolean {
  return source.endsWith('/') || source.endsWith(path.sep);
}

export async function upload(ctx: CliContext, args: string[], flags: UploadFlags): Promise<void> {
  if (args.length < 2) throw new AppError('BAD_REQUEST', 'Usage: aio upload LOCAL... REMOTE');
  const transfers = parseTransfers(flags.transfers, 4);
  await requireLogin(ctx);
  const remote = args[args.length - 1] as string;
  const sources = args.slice(0, -1);

  const stats = await Promise.all(
    sources.map(async (s) => {
      const st = await fs.lstat(s).catch(() => null);
      if (!st) throw new AppError('NOT_FOUND', `No such local file or folder: ${s}`);
      if (st.isDirectory() && !flags.recursive)
        throw new AppError('BAD_REQUEST', `${s} is a folder: pass -r.`);
      if (!st.isDirectory() && !st.isFile()) throw new AppError('BAD_REQUEST', `Not a regular file: ${s}`);
      return { source: s, stat: st };
    }),
  );
  let remoteIsFolder = remote.endsWith('/') || sources.length > 1 || stats.some((s) => s.stat.isDirectory());
  if (!remoteIsFolder) {
    const existing = await remoteStat(ctx, remote).catch((err: unknown) => {
      if (err instanceof AppError && err.code === 'NOT_FOUND') return null;
      throw err;
    });
    remoteIsFolder = existing?.kind === 'folder';
  }

  let plan: Planned[] = [];
  const skipped: Array<{ path: string; reason: string }> = [];
  for (const { source, stat } of stats) {
    if (stat.isDirectory()) {
      const walked = await walkLocal(source);
      skipped.push(...walked.skipped);
      // As rsync: `dir` goes into REMOTE as REMOTE/dir, `dir/` puts its contents in REMOTE.
      const into = contentsOnly(source) ? remote : joinRemote(remote, path.basename(path.resolve(source)));
      for (const f of walked.files) {
        plan.push({
          local: f.absolute,
          remote: joinRemote(into, f.relative),
          size: f.size,
        });
      }
    } else {
      const target = remoteIsFolder ? joinRemote(remote, path.basename(source)) : remote;
      plan.push({ local: source, remote: target.startsWith('/') ? target : `/${target}`, size: stat.size });
    }
  }
  for (const s of skipped) ctx.out.warn(`skipped ${shown(s.path)} (${s.reason})`);
  // Two local files the server takes for one (names there are unique ignoring case):
  // the first is sent, the others fail instead of landing on it.
  const twins = caseTwins(plan.map((p) => p.remote));
  const refused = plan.flatMap((item) => {
    const keeper = twins.get(item.remote);
    return keeper === undefined ? [] : [{ item, error: twinError(keeper) }];
  });
  if (refused.length) plan = plan.filter((p) => !twins.has(p.remote));

  const progress = await createProgress(
    ctx.out,
    plan.reduce((n, p) => n + p.size, 0),
  );
  const results = await uploadBatch(plan, {
    client: ctx.client,
    configDir: ctx.envToken ? null : ctx.configDir,
    account: `${ctx.profileName}@${ctx.server}`,
    transfers,
    wait: flags.wait !== false,
    progress,
    onUploaded: (outcome) => ctx.out.event({ event: 'uploaded', ...outcome }, null),
  });
  progress.stop();

  const done: UploadOutcome[] = [];
  const failed: Array<{ local: string; remote: string; error: string; code: string }> = [];
  results.forEach((r, i) => {
    const item = plan[i] as Planned;
    if (r.ok) done.push(r.value);
    else {
      const err = r.error;
      const code = err instanceof AppError ? err.code : 'INTERNAL';
      failed.push({
        local: item.local,
        remote: item.remote,
        error: (err as Error).message ?? String(err),
        code,
      });
      ctx.out.error(`${shown(item.local)}: ${(err as Error).message ?? String(err)}`);
    }
  });
  for (const { item, error } of refused) {
    failed.push({ local: item.local, remote: item.remote, error: error.message, code: error.code });
    ctx.out.error(`${shown(item.local)}: ${error.message}`);
  }
  const bytes = done.reduce((n, o) => n + o.bytesSent, 0);
  if (!ctx.out.json) {
    ctx.out.result(null, () =>
      ctx.out.quiet
        ? null
        : `${done.length} file(s) uploaded (${formatBytes(bytes)} sent, ${done.filter((d) => d.how === 'deduplicated').length} already on the server)${failed.length ? `, ${failed.length} failed` : ''}.`,
    );
  } else {
    ctx.out.result(
      { event: 'summary', uploaded: done.length, failed, skipped, bytesSent: bytes },
      () => null,
    );
  }
  if (failed.length) {
    throw batchFailure(
      [...results.flatMap((r) => (r.ok ? [] : [r.error])), ...refused.map((r) => r.error)],
      plan.length + refused.length,
      'file(s)',
    );
  }
}
