/**
 * The sync daemon as a process: the real `bin/aio` (`daemon start|stop|status|run|logs|
 * install-service`, `watch add`, `status`, `pause`, `resume`) against a real
 * `bin/aio-server`, with a temp AIO_CONFIG_DIR and a session from `register`/`login
 * --password-stdin`. The unreadable-file case runs the daemon as an unprivileged user
 * (setpriv), since root reads a `chmod 000` file anyway.
 */
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../contract/client.js';
import { aio, lastJson, type CliOptions, type CliResult } from './helpers/cli.js';
import { FAST, remoteFiles, sha, waitFor } from './helpers/daemon.js';
import { ROOT, startServer, stopAllProcesses, tempDir, type ServerProcess } from './helpers/processes.js';

const PASSWORD = 'correct horse battery staple';
const SETPRIV = '/usr/bin/setpriv';
const NOBODY = 65534;
/** Fast timings; a short long-poll so nothing waits on the change feed. */
const TUNABLES: Record<string, string> = { ...FAST, AIO_DAEMON_POLL_WAIT_S: '2' };

/** Daemon pids and config dirs seen by a test, killed in `afterEach`. */
const pids = new Set<number>();
const configs = new Set<string>();

/** Alive and not a zombie waiting to be reaped. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

async function readPidFile(config: string): Promise<number | null> {
  const text = await fs.readFile(path.join(config, 'daemon.pid'), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

afterEach(async () => {
  for (const config of configs) {
    const pid = await readPidFile(config);
    if (pid !== null) pids.add(pid);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitFor(() => [...pids].every((pid) => !isAlive(pid)), 10_000);
  pids.clear();
  configs.clear();
  await stopAllProcesses();
});

interface Setup {
  server: ServerProcess;
  config: string;
  env: Record<string, string>;
  /** The test's own view of the server (not the CLI's session). */
  client: ApiClient;
}

/** A server, a config dir and a CLI session (`register` + `login --password-stdin`). */
async function setup(extra: Record<string, string> = {}): Promise<Setup> {
  const server = await startServer({ AIO_DATA_DIR: await tempDir('aio-data-'), AIO_BCRYPT_COST: '4' });
  const config = await tempDir('aio-config-');
  configs.add(config);
  const env = { AIO_CONFIG_DIR: config, AIO_SERVER: server.url, AIO_NO_KEYRING: '1', ...TUNABLES, ...extra };
  const email = `p${Date.now()}${Math.random().toString(36).slice(2, 6)}@example.com`;
  const input = `${PASSWORD}\n`;
  const registered = await aio(['register', '--email', email, '--password-stdin'], { env, input });
  expect(registered.exitCode, registered.stderr).toBe(0);
  const login = await aio(['login', '--email', email, '--password-stdin'], { env, input });
  expect(login.exitCode, login.stderr).toBe(0);
  const res = await fetch(`${server.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const { accessToken } = (await res.json()) as { accessToken: string };
  const client = new ApiClient(server.url, {
    current: async () => accessToken,
    refresh: async () => null,
  });
  return { server, config, env, client };
}

/** `aio daemon start`; remembers the daemon's pid for cleanup. */
async function startDaemon(s: Setup, run = aio): Promise<number> {
  const started = await run(['daemon', 'start'], { env: s.env });
  expect(started.exitCode, started.stderr).toBe(0);
  const pid = await readPidFile(s.config);
  expect(pid).not.toBeNull();
  pids.add(pid as number);
  return pid as number;
}

async function localDir(): Promise<string> {
  return fs.realpath(await tempDir('aio-local-'));
}

async function onServer(s: Setup, remote: string): Promise<Map<string, string | null>> {
  return remoteFiles(s.client, remote).catch(() => new Map<string, string | null>());
}

interface FolderJson {
  local: string;
  remote: string;
  state: string;
  queued: number;
  watching: boolean;
  errors: Array<{ op: string; path: string; error: string; attempts: number }>;
}

async function folderStatus(s: Setup, run = aio): Promise<FolderJson> {
  const r = await run(['status', '--json'], { env: s.env });
  expect(r.exitCode, r.stderr).toBe(0);
  const body = lastJson<{ daemon: string; folders: FolderJson[] }>(r.stdout);
  expect(body.daemon).toBe('running');
  expect(body.folders).toHaveLength(1);
  return body.folders[0] as FolderJson;
}

/** Waits until the folder's queue is empty and it is idle (and, with `watching`, watched). */
async function folderIdle(s: Setup, watching = false): Promise<void> {
  await waitFor(async () => {
    const f = await folderStatus(s);
    return f.state === 'idle' && f.queued === 0 && (!watching || f.watching);
  }, 20_000);
}

describe('aio daemon as a process', () => {
  it('starts detached, refuses a second instance, syncs, pauses, logs, stops and survives a stale pid file', async () => {
    // The default long-poll: a stopped daemon must not wait for an open change-feed request.
    const s = await setup({ AIO_DAEMON_POLL_WAIT_S: '30' });
    const sockFile = path.join(s.config, 'daemon.sock');

    const before = Date.now();
    const pid = await startDaemon(s);
    expect(Date.now() - before).toBeLessThan(15_000);
    expect(isAlive(pid)).toBe(true);
    const sock = await fs.stat(sockFile);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o600);

    const status = await aio(['daemon', 'status', '--json'], { env: s.env });
    expect(status.exitCode, status.stderr).toBe(0);
    expect(lastJson<{ running: boolean; pid: number }>(status.stdout)).toMatchObject({ running: true, pid });

    // A second daemon is refused, detached or in the foreground: exit 5 (conflict).
    const again = await aio(['daemon', 'start'], { env: s.env });
    expect(again.exitCode).toBe(5);
    expect(again.stderr).toMatch(new RegExp(`already running \\(pid ${pid}\\)`));
    const foreground = await aio(['daemon', 'run'], { env: s.env, timeoutMs: 15_000 });
    expect(foreground.exitCode).toBe(5);
    expect(foreground.stderr).toMatch(/already running/);
    expect(await readPidFile(s.config)).toBe(pid);
    expect(isAlive(pid)).toBe(true);

    const local = await localDir();
    const added = await aio(['watch', 'add', local, '/remote'], { env: s.env });
    expect(added.exitCode, added.stderr).toBe(0);
    await fs.writeFile(path.join(local, 'a.txt'), 'alpha');
    await waitFor(async () => (await onServer(s, '/remote')).get('a.txt') === sha('alpha'), 15_000);

    const folder = await folderStatus(s);
    expect(folder).toMatchObject({ local, remote: '/remote' });
    expect(['scanning', 'syncing', 'idle']).toContain(folder.state);
    expect(folder.queued).toBeGreaterThanOrEqual(0);
    expect(folder.errors).toEqual([]);
    // The watcher sets up its watches once the first push is done: then the status says so,
    // and a change is seen at once.
    await waitFor(async () => (await folderStatus(s)).watching, 15_000);
    const human = await aio(['status'], { env: s.env });
    expect(human.exitCode, human.stderr).toBe(0);
    expect(human.stdout).not.toMatch(/watcher starting/);
    await fs.writeFile(path.join(local, 'w.txt'), 'watched');
    await waitFor(async () => (await onServer(s, '/remote')).get('w.txt') === sha('watched'), 15_000);

    const paused = await aio(['pause'], { env: s.env });
    expect(paused.exitCode, paused.stderr).toBe(0);
    expect((await folderStatus(s)).state).toBe('paused');
    await fs.writeFile(path.join(local, 'b.txt'), 'bravo');
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await onServer(s, '/remote')).has('b.txt')).toBe(false);
    const resumed = await aio(['resume'], { env: s.env });
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    await waitFor(async () => (await onServer(s, '/remote')).get('b.txt') === sha('bravo'), 15_000);

    const logs = await aio(['daemon', 'logs', '-n', '20'], { env: s.env });
    expect(logs.exitCode, logs.stderr).toBe(0);
    const lines = logs.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    const entries = lines.map((l) => JSON.parse(l) as { msg: string; pid: number; level: number });
    expect(entries.map((e) => e.msg)).toContain('daemon started');
    expect(entries.every((e) => typeof e.level === 'number')).toBe(true);

    const stopAt = Date.now();
    const stopped = await aio(['daemon', 'stop'], { env: s.env, timeoutMs: 20_000 });
    expect(stopped.exitCode, stopped.stderr).toBe(0);
    await waitFor(() => !isAlive(pid), 5_000);
    expect(Date.now() - stopAt).toBeLessThan(6_000);
    expect(existsSync(sockFile)).toBe(false);
    const down = await aio(['daemon', 'status'], { env: s.env });
    expect(down.exitCode).toBe(6);
    expect(down.stderr).toMatch(/not running/);

    // SIGKILL leaves the pid file and the socket behind; the next start takes them over.
    const second = await startDaemon(s);
    process.kill(second, 'SIGKILL');
    await waitFor(() => !isAlive(second), 5_000);
    expect(await readPidFile(s.config)).toBe(second);
    const third = await startDaemon(s);
    expect(third).not.toBe(second);
    expect(isAlive(third)).toBe(true);
    const after = await aio(['daemon', 'status', '--json'], { env: s.env });
    expect(lastJson<{ pid: number }>(after.stdout).pid).toBe(third);
    await fs.writeFile(path.join(local, 'c.txt'), 'charlie');
    await waitFor(async () => (await onServer(s, '/remote')).get('c.txt') === sha('charlie'), 15_000);
  }, 60_000);

  it('rotates its log by size and keeps a bounded number of old files', async () => {
    const maxBytes = 2_000;
    const s = await setup({
      AIO_DAEMON_LOG_MAX_BYTES: String(maxBytes),
      AIO_DAEMON_LOG_KEEP: '2',
      AIO_LOG_LEVEL: 'debug',
    });
    await startDaemon(s);
    const local = await localDir();
    const added = await aio(['watch', 'add', local, '/logs'], { env: s.env });
    expect(added.exitCode, added.stderr).toBe(0);
    for (let i = 0; i < 40; i++) await fs.writeFile(path.join(local, `f${i}.txt`), `file ${i}`);
    await waitFor(async () => (await onServer(s, '/logs')).size === 40, 20_000);
    // The server lists a batch as soon as it committed it; the daemon logs each upload once
    // it has read the batch's answer, so wait until its queue is empty too.
    await folderIdle(s);

    const logFiles = (await fs.readdir(s.config)).filter((f) => f.startsWith('daemon.log')).sort();
    expect(logFiles).toEqual(['daemon.log', 'daemon.log.1', 'daemon.log.2']);
    for (const name of logFiles) {
      const text = await fs.readFile(path.join(s.config, name), 'utf8');
      // Rotation happens after the line that crosses the limit.
      expect(Buffer.byteLength(text)).toBeLessThan(maxBytes + 1_000);
      for (const line of text.split('\n').filter(Boolean))
        expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
    const rotated = await fs.readFile(path.join(s.config, 'daemon.log.1'), 'utf8');
    expect(Buffer.byteLength(rotated)).toBeGreaterThanOrEqual(maxBytes);
  }, 40_000);

  it('collects its garbage once quiet (idle and watched), with gc found at run time, and not before its heap grew enough', async () => {
    /** The daemon's `quiet: garbage collected` lines so far. */
    const collections = async (s: Setup): Promise<Array<{ heapUsedBefore: number; heapUsedAfter: number }>> =>
      (await fs.readFile(path.join(s.config, 'daemon.log'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { msg: string; heapUsedBefore: number; heapUsedAfter: number })
        .filter((entry) => entry.msg === 'quiet: garbage collected');
    const syncedAndIdle = async (s: Setup): Promise<void> => {
      const local = await localDir();
      const added = await aio(['watch', 'add', local, '/quiet'], { env: s.env });
      expect(added.exitCode, added.stderr).toBe(0);
      for (let i = 0; i < 20; i++) await fs.writeFile(path.join(local, `f${i}.txt`), `file ${i}`);
      await waitFor(async () => (await onServer(s, '/quiet')).size === 20, 20_000);
      await folderIdle(s, true);
    };

    // Any growth counts: the `aio` process (plain node, no --expose-gc) collects once quiet.
    const eager = await setup({ AIO_DAEMON_COMPACT_CHECK_MS: '100', AIO_DAEMON_COMPACT_GROWTH_BYTES: '0' });
    await startDaemon(eager);
    await syncedAndIdle(eager);
    await waitFor(async () => (await collections(eager)).length > 0, 10_000);
    const [first] = await collections(eager);
    expect(first?.heapUsedAfter).toBeLessThan(first?.heapUsedBefore as number);

    // The default threshold (24 MiB of growth): a small folder never gets there.
    const thrifty = await setup({ AIO_DAEMON_COMPACT_CHECK_MS: '100' });
    await startDaemon(thrifty);
    await syncedAndIdle(thrifty);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await collections(thrifty)).toEqual([]);
  }, 60_000);

  it('install-service writes a systemd user unit with absolute paths and runs no systemctl', async () => {
    const home = await tempDir('aio-home-');
    const config = await tempDir('aio-config-');
    const env = {
      HOME: home,
      // No systemctl reachable: the command only writes the unit and explains how to enable it.
      PATH: path.join(home, 'no-bin'),
      AIO_CONFIG_DIR: config,
      AIO_SERVER: 'http://127.0.0.1:9',
      AIO_NO_KEYRING: '1',
    };
    const r = await aio(['daemon', 'install-service'], { env });
    expect(r.exitCode, r.stderr).toBe(0);
    const unitFile = path.join(home, '.config/systemd/user/aio-daemon.service');
    expect(r.stdout).toContain(unitFile);
    expect(r.stdout).toMatch(
      /systemctl --user daemon-reload && systemctl --user enable --now aio-daemon\.service/,
    );
    const unit = await fs.readFile(unitFile, 'utf8');
    const execStart = unit.split('\n').find((l) => l.startsWith('ExecStart='));
    const script = await fs.realpath(path.join(ROOT, 'bin', 'aio'));
    expect(execStart).toBe(`ExecStart=${process.execPath} ${script} daemon run`);
    expect(path.isAbsolute(process.execPath)).toBe(true);
    expect(unit).toContain(`Environment=AIO_CONFIG_DIR=${config}`);
    expect(unit).toContain('Environment=AIO_SERVER=http://127.0.0.1:9');
    expect(unit).toMatch(/\[Install\]\nWantedBy=default\.target/);
  });

  it('reports an unreadable file as an error, syncs the rest and retries it with backoff', async (ctx) => {
    if (!existsSync(SETPRIV)) ctx.skip(`${SETPRIV} is not installed: cannot run the daemon unprivileged`);
    if (process.getuid?.() !== 0) ctx.skip('not root: setpriv cannot switch to an unprivileged user');
    const s = await setup();
    // The session was written by root; hand the config dir to the unprivileged user.
    await chownTree(s.config, NOBODY);
    await fs.chmod(s.config, 0o700);
    const local = await localDir();
    await fs.chown(local, NOBODY, NOBODY);
    await fs.chmod(local, 0o755);
    const asNobody = unprivileged;

    const pid = await startDaemon(s, asNobody);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s`, 'm'));
    const added = await asNobody(['watch', 'add', local, '/locked'], { env: s.env });
    expect(added.exitCode, added.stderr).toBe(0);

    await fs.writeFile(path.join(local, 'ok1.txt'), 'one');
    // Created unreadable (root can still write through the descriptor it opened).
    await fs.writeFile(path.join(local, 'locked.txt'), 'secret', { mode: 0o000 });
    expect((await fs.stat(path.join(local, 'locked.txt'))).mode & 0o777).toBe(0);
    await fs.writeFile(path.join(local, 'ok2.txt'), 'two');
    await waitFor(
      async () => {
        const files = await onServer(s, '/locked');
        return files.get('ok1.txt') === sha('one') && files.get('ok2.txt') === sha('two');
      },
      15_000,
      async () => JSON.stringify([...(await onServer(s, '/locked'))]),
    );

    const failure = await waitFor(
      async () => {
        const f = await folderStatus(s, asNobody);
        return f.errors.find((e) => e.path === 'locked.txt') ?? null;
      },
      10_000,
      async () => JSON.stringify(await folderStatus(s, asNobody)),
    );
    expect(failure).toMatchObject({ op: 'upload', error: expect.stringMatching(/EACCES|permission denied/) });
    const text = await asNobody(['status'], { env: s.env });
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/error: upload locked\.txt: .*(EACCES|permission denied)/);
    expect((await folderStatus(s, asNobody)).queued).toBeGreaterThanOrEqual(1);

    // Backoff, not a hot loop: count the attempts logged over 5 s.
    const attempts = async (): Promise<number> => {
      const log = await fs.readFile(path.join(s.config, 'daemon.log'), 'utf8');
      return log
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg?: string; path?: string })
        .filter((e) => e.msg === 'operation failed; will retry' && e.path === 'locked.txt').length;
    };
    const first = await attempts();
    await new Promise((r) => setTimeout(r, 5_000));
    const during = (await attempts()) - first;
    // 200 ms doubling to 2 s: about 3 attempts in 5 s; a hot loop would log hundreds.
    expect(during).toBeGreaterThanOrEqual(1);
    expect(during).toBeLessThanOrEqual(8);
    expect((await onServer(s, '/locked')).has('locked.txt')).toBe(false);
  }, 60_000);
});

/** Runs `aio` as uid/gid 65534 with no supplementary groups. */
async function unprivileged(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const r = await execa(
    SETPRIV,
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      process.execPath,
      path.join(ROOT, 'bin', 'aio'),
      ...args,
    ],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', ...options.env },
      extendEnv: false,
      input: options.input ?? '',
      cwd: '/',
      reject: false,
      timeout: options.timeoutMs ?? 60_000,
    },
  );
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function chownTree(dir: string, uid: number): Promise<void> {
  await fs.chown(dir, uid, uid);
  for (const d of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) await chownTree(p, uid);
    else await fs.chown(p, uid, uid);
  }
}
