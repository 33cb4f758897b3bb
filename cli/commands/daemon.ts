/**
 * `aio daemon start|stop|status|run|logs|install-service`, and `registerSyncCommands`,
 * which adds these plus `aio watch`, `aio status`, `aio pause` and `aio resume` to the
 * command tree.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { AppError } from '../../contract/errors.js';
import { daemonFiles } from '../../daemon/files.js';
import { daemonAnswers, ipcRequest } from '../../daemon/ipc.js';
import type { DaemonStatus } from '../../daemon/main.js';
import { serviceFile, serviceUnit, SERVICE_NAME } from '../../daemon/service.js';
import { requireLogin, type CliContext } from '../context.js';
import { ensurePrivateDir } from '../paths.js';
import { pause, resume, status } from './status.js';
import { watchAdd, watchList, watchRemove, type WatchAddFlags } from './watch.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The script this CLI runs from (bin/aio), absolute: what a detached daemon or a service runs. */
function cliScript(): string {
  const script = process.argv[1];
  if (!script) throw new AppError('INTERNAL', 'Cannot tell which script runs aio.');
  return fs.realpathSync(script);
}

/** The daemon's pid from its pid file (the lock module, and SQLite with it, load only here). */
async function pidOf(pidFile: string): Promise<number | null> {
  const { readPid } = await import('../../daemon/lock.js');
  return readPid(pidFile);
}

/** Runs the daemon in the foreground until SIGTERM/SIGINT or `aio daemon stop`. */
export async function daemonRun(ctx: CliContext): Promise<void> {
  await requireLogin(ctx);
  await ensurePrivateDir(ctx.configDir);
  // Loaded here: every other command starts without the daemon's modules (watcher, journal).
  const { runDaemon } = await import('../../daemon/main.js');
  await runDaemon({
    configDir: ctx.configDir,
    client: ctx.client,
    account: `${ctx.profileName}@${ctx.server}`,
    onReady: (info) =>
      ctx.out.info(`aio daemon running (pid ${info.pid}); control ${info.socket}; log ${info.log}`),
  });
}

/** Starts a detached daemon and returns once its control socket answers. */
export async function daemonStart(ctx: CliContext): Promise<void> {
  await requireLogin(ctx);
  await ensurePrivateDir(ctx.configDir);
  const files = daemonFiles(ctx.configDir);
  if (await daemonAnswers(files.socket)) {
    const pid = await pidOf(files.pid);
    throw new AppError(
      'CONFLICT',
      `The daemon is already running (pid ${pid ?? '?'}); stop it first with \`aio daemon stop\`.`,
      { details: { running: true, pid } },
    );
  }
  const out = fs.openSync(files.outLog, 'a', 0o600);
  const child = spawn(
    process.execPath,
    [cliScript(), '--server', ctx.server, '--profile', ctx.profileName, 'daemon', 'run'],
    {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...ctx.env, AIO_CONFIG_DIR: ctx.configDir },
    },
  );
  fs.closeSync(out);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  child.unref();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await daemonAnswers(files.socket, 500)) {
      ctx.out.result(
        { started: true, pid: child.pid, log: files.log },
        () => `Daemon started (pid ${child.pid}); log: ${files.log}`,
      );
      return;
    }
    if (exited !== null) break;
    await sleep(100);
  }
  const tail = (await fsp.readFile(files.outLog, 'utf8').catch(() => ''))
    .trim()
    .split('\n')
    .slice(-5)
    .join('\n');
  throw new AppError(
    'INTERNAL',
    `The daemon did not start${exited !== null ? ` (exit ${exited})` : ''}.\n${tail}`,
  );
}

/** Asks the daemon to stop and waits until it has (in-flight operations finish or stay queued). */
export async function daemonStop(ctx: CliContext): Promise<void> {
  const files = daemonFiles(ctx.configDir);
  const pid = await pidOf(files.pid);
  try {
    await ipcRequest(files.socket, { cmd: 'stop' });
  } catch (err) {
    if (err instanceof AppError && err.code === 'SERVICE_UNAVAILABLE') {
      ctx.out.result({ stopped: false, running: false }, () => 'The daemon is not running.');
      return;
    }
    throw err;
  }
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const alive = pid !== null && isAlive(pid);
    if (!alive && !(await daemonAnswers(files.socket, 300))) {
      ctx.out.result({ stopped: true, pid }, () => 'Daemon stopped.');
      return;
    }
    await sleep(100);
  }
  throw new AppError('SERVICE_UNAVAILABLE', `The daemon (pid ${pid ?? '?'}) did not stop within 60 s.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function daemonStatus(ctx: CliContext): Promise<void> {
  const files = daemonFiles(ctx.configDir);
  const s = await ipcRequest<DaemonStatus>(files.socket, { cmd: 'status' });
  ctx.out.result({ running: true, ...s }, () => [
    `running (pid ${s.pid}) since ${s.startedAt}`,
    `server: ${s.server}`,
    `folders: ${s.folders.length}`,
    `log: ${files.log}`,
  ]);
}

/** Prints the last `lines` log lines; with `follow`, keeps printing new ones. */
export async function daemonLogs(
  ctx: CliContext,
  flags: { lines?: string; follow?: boolean },
): Promise<void> {
  const files = daemonFiles(ctx.configDir);
  const n = Number(flags.lines ?? 50);
  if (!Number.isSafeInteger(n) || n < 0) throw new AppError('BAD_REQUEST', '--lines takes a number.');
  const text = await fsp.readFile(files.log, 'utf8').catch(() => '');
  const lines = text.split('\n').filter(Boolean);
  if (lines.length) process.stdout.write(`${lines.slice(-n).join('\n')}\n`);
  if (!flags.follow) return;
  let offset = Buffer.byteLength(text);
  for (;;) {
    await sleep(500);
    const size = (await fsp.stat(files.log).catch(() => null))?.size ?? 0;
    if (size < offset) offset = 0; // rotated
    if (size > offset) {
      const handle = await fsp.open(files.log, 'r');
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(size - offset), 0, size - offset, offset);
      await handle.close();
      process.stdout.write(buffer.subarray(0, bytesRead));
      offset += bytesRead;
    }
  }
}

/** Writes the systemd user unit; prints how to enable it. */
export async function daemonInstallService(ctx: CliContext): Promise<void> {
  const file = serviceFile(ctx.env.HOME);
  const env: Record<string, string> = { AIO_SERVER: ctx.server, AIO_CONFIG_DIR: ctx.configDir };
  if (ctx.profileName !== 'default') env.AIO_PROFILE = ctx.profileName;
  if (ctx.env.AIO_NO_KEYRING) env.AIO_NO_KEYRING = ctx.env.AIO_NO_KEYRING;
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, serviceUnit({ node: process.execPath, script: cliScript(), env }), {
    mode: 0o644,
  });
  ctx.out.result({ unit: file }, () => [
    `Wrote ${file}.`,
    'Enable it with:',
    `  systemctl --user daemon-reload && systemctl --user enable --now ${SERVICE_NAME}`,
    'To keep it running after logout: loginctl enable-linger "$USER"',
  ]);
}

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

/** Adds `watch`, `daemon`, `status`, `pause` and `resume` to the program. */
export function registerSyncCommands(program: Command, run: Run): void {
  const watch = program.command('watch').description('folders the sync daemon keeps in sync');
  watch
    .command('add')
    .description('sync a local folder with a remote folder')
    .argument('<local>')
    .argument('<remote>')
    .option('--mode <mode>', 'two-way or push', 'two-way')
    .action((local: string, remote: string, flags: WatchAddFlags) =>
      run((ctx) => watchAdd(ctx, local, remote, flags)),
    );
  watch
    .command('ls')
    .description('list watched folders')
    .action(() => run((ctx) => watchList(ctx)));
  watch
    .command('rm')
    .description('stop syncing a folder (files stay on both sides)')
    .argument('<local>')
    .action((local: string) => run((ctx) => watchRemove(ctx, local)));

  const daemon = program.command('daemon').description('the background sync daemon');
  daemon
    .command('start')
    .description('start the daemon in the background')
    .action(() => run((ctx) => daemonStart(ctx)));
  daemon
    .command('stop')
    .description('stop the daemon gracefully')
    .action(() => run((ctx) => daemonStop(ctx)));
  daemon
    .command('status')
    .description('is the daemon running')
    .action(() => run((ctx) => daemonStatus(ctx)));
  daemon
    .command('run')
    .description('run the daemon in the foreground')
    .action(() => run((ctx) => daemonRun(ctx)));
  daemon
    .command('logs')
    .description("print the daemon's log")
    .option('-n, --lines <n>', 'how many lines', '50')
    .option('-f, --follow', 'keep printing new lines')
    .action((flags: { lines?: string; follow?: boolean }) => run((ctx) => daemonLogs(ctx, flags)));
  daemon
    .command('install-service')
    .description('write a systemd user unit that runs the daemon')
    .action(() => run((ctx) => daemonInstallService(ctx)));

  program
    .command('status')
    .description('sync state of each watched folder')
    .action(() => run((ctx) => status(ctx)));
  program
    .command('pause')
    .description('pause syncing (all folders, or one)')
    .argument('[local]')
    .action((local: string | undefined) => run((ctx) => pause(ctx, local)));
  program
    .command('resume')
    .description('resume syncing (all folders, or one)')
    .argument('[local]')
    .option('--confirm-deletes', 'let deletions held back by the mass-delete guard through')
    .action((local: string | undefined, flags: { confirmDeletes?: boolean }) =>
      run((ctx) => resume(ctx, local, flags)),
    );
}
