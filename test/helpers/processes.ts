/**
 * Runs the real programs (`bin/aio-server`, `bin/aio-worker`, built into dist/) as child
 * processes for end-to-end tests. Everything started here is tracked; call
 * `stopAllProcesses()` in `afterEach` so a failing test never leaves a process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type Program = 'aio-server' | 'aio-worker';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProgramProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Null while running. */
  exit(): Exit | null;
  /** Resolves with the first stdout/stderr line matching `pattern`; rejects on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** stdout and stderr, for failure messages. */
  describe(): string;
}

export interface ServerProcess extends ProgramProcess {
  /** From the `aio-server listening on …` line. */
  url: string;
}

const running = new Set<ProgramProcess>();
const tempDirs = new Set<string>();

/** Variables of the parent environment that would change which adapters a child uses. */
const SCRUBBED = /^(AIO_|MONGODB_URI$|AMQP_URL$|REDIS_URL$)/;

/**
 * Starts a program with the parent environment minus AIO_* and service URLs, plus `env`:
 * the executable itself, or (`via: 'npm start'`, the README's command; its build step
 * skipped) through npm.
 */
export function spawnProgram(
  program: Program,
  env: Record<string, string> = {},
  via: 'executable' | 'npm start' = 'executable',
): ProgramProcess {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !SCRUBBED.test(key)) base[key] = value;
  }
  // Run as users run it: the executable itself, so its `#!` line (and node's flags in it) applies.
  const [file, args] =
    via === 'npm start'
      ? ['npm', ['start', '--ignore-scripts', '--silent']]
      : [path.join(ROOT, 'bin', program), []];
  // npm runs the server through `sh` and exits on SIGTERM without passing it on: it is
  // stopped as a terminal or a service manager stops it, by signalling its process group.
  const group = via === 'npm start';
  const child = spawn(file, args, {
    cwd: ROOT,
    detached: group,
    env: { AIO_LOG_LEVEL: 'info', ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let exit: Exit | null = null;
  const listeners = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const l of listeners) l();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    for (const l of listeners) l();
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      exit = { code, signal };
      running.delete(proc);
      for (const l of listeners) l();
      resolve(exit);
    });
  });

  const proc: ProgramProcess = {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    exit: () => exit,
    describe: () => `${program} exit=${JSON.stringify(exit)}\n--- stdout ---\n${out}\n--- stderr ---\n${err}`,
    waitForLine(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const line of `${out}\n${err}`.split('\n')) {
            const match = line.match(pattern);
            if (match) return done(() => resolve(match));
          }
          if (exit)
            done(() => reject(new Error(`${program} exited before printing ${pattern}\n${proc.describe()}`)));
        };
        const timer = setTimeout(
          () =>
            done(() =>
              reject(new Error(`${program} did not print ${pattern} in ${timeoutMs} ms\n${proc.describe()}`)),
            ),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (exit) return exit;
      const kill = (s: NodeJS.Signals): void => {
        try {
          if (group) process.kill(-(child.pid as number), s);
          else child.kill(s);
        } catch {
          // the group is gone already
        }
      };
      kill(signal);
      const timer = setTimeout(() => kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  running.add(proc);
  return proc;
}

/** Starts `aio-server` (AIO_PORT=0 unless given) and waits for its listening line. */
export async function startServer(
  env: Record<string, string> = {},
  via: 'executable' | 'npm start' = 'executable',
): Promise<ServerProcess> {
  const proc = spawnProgram('aio-server', { AIO_PORT: '0', ...env }, via);
  const match = await proc.waitForLine(/^aio-server listening on (http:\/\/\S+)$/);
  return Object.assign(proc, { url: match[1] as string });
}

/** Runs a program until it exits (for start-up failures). */
export async function runToExit(
  program: Program,
  env: Record<string, string>,
  timeoutMs = 15_000,
): Promise<Exit & { stdout: string; stderr: string }> {
  const proc = spawnProgram(program, env);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const exit = await proc.exited.finally(() => clearTimeout(timer));
  return { ...exit, stdout: proc.stdout(), stderr: proc.stderr() };
}

/** Polls readiness until it answers 200; returns the last body. */
export async function waitForReady(url: string, timeoutMs = 15_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/api/v1/health/ready`);
      const body: unknown = await res.json();
      if (res.status === 200) return body;
      last = `${res.status} ${JSON.stringify(body)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms: ${last}`);
}

/** A temp directory removed by `stopAllProcesses()`. */
export async function tempDir(prefix = 'aio-proc-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Kills every process still running (SIGKILL) and removes the temp dirs. For `afterEach`/`afterAll`. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
  await Promise.all([...tempDirs].map((d) => fs.rm(d, { recursive: true, force: true })));
  tempDirs.clear();
}
