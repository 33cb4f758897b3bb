/**
 * The `aio` command tree. Commands throw `AppError`s; `main` turns them into a message
 * and the exit code from contract/errors.ts (anything unexpected: a stack and a plea
 * for a report). `cli/main.ts` is the entry that sets the process exit code.
 */
import { Argument, Command, CommanderError, Option } from 'commander';
import { AppError, EXIT, exitCodeOf } from '../contract/errors.js';
import * as auth from './commands/auth.js';
import { completion } from './commands/completion.js';
import { registerSyncCommands } from './commands/daemon.js';
import * as token from './commands/token.js';
import { download, type DownloadFlags } from './commands/download.js';
import { notifications } from './commands/notifications.js';
import * as remote from './commands/remote.js';
import * as share from './commands/share.js';
import { sync, type SyncFlags } from './commands/sync.js';
import { upload, type UploadFlags } from './commands/upload.js';
import { createContext, type CliContext, type GlobalOptions } from './context.js';

export const VERSION = '0.1.0';

export function buildProgram(run: (fn: (ctx: CliContext) => Promise<void>) => Promise<void>): Command {
  const program = new Command('aio')
    .description('AIO Storage: self-hosted sync storage')
    .option('--server <url>', 'server URL (env AIO_SERVER)')
    .option('--json', 'print one JSON document (NDJSON for streams) on stdout')
    .option('-q, --quiet', 'print only results and errors')
    .option('--no-progress', 'no progress bars')
    .option('--profile <name>', 'named profile (server and login)')
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Version: aio --version (or -V) prints ${VERSION}.

Environment: AIO_SERVER, AIO_TOKEN (use this token, store nothing), AIO_CONFIG_DIR, AIO_NO_KEYRING=1, AIO_PROFILE

Exit codes:
  0 ok   1 error   2 usage   3 auth   4 not found   5 conflict
  6 network or server unavailable   7 quota   8 partial failure in a batch`,
    )
    .exitOverride();

  program
    .command('register')
    .description('create an account')
    .option('--email <email>', 'email address')
    .option('--name <name>', 'display name')
    .option('--password-stdin', 'read the password from standard input')
    .action((flags: auth.CredentialFlags) => run((ctx) => auth.register(ctx, flags)));

  program
    .command('login')
    .description('log in and keep the session (OS keychain, or a 0600 file)')
    .option('--email <email>', 'email address')
    .option('--password-stdin', 'read the password from standard input')
    .action((flags: auth.CredentialFlags) => run((ctx) => auth.login(ctx, flags)));

  program
    .command('logout')
    .description('end the session and forget it')
    .action(() => run((ctx) => auth.logout(ctx)));

  program
    .command('whoami')
    .description('show the logged-in account and its storage')
    .action(() => run((ctx) => auth.whoami(ctx)));

  program
    .command('ls')
    .description('list a folder')
    .argument('[path]', 'remote path', '/')
    .option('-l, --long', 'size, time, version and status')
    .option('-R, --recursive', 'list subfolders too')
    .action((p: string, flags: { long?: boolean; recursive?: boolean }) =>
      run((ctx) => remote.ls(ctx, p, flags)),
    );
  program
    .command('mkdir')
    .description('create a folder')
    .argument('<path>')
    .option('-p, --parents', 'create missing parents; no error if it exists')
    .action((p: string, flags: { parents?: boolean }) => run((ctx) => remote.mkdir(ctx, p, flags)));
  program
    .command('mv')
    .description('move or rename')
    .argument('<from>')
    .argument('<to>')
    .action((from: string, to: string) => run((ctx) => remote.mv(ctx, from, to)));
  program
    .command('cp')
    .description('copy a file or folder (no bytes are sent)')
    .argument('<from>')
    .argument('<to>')
    .action((from: string, to: string) => run((ctx) => remote.cp(ctx, from, to)));
  program
    .command('rm')
    .description('move to the trash')
    .argument('<paths...>')
    .option('-r, --recursive', 'folders too')
    .action((paths: string[], flags: { recursive?: boolean }) => run((ctx) => remote.rm(ctx, paths, flags)));
  const trash = program.command('trash').description('the trash (kept 30 days)');
  trash
    .command('ls')
    .description('list the trash')
    .action(() => run((ctx) => remote.trashList(ctx)));
  trash
    .command('restore')
    .description('put an item back where it was')
    .argument('<id>')
    .action((id: string) => run((ctx) => remote.trashRestore(ctx, id)));
  trash
    .command('purge')
    .description('delete an item for good')
    .argument('<id>')
    .action((id: string) => run((ctx) => remote.trashPurge(ctx, id)));
  program
    .command('versions')
    .description("list a file's versions")
    .argument('<path>')
    .action((p: string) => run((ctx) => remote.versions(ctx, p)));
  program
    .command('restore')
    .description('make an old version current again (as a new version)')
    .argument('<path>')
    .requiredOption('--version <n>', 'the version to restore')
    .action((p: string, flags: { version?: string }) => run((ctx) => remote.restoreVersion(ctx, p, flags)));
  program
    .command('upload')
    .description('upload files (folders with -r); resumable, skips what the server has')
    .argument('<paths...>', 'LOCAL... REMOTE')
    .option('-r, --recursive', 'folders too')
    .option('--transfers <n>', 'files in parallel', '4')
    .option('--no-wait', 'do not wait until the server reports the files ready')
    .action((paths: string[], flags: UploadFlags) => run((ctx) => upload(ctx, paths, flags)));
  program
    .command('download')
    .description('download files (folders with -r); resumable, verified')
    .argument('<remote>')
    .argument('[local]')
    .option('-r, --recursive', 'folders too')
    .option('--force', 'overwrite a different local file')
    .option('--transfers <n>', 'files in parallel', '4')
    .action((r: string, l: string | undefined, flags: DownloadFlags) =>
      run((ctx) => download(ctx, r, l, flags)),
    );

  program
    .command('sync')
    .description(
      'one-shot push of a local folder (unchanged size and modification time: skipped; else compares sha256; for CI)',
    )
    .argument('<local>')
    .argument('<remote>')
    .option('--dry-run', 'print the plan, change nothing')
    .option('--delete', 'delete remote files that are not in LOCAL')
    .option('--max-delete <n|p%>', 'deletion budget: a count or a percentage of remote files', '50%')
    .option('--transfers <n>', 'files in parallel', '8')
    .option('--checksum', 'compare every file by sha256, even when size and modification time match')
    .action((l: string, r: string, flags: SyncFlags) => run((ctx) => sync(ctx, l, r, flags)));

  const shares = program.command('share').description('public links and sharing with users');
  shares
    .command('create')
    .description('create a public link (prints the URL)')
    .argument('<path>')
    .option('--expires <duration>', '7d, 12h, … or never', '7d')
    .option('--password-stdin', 'protect the link with a password read from standard input')
    .option('--max-downloads <n>', 'stop after this many downloads')
    .action((p: string, f: share.ShareCreateFlags) => run((ctx) => share.shareCreate(ctx, p, f)));
  shares
    .command('ls')
    .description('your links and user shares, with download counts')
    .action(() => run((ctx) => share.shareList(ctx)));
  shares
    .command('revoke')
    .description('revoke a link or user share at once')
    .argument('<id>')
    .action((id: string) => run((ctx) => share.shareRevoke(ctx, id)));
  shares
    .command('user')
    .description('share with another account')
    .argument('<path>')
    .requiredOption('--with <email>', 'their email')
    .option('--role <role>', 'viewer or editor', 'viewer')
    .action((p: string, f: { with: string; role?: string }) => run((ctx) => share.shareUser(ctx, p, f)));
  shares
    .command('shared-with-me')
    .description('what others share with you (under /Shared)')
    .action(() => run((ctx) => share.sharedWithMe(ctx)));
  program
    .command('notifications')
    .description('shares received, links opened, zips ready')
    .option('--all', 'include those already read')
    .action((f: { all?: boolean }) => run((ctx) => notifications(ctx, f)));

  const tokens = program.command('token').description('personal API tokens for CI');
  tokens
    .command('create')
    .description('create a token (shown once)')
    .requiredOption('--name <name>', 'a name to recognise it by')
    .option('--scopes <list>', 'comma-separated: read,write,share', 'read,write,share')
    .option('--expires <duration>', 'e.g. 30d, 90d, never', '90d')
    .action((flags: { name: string; scopes?: string; expires?: string }) =>
      run((ctx) => token.tokenCreate(ctx, flags)),
    );
  tokens
    .command('ls')
    .description('list tokens')
    .action(() => run((ctx) => token.tokenList(ctx)));
  tokens
    .command('revoke')
    .description('revoke a token at once')
    .argument('<id>')
    .action((id: string) => run((ctx) => token.tokenRevoke(ctx, id)));

  program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish']))
    .action((shell: 'bash' | 'zsh' | 'fish') => {
      process.stdout.write(completion(shell, program));
    });

  registerSyncCommands(program, run);
  program.addOption(new Option('--debug', 'print stack traces').hideHelp());
  return program;
}

/** Root flags that take a value (so the word after them is not a command). */
const GLOBAL_WITH_VALUE = new Set(['--server', '--profile']);

/**
 * True for `aio --version` / `aio -V` (after global flags only). Not a root option of
 * commander's: those are recognised after the command too, so `aio restore PATH
 * --version 1` printed the version and exited 0 without restoring anything.
 */
function asksVersion(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--version' || arg === '-V') return true;
    if (!arg.startsWith('-')) return false;
    if (GLOBAL_WITH_VALUE.has(arg)) i++;
  }
  return false;
}

export async function main(argv: string[]): Promise<number> {
  if (asksVersion(argv.slice(2))) {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.OK;
  }
  let exitCode: number = EXIT.OK;
  let globals: GlobalOptions & { debug?: boolean } = {};
  const program = buildProgram(async (fn) => {
    globals = program.opts();
    const ctx = await createContext(globals);
    await fn(ctx);
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    exitCode = report(err, Boolean(globals.json) || argv.includes('--json'), Boolean(globals.debug));
  }
  return exitCode;
}

function report(err: unknown, json: boolean, debug: boolean): number {
  if (err instanceof CommanderError) {
    // Help and version exit 0; every parse error is a usage error.
    if (err.code === 'commander.helpDisplayed' || err.exitCode === 0) return EXIT.OK;
    return EXIT.USAGE;
  }
  if (err instanceof AppError) {
    if (json) process.stdout.write(`${JSON.stringify(err.toBody())}\n`);
    process.stderr.write(`error: ${err.message}\n`);
    if (debug && err.cause) process.stderr.write(`${String((err.cause as Error).stack ?? err.cause)}\n`);
    return exitCodeOf(err);
  }
  if (isPromptCancel(err)) {
    process.stderr.write('cancelled\n');
    return 130;
  }
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.stderr.write('This is a bug in aio; please report it with the output above.\n');
  return EXIT.ERROR;
}

function isPromptCancel(err: unknown): boolean {
  return err instanceof Error && (err.name === 'ExitPromptError' || err.name === 'AbortPromptError');
}
