/**
 * Process helpers for the benchmark harness. Every process is started in its own process
 * group (`detached`), tracked, and stopped by its pid (the group id) — in `finally`
 * blocks, on SIGINT/SIGTERM and on an uncaught failure — so a run never leaves anything
 * behind. Peak RSS comes from `/usr/bin/time -f %M` when it exists (exact, includes
 * children), else from sampling `VmHWM` in /proc/<pid>/status.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export interface Service {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Last 64 KiB of stdout+stderr. */
  output(): string;
  /** Resolves with the first output line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Peak resident set so far, KiB, summed over the process and its children (null once exited). */
  peakRssKb(): number | null;
  rssKb(): number | null;
  /** CPU time (user+system) so far, in clock ticks converted to ms. */
  cpuMs(): number | null;
  running(): boolean;
  stop(): Promise<void>;
}

export interface RunResult {
  ms: number;
  code: number | null;
  peakRssKb: number | null;
  /** User + system CPU time of the command and its children, ms (null without /usr/bin/time). */
  cpuMs: number | null;
  stdout: string;
  stderr: string;
}

const live = new Set<Service>();
/** The last services started: their output is shown after a failure. */
const recent: Service[] = [];

/** The last `chars` of the output of every service started so far that has output. */
export function serviceLogs(chars = 3000): string {
  return recent
    .filter((s) => s.output().trim())
    .map((s) => `--- ${s.name} (pid ${s.pid}) ---\n${s.output().slice(-chars)}`)
    .join('\n');
}
const tempDirs = new Set<string>();
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const CLK_TCK = 100;

function procField(pid: number, field: string): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The pid and every live descendant of it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift() as number;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Sum of the peaks (VmHWM, KiB) of a process and its descendants (syncthing forks a monitor). */
export function treeHwm(pid: number): number | null {
  let sum = 0;
  let any = false;
  for (const p of processTree(pid)) {
    const v = vmHwm(p);
    if (v !== null) {
      sum += v;
      any = true;
    }
  }
  return any ? sum : null;
}

/** Peak RSS (KiB) of a live process. */
export function vmHwm(pid: number): number | null {
  return procField(pid, 'VmHWM');
}

/** utime+stime of a live process, ms. */
export function cpuTimeMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { sleep };

/**
 * Writes every dirty page out (`sync`) before a timed turn, untimed: a tool that leaves
 * its writes to the kernel (rclone, `cp`, the tree written for W2) must not slow down
 * whichever tool runs next with their writeback.
 */
export function flushDisks(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Service URLs and AIO_* of the caller would change which adapters the server uses.
    // NODE_EXTRA_CA_CERTS makes every Node process parse that file as it starts, before
    // any code runs (some sandboxes point it at the whole system bundle: 50 ms per start
    // here); nothing in the benchmarks speaks TLS, and rclone and Syncthing read no such file.
    if (v !== undefined && !/^(AIO_|MONGODB_URI$|AMQP_URL$|REDIS_URL$|NODE_EXTRA_CA_CERTS$)/.test(k))
      env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Starts a long-running process (server, sink, rclone serve, syncthing). */
export function startService(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Service {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  const pid = child.pid;
  let out = '';
  let exited = false;
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out = (out + chunk.toString('utf8')).slice(-65_536);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exitedP = new Promise<void>((resolve) => {
    child.on('close', () => {
      exited = true;
      live.delete(svc);
      for (const l of listeners) l();
      resolve();
    });
  });
  const svc: Service = {
    name,
    pid,
    child,
    output: () => out,
    running: () => !exited,
    peakRssKb: () => (exited ? null : treeHwm(pid)),
    rssKb: () => (exited ? null : procField(pid, 'VmRSS')),
    cpuMs: () => (exited ? null : cpuTimeMs(pid)),
    waitForLine(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => finish(new Error(`${name}: no line ${pattern} in ${timeoutMs} ms\n${out}`)),
          timeoutMs,
        );
        const check = () => {
          for (const line of out.split('\n')) {
            const m = pattern.exec(line);
            if (m) return finish(null, m);
          }
          if (exited) finish(new Error(`${name} exited before printing ${pattern}\n${out}`));
        };
        const finish = (err: Error | null, m?: RegExpMatchArray) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve(m as RegExpMatchArray);
        };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (exited) return;
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 10_000);
      await exitedP;
      clearTimeout(timer);
      // Children that outlived the leader (syncthing's monitor, etc.).
      killGroup(pid, 'SIGKILL');
    },
  };
  live.add(svc);
  recent.push(svc);
  if (recent.length > 8) recent.shift();
  return svc;
}

/**
 * Runs a command to completion: wall time, exit code, peak RSS and CPU time of the
 * command (and its children, with /usr/bin/time). Throws on a non-zero exit unless
 * `allowFail`.
 */
export async function runTimed(
  name: string,
  cmd: string,
  args: string[],
  opts: SpawnOptions & { allowFail?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  const timeFile = TIME ? path.join(os.tmpdir(), `aio-bench-time-${process.pid}-${Math.random()}`) : null;
  const [bin, argv] =
    TIME && timeFile ? [TIME, ['-f', '%M %U %S', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const start = performance.now();
  const child = spawn(bin, argv, {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = child.pid;
  const tracker: Service = {
    name,
    pid,
    child,
    output: () => '',
    waitForLine: () => Promise.reject(new Error('n/a')),
    peakRssKb: () => null,
    rssKb: () => null,
    cpuMs: () => null,
    running: () => child.exitCode === null,
    stop: async () => killGroup(pid, 'SIGKILL'),
  };
  live.add(tracker);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout = (stdout + c.toString('utf8')).slice(-1_000_000)));
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-200_000)));
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  // Fallback sampling when /usr/bin/time is missing.
  let sampled: number | null = null;
  const sampler = TIME
    ? null
    : setInterval(() => {
        const v = vmHwm(pid);
        if (v !== null) sampled = Math.max(sampled ?? 0, v);
      }, 25);
  const timer = opts.timeoutMs ? setTimeout(() => killGroup(pid, 'SIGKILL'), opts.timeoutMs) : null;
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const ms = performance.now() - start;
  if (sampler) clearInterval(sampler);
  if (timer) clearTimeout(timer);
  live.delete(tracker);
  killGroup(pid, 'SIGKILL'); // stragglers of the group
  let peakRssKb: number | null = sampled;
  let cpuMs: number | null = null;
  if (timeFile) {
    const text = await fs.readFile(timeFile, 'utf8').catch(() => '');
    await fs.rm(timeFile, { force: true });
    // The last line is ours (a command killed by a signal gets a line before it).
    const lines = text.trim().split('\n');
    const [rss, user, system] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
    if (rss !== undefined && Number.isFinite(rss) && rss > 0) peakRssKb = rss;
    if (user !== undefined && system !== undefined && Number.isFinite(user + system))
      cpuMs = Math.round((user + system) * 1000);
  }
  if (code !== 0 && !opts.allowFail) {
    throw new Error(
      `${name} exited ${code}\n$ ${cmd} ${args.join(' ')}\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`,
    );
  }
  return { ms, code, peakRssKb, cpuMs, stdout, stderr };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * The whole disk (its name in /proc/diskstats) that holds `dir`, or null where there is
 * no such file (not Linux, a file system without a block device such as tmpfs).
 */
export function diskOf(dir: string): string | null {
  try {
    const dev = statSync(dir).dev;
    // Linux's dev_t: the major number in bits 8–19 (and 32+), the minor in 0–7 and 20+.
    const major = Math.floor(dev / 256) & 0xfff;
    const minor = (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);
    const sys = `/sys/dev/block/${major}:${minor}`;
    // A partition's folder sits inside its disk's.
    const disk = existsSync(`${sys}/partition`) ? path.join(sys, '..') : sys;
    const name = /^DEVNAME=(.+)$/m.exec(readFileSync(`${disk}/uevent`, 'utf8'))?.[1];
    return name ?? null;
  } catch {
    return null;
  }
}

/** Milliseconds `disk` has had I/O in flight since boot (/proc/diskstats' io_ticks), or null. */
export function diskBusyMs(disk: string): number | null {
  try {
    for (const line of readFileSync('/proc/diskstats', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[2] === disk) return Number(f[12]);
    }
  } catch {
    /* not Linux */
  }
  return null;
}

/**
 * Runs `work` and says for what share of its time `disk` had I/O in flight (0–100), or
 * null when the disk's counters cannot be read: near 100 % the work waited on the disk.
 */
export async function withDiskBusy<T>(
  disk: string | null,
  work: () => Promise<T>,
): Promise<{ result: T; busyPct: number | null }> {
  const before = disk ? diskBusyMs(disk) : null;
  const start = performance.now();
  const result = await work();
  const wall = performance.now() - start;
  const after = disk ? diskBusyMs(disk) : null;
  const busyPct =
    before === null || after === null || wall <= 0 ? null : Math.min(100, ((after - before) / wall) * 100);
  return { result, busyPct };
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `aio-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Stops every tracked process (by pid) and removes the temp dirs. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop().catch(() => undefined)));
  await Promise.all(
    [...tempDirs].map((d) => fs.rm(d, { recursive: true, force: true }).catch(() => undefined)),
  );
  tempDirs.clear();
}

let handlersInstalled = false;
export function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping ${live.size} process(es)…\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
  process.on('exit', () => {
    // Last resort, synchronous: nothing may survive the harness.
    for (const s of live) killGroup(s.pid, 'SIGKILL');
  });
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
