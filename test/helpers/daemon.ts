/**
 * End-to-end helpers for the sync daemon: a real `aio-server`, an account with an API
 * token, the real CLI (`aio watch …`, `aio daemon run`) and comparisons of local and
 * remote trees by path and sha256. Processes started here are tracked; call
 * `stopDaemonProcesses()` (and `stopAllProcesses()` for the server) after each test.
 *
 * Until cli/program.ts registers the sync commands itself, the CLI runs through a small
 * entry (written to a temp dir) that adds them with `registerSyncCommands`; once the
 * program has a `daemon` command the entry just calls the real `main`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiClient, type TokenProvider } from '../../contract/client.js';
import { ROOT, startServer, tempDir, type ServerProcess } from './processes.js';
import { RemoteFolder } from '../../daemon/remote.js';

export { ROOT };

const fixedToken = (token: string): TokenProvider => ({
  current: async () => token,
  refresh: async () => null,
});

/** Fast timings for tests; each test may override. */
export const FAST: Record<string, string> = {
  AIO_DAEMON_DEBOUNCE_MS: '150',
  AIO_DAEMON_MAX_DELAY_MS: '2000',
  AIO_DAEMON_POLL_WAIT_S: '5',
  AIO_DAEMON_RETRY_BASE_MS: '200',
  AIO_DAEMON_RETRY_MAX_MS: '2000',
  AIO_DAEMON_OFFLINE_MAX_MS: '1000',
  AIO_DAEMON_SETTLE_MS: '150',
  AIO_DAEMON_MASS_DELETE_MIN: '5',
  AIO_DAEMON_ERROR_RETRY_MS: '500',
};

export interface Account {
  server: ServerProcess;
  url: string;
  token: string;
  client: ApiClient;
  dataDir: string;
}

let entryFile: string | null = null;

async function cliEntry(): Promise<string> {
  if (entryFile && (await fs.stat(entryFile).catch(() => null))) return entryFile;
  // Not a tracked temp dir: it must outlive each test's cleanup (it is a few hundred bytes).
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-entry-'));
  const dist = (p: string): string => JSON.stringify(path.join(ROOT, 'dist', p));
  entryFile = path.join(dir, 'aio-entry.mjs');
  await fs.writeFile(
    entryFile,
    `import { Command, CommanderError } from 'commander';
const { buildProgram, main } = await import(${dist('cli/program.js')});
const { registerSyncCommands } = await import(${dist('cli/commands/daemon.js')});
const { createContext } = await import(${dist('cli/context.js')});
const { AppError, exitCodeOf } = await import(${dist('contract/errors.js')});
const probe = buildProgram(async () => {});
if (probe.commands.some((c) => c.name() === 'daemon')) {
  process.exitCode = await main(process.argv);
} else {
  let program;
  const run = async (fn) => fn(await createContext(program.opts()));
  program = buildProgram(run);
  registerSyncCommands(program, run);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : 2;
    else {
      process.stderr.write('error: ' + (err instanceof AppError ? err.message : (err && err.stack) || String(err)) + '\\n');
      process.exitCode = exitCodeOf(err);
    }
  }
}
`,
  );
  // The entry resolves 'commander' from the project's node_modules.
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return entryFile;
}

/** A server with a fresh data dir and one account with a read/write API token. */
export async function startAccount(dataDir?: string, port = '0'): Promise<Account> {
  const dir = dataDir ?? (await tempDir('aio-data-'));
  const server = await startServer({ AIO_DATA_DIR: dir, AIO_BCRYPT_COST: '4', AIO_PORT: port });
  const email = `u${Date.now()}${Math.random().toString(36).slice(2, 6)}@example.com`;
  const password = 'correct horse battery';
  const post = async (p: string, body: unknown, token?: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`${server.url}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 400) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  await post('/api/v1/auth/register', { email, password });
  const login = await post('/api/v1/auth/login', { email, password });
  const created = await post(
    '/api/v1/tokens',
    { name: 'daemon-test', scopes: ['read', 'write'] },
    login.accessToken as string,
  );
  const token = created.token as string;
  return {
    server,
    url: server.url,
    token,
    client: new ApiClient(server.url, fixedToken(token)),
    dataDir: dir,
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function childEnv(
  configDir: string,
  account: { url: string; token: string },
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(AIO_|MONGODB_URI$|AMQP_URL$|REDIS_URL$)/.test(k)) base[k] = v;
  return {
    ...base,
    AIO_CONFIG_DIR: configDir,
    AIO_SERVER: account.url,
    AIO_TOKEN: account.token,
    AIO_NO_KEYRING: '1',
    ...FAST,
    ...extra,
  };
}

/** Runs `aio ARGS` to completion. */
export async function aio(
  args: string[],
  configDir: string,
  account: { url: string; token: string },
  extra: Record<string, string> = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [await cliEntry(), ...args], {
    env: childEnv(configDir, account, extra),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

export interface DaemonProcess {
  child: ChildProcess;
  configDir: string;
  output(): string;
  exited: Promise<number | null>;
  /** Sends the signal and waits (SIGKILL after 20 s). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const daemons = new Set<DaemonProcess>();

/** `aio daemon run` in the foreground; resolves once its control socket answers. */
export async function runDaemon(
  configDir: string,
  account: { url: string; token: string },
  extra: Record<string, string> = {},
  /** A command the daemon runs under, e.g. `unshare …` (it must exec its arguments). */
  wrap: string[] = [],
): Promise<DaemonProcess> {
  const argv = [...wrap, process.execPath, await cliEntry(), 'daemon', 'run'];
  const child = spawn(argv[0] as string, argv.slice(1), {
    env: childEnv(configDir, account, extra),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const proc: DaemonProcess = {
    child,
    configDir,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  daemons.add(proc);
  void exited.then(() => daemons.delete(proc));
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`daemon exited early:\n${out}`);
    return out.includes('aio daemon running');
  }, 15_000);
  return proc;
}

export async function stopDaemonProcesses(): Promise<void> {
  await Promise.all([...daemons].map((d) => d.stop('SIGKILL')));
}

/** Polls `check` until it returns true (or a truthy value); throws with `describe()` on timeout. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  timeoutMs = 20_000,
  describe?: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
      if (err instanceof Error && err.message.startsWith('daemon exited early')) throw err;
    }
    if (Date.now() > deadline) {
      const detail = describe ? await describe() : last instanceof Error ? last.message : String(last ?? '');
      throw new Error(`timed out after ${timeoutMs} ms${detail ? `: ${detail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sha = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Every regular file below `dir` (ignoring `*.partial`) → sha256. */
export async function localFiles(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const d of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) await walk(child);
      else if (d.isFile() && !d.name.endsWith('.partial'))
        out.set(child, sha(await fs.readFile(path.join(dir, child))));
    }
  };
  await walk('');
  return out;
}

/** Every file below the remote folder → sha256 (null while not ready). */
export async function remoteFiles(client: ApiClient, root: string): Promise<Map<string, string | null>> {
  const tree = await new RemoteFolder(client, root).listTree();
  const out = new Map<string, string | null>();
  for (const [p, e] of tree) if (e.kind === 'file') out.set(p, e.status === 'ready' ? e.sha256 : null);
  return out;
}

export function sameFiles(a: Map<string, string | null>, b: Map<string, string | null>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

export const show = (m: Map<string, string | null>): string =>
  JSON.stringify([...m].map(([k, v]) => `${k}:${(v ?? 'null').slice(0, 8)}`).sort());

/** A temp folder watched (`aio watch add`) under `remote` with its own config dir. */
export async function watched(account: Account, remote = '/sync'): Promise<{ dir: string; config: string }> {
  const dir = await fs.realpath(await tempDir('aio-local-'));
  const config = await tempDir('aio-config-');
  const added = await aio(['watch', 'add', dir, remote], config, account);
  if (added.code !== 0) throw new Error(`aio watch add failed: ${added.stderr}`);
  return { dir, config };
}

/** Waits until the local folder and the remote folder hold the same files (paths + sha256). */
export async function converged(account: Account, dir: string, remote = '/sync'): Promise<void> {
  await waitFor(
    async () => sameFiles(await localFiles(dir), await remoteFiles(account.client, remote)),
    20_000,
    async () =>
      `local ${show(await localFiles(dir))} remote ${show(await remoteFiles(account.client, remote))}`,
  );
}
