/**
 * Daemon workloads, run against a real `aio daemon run` (foreground, push mode, default
 * tunables) and a fresh aio-server:
 * - W4 change-to-server latency: a 4 KiB file written into a watched folder until
 *   `GET /api/v1/fs/stat` lists it with the right sha256 (sequential trials, a fresh name
 *   each), against two Syncthing instances (file on A → same bytes on B) with
 *   fsWatcherDelayS=1 and with the default 10 s.
 * - Memory/CPU: the daemon's initial push of the W2 set (time, peak RSS); on 100,000 tiny
 *   files its first scan, its initial push (capped), then — after a restart on a journal
 *   that matches the tree — the start-up scan, idle RSS and CPU%, and a change still seen.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  flushDisks,
  removeDir,
  runTimed,
  sleep,
  startService,
  tempDir,
  type Service,
  waitFor,
} from './proc.js';
import { megabytes, type Results } from './results.js';
import {
  ROOT,
  startAio,
  startSyncthingPair,
  stopSyncthingPair,
  verifyAio,
  type Aio,
  type SyncthingPair,
} from './tools.js';
import { applyChanges, percentile, sha256, sha256File, writeTree } from './util.js';

/** True when `bin/aio --help` lists both `watch` and `daemon`. */
export async function daemonAvailable(): Promise<boolean> {
  const r = await runTimed('aio --help', process.execPath, [path.join(ROOT, 'bin', 'aio'), '--help'], {
    allowFail: true,
  });
  const commands = r.stdout + r.stderr;
  return /^\s+watch\b/m.test(commands) && /^\s+daemon\b/m.test(commands);
}

export interface DaemonOptions {
  available: boolean;
  w4: boolean;
  mem: boolean;
  /** Runs of the daemon's W2 push and W3 resyncs (each on a fresh tree, server and daemon). */
  runs: number;
  trials: number;
  quick: boolean;
}

const W4_SIZE = 4096;
/** Per-trial cap: a lost change fails the run instead of hanging it. */
const TRIAL_CAP_MS = 60_000;
const POLL_MS = 10;

interface FolderStatus {
  local: string;
  state: string;
  queued: number;
  running: number;
  lastSyncAt: string | null;
  /** The watcher has set up its watches (it starts once the first scan's work has drained). */
  watching: boolean;
  errors: unknown[];
}

/** One request on the daemon's control socket (newline-delimited JSON). */
function ipc<T>(configDir: string, cmd: string, timeoutMs = 10_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const socket = net.createConnection(path.join(configDir, 'daemon.sock'));
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`daemon did not answer ${cmd} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ cmd })}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      socket.end();
      const reply = JSON.parse(buffer.slice(0, nl)) as
        { ok: true; result: T } | { ok: false; error: { message: string } };
      if (reply.ok) resolve(reply.result);
      else reject(new Error(`daemon ${cmd}: ${reply.error.message}`));
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function folderStatus(aio: Aio): Promise<FolderStatus> {
  const s = await ipc<{ folders: FolderStatus[] }>(aio.configDir, 'status');
  const f = s.folders[0];
  if (!f) throw new Error('daemon status lists no folder');
  return f;
}

/** Idle with nothing queued or running (and, when `synced`, a sync completed at least once). */
function settled(f: FolderStatus, synced: boolean): boolean {
  return f.state === 'idle' && f.queued === 0 && f.running === 0 && (!synced || f.lastSyncAt !== null);
}

/** `aio daemon run` in the foreground, with the benchmark account's environment. */
function spawnDaemon(aio: Aio): Service {
  return startService('aio daemon', process.execPath, [path.join(ROOT, 'bin', 'aio'), 'daemon', 'run'], {
    cwd: ROOT,
    env: aio.env,
  });
}

/** `aio watch add LOCAL REMOTE --mode push`, then `aio daemon run` in the foreground. */
async function startDaemon(
  aio: Aio,
  local: string,
  remote: string,
): Promise<{ daemon: Service; t0: number }> {
  await aio.cli(['watch', 'add', local, remote, '--mode', 'push']);
  const t0 = performance.now();
  const daemon = spawnDaemon(aio);
  await daemon.waitForLine(/aio daemon running/, 30_000);
  return { daemon, t0 };
}

/** Waits until the daemon's folder is settled; returns the last status. Throws past `capMs` unless `soft`. */
async function waitSettled(
  aio: Aio,
  daemon: Service,
  synced: boolean,
  capMs: number,
  soft = false,
  onStatus?: (f: FolderStatus) => void,
): Promise<{ ok: boolean; status: FolderStatus | null }> {
  const deadline = performance.now() + capMs;
  let last: FolderStatus | null = null;
  for (;;) {
    if (!daemon.running()) throw new Error(`aio daemon exited:\n${daemon.output().slice(-2000)}`);
    last = await folderStatus(aio).catch(() => last);
    if (last) onStatus?.(last);
    if (last && settled(last, synced)) return { ok: true, status: last };
    if (performance.now() > deadline) {
      if (soft) return { ok: false, status: last };
      throw new Error(`aio daemon not idle after ${capMs / 1000} s: ${JSON.stringify(last)}`);
    }
    await sleep(100);
  }
}

/** Waits until the daemon's watcher has set up its watches (a change is then seen at once). */
async function waitWatching(aio: Aio, daemon: Service, capMs: number): Promise<void> {
  await waitFor(
    'aio daemon watching',
    async () => {
      if (!daemon.running()) throw new Error(`aio daemon exited:\n${daemon.output().slice(-2000)}`);
      return (await folderStatus(aio).catch(() => null))?.watching === true;
    },
    capMs,
    POLL_MS,
  );
}

async function statSha(aio: Aio, remotePath: string): Promise<string | null> {
  const res = await fetch(`${aio.url}/api/v1/fs/stat?${new URLSearchParams({ path: remotePath })}`, {
    headers: { authorization: `Bearer ${aio.token}` },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status !== 200) throw new Error(`stat ${remotePath} → ${res.status} ${await res.text()}`);
  const e = (await res.json()) as { sha256: string | null; status?: string };
  return e.status === undefined || e.status === 'ready' ? e.sha256 : null;
}

/**
 * Waits until `GET /fs/stat` shows every changed file of `change` under `remoteRoot` with
 * its new sha256. Polled a few files at a time (the ones not yet seen right), so that the
 * polling itself does not load the server the daemon is pushing to; while every probed
 * file is right the next probe is twice as wide and goes at once.
 */
async function waitPushed(
  aio: Aio,
  remoteRoot: string,
  change: { manifest: Map<string, string>; modified: string[]; added: string[] },
): Promise<void> {
  const waiting = new Set([...change.modified, ...change.added]);
  let width = 4;
  await waitFor(
    'the daemon pushed the W3 changes',
    async () => {
      for (;;) {
        const probe = [...waiting].slice(0, width);
        const shas = await Promise.all(probe.map((rel) => statSha(aio, `${remoteRoot}/${rel}`)));
        const right = probe.filter((rel, i) => shas[i] === change.manifest.get(rel));
        for (const rel of right) waiting.delete(rel);
        if (waiting.size === 0) return true;
        if (right.length < probe.length) {
          width = 4;
          return false;
        }
        width = Math.min(64, width * 2);
      }
    },
    120_000,
    POLL_MS,
  );
}

/**
 * Waits as Syncthing's W3 is waited for (its REST API's counts, then the bytes of a few
 * files): until the daemon reports the folder idle with nothing queued or running after
 * `since` (an upload leaves the queue only once the server has committed it), and
 * `GET /fs/stat` shows four of the changed files with their new sha256. The caller then
 * checks every file on the server, untimed. Polling 100 files over HTTP after the daemon
 * was done added ~100 ms of the harness's own requests.
 */
async function waitDaemonSynced(
  aio: Aio,
  remoteRoot: string,
  change: { manifest: Map<string, string>; modified: string[]; added: string[] },
  since: number,
): Promise<void> {
  const probe = [...change.modified.slice(0, 2), ...change.added.slice(0, 2)];
  await waitFor(
    'the daemon reported the changes pushed',
    async () => {
      const f = await folderStatus(aio);
      if (!settled(f, true) || Date.parse(f.lastSyncAt ?? '') < since) return false;
      const shas = await Promise.all(probe.map((rel) => statSha(aio, `${remoteRoot}/${rel}`)));
      return probe.every((rel, i) => shas[i] === change.manifest.get(rel));
    },
    120_000,
    POLL_MS,
  );
}

/** Writes a fresh 4 KiB file and times until `arrived(name, sha)` holds. */
async function latencyTrials(
  what: string,
  trials: number,
  dir: string,
  arrived: (name: string, sha: string) => Promise<boolean>,
): Promise<number[]> {
  const out: number[] = [];
  flushDisks();
  for (let i = 0; i < trials; i++) {
    const name = `w4-${Date.now()}-${i}.bin`;
    const buf = randomBytes(W4_SIZE);
    const sha = sha256(buf);
    const t0 = performance.now();
    await fs.writeFile(path.join(dir, name), buf);
    await waitFor(`${what}: ${name} arrived`, () => arrived(name, sha), TRIAL_CAP_MS, POLL_MS);
    out.push(performance.now() - t0);
    process.stdout.write('.');
    // Trials apart: the next write must not fall into the previous one's debounce window.
    await sleep(300);
  }
  console.log(' ok');
  return out;
}

function addLatencies(results: Results, tool: string, values: number[]): void {
  for (const v of values) results.add(`W4 latency trial | ${tool}`, 'ms', v);
  results.add(`W4 latency p50 | ${tool}`, 'ms', percentile(values, 50));
  results.add(`W4 latency p95 | ${tool}`, 'ms', percentile(values, 95));
}

async function runW4(opts: DaemonOptions, results: Results): Promise<void> {
  const st1 = 'syncthing fsWatcherDelayS=1';
  const st10 = 'syncthing fsWatcherDelayS=10 (default)';
  const slowTrials = opts.quick ? 1 : 3;
  const workload = `W4 change → server latency (${W4_SIZE / 1024} KiB file)`;
  for (const [p, max] of [
    ['p50', 200],
    ['p95', 500],
  ] as const) {
    results.compare({
      workload,
      measure: p,
      unit: 'ms',
      ours: { tool: 'aio', key: `W4 latency ${p} | aio daemon` },
      anchor: {
        tool: `Syncthing A → B, fsWatcherDelayS=1 (${opts.trials} trials)`,
        key: `W4 latency ${p} | ${st1}`,
      },
      limit: { max, text: `≤ ${max} ms` },
    });
    results.compare({
      workload,
      measure: p,
      unit: 'ms',
      ours: { tool: 'aio', key: `W4 latency ${p} | aio daemon` },
      anchor: {
        tool: `Syncthing A → B, default delay 10 s (${slowTrials} trials)`,
        key: `W4 latency ${p} | ${st10}`,
      },
    });
  }
  results.note(
    `W4: ${opts.trials} sequential trials for aio and Syncthing fsWatcherDelayS=1, ${slowTrials} for Syncthing's default 10 s; each writes a fresh ${W4_SIZE / 1024} KiB random file (300 ms between trials). aio: \`aio daemon run\` (push mode, default tunables: 100 ms debounce, 100 ms settle) until \`GET /api/v1/fs/stat\` returns the file ready with the right sha256. Syncthing: until the file on B has the right sha256. Both polled every ${POLL_MS} ms; p95 is nearest-rank.`,
  );

  // aio
  let aio: Aio | null = null;
  const local = await tempDir('w4-local');
  try {
    aio = await startAio();
    const a = aio;
    const { daemon } = await startDaemon(a, local, '/w4');
    await waitSettled(a, daemon, false, 60_000);
    await waitWatching(a, daemon, 60_000);
    process.stdout.write(`W4: aio daemon, ${opts.trials} trials `);
    const values = await latencyTrials('aio daemon', opts.trials, local, async (name, sha) => {
      if (!daemon.running()) throw new Error(`aio daemon exited:\n${daemon.output().slice(-2000)}`);
      return (await statSha(a, `/w4/${name}`)) === sha;
    });
    addLatencies(results, 'aio daemon', values);
    results.add('W4 daemon RSS after trials | aio daemon', 'kb', daemon.rssKb());
    await daemon.stop();
  } finally {
    await aio?.server.stop();
    for (const dir of [local, aio?.dataDir, aio?.configDir]) if (dir) await removeDir(dir);
  }

  // Syncthing
  for (const [delay, tool, trials] of [
    [1, st1, opts.trials],
    [10, st10, slowTrials],
  ] as const) {
    let pair: SyncthingPair | null = null;
    try {
      pair = await startSyncthingPair(delay);
      const p = pair;
      process.stdout.write(`W4: ${tool}, ${trials} trials `);
      const values = await latencyTrials(tool, trials, p.a.folder, async (name, sha) => {
        return (await sha256File(path.join(p.b.folder, name)).catch(() => null)) === sha;
      });
      addLatencies(results, tool, values);
    } finally {
      await stopSyncthingPair(pair);
      for (const dir of [pair?.a.home, pair?.b.home, pair?.a.folder, pair?.b.folder])
        if (dir) await removeDir(dir);
    }
  }
}

/** `folders` × `perFolder` tiny distinct files (a few bytes each). */
async function writeTinyTree(root: string, folders: number, perFolder: number): Promise<void> {
  for (let d = 0; d < folders; d++) {
    const dir = path.join(root, `d-${String(d).padStart(4, '0')}`);
    await fs.mkdir(dir, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let f = 0; f < perFolder; f++)
      writes.push(fs.writeFile(path.join(dir, `f-${String(f).padStart(3, '0')}.txt`), `${d}/${f}\n`));
    await Promise.all(writes);
  }
}

async function runMem(opts: DaemonOptions, results: Results): Promise<void> {
  // --- initial push of the W2 set
  const w2Folders = opts.quick ? 10 : 50;
  const w2PerFolder = opts.quick ? 50 : 100;
  const w2Count = w2Folders * w2PerFolder;
  const w3Changes = opts.quick ? 10 : 50;
  const w2Label = `W2 daemon initial sync ${w2Count.toLocaleString('en-US')} × 4 KiB`;
  results.compare({
    workload: w2Label,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W2 daemon initial sync time | aio daemon' },
    anchor: { tool: 'Syncthing A → B (W2, same run only)', key: 'W2 initial sync time | syncthing' },
    target: 0.5,
  });
  results.compare({
    workload: w2Label,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W2 daemon initial sync time | aio daemon' },
    anchor: { tool: '`aio sync` (W2, same run only)', key: 'W2 initial sync time | aio' },
  });
  results.compare({
    workload: w2Label,
    measure: 'daemon peak RSS',
    unit: 'kb',
    ours: { tool: 'aio', key: 'W2 daemon peak RSS | aio daemon' },
    anchor: { tool: '`aio sync` client (W2, same run only)', key: 'W2 peak RSS client | aio' },
  });
  const w3Label = `W3 daemon resync (${w3Changes} modified same size + ${w3Changes} added)`;
  results.compare({
    workload: w3Label,
    measure: 'time from a rescan request',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W3 daemon rescan time | aio daemon' },
    anchor: { tool: 'Syncthing A → B (W3, same run only)', key: 'W3 resync time | syncthing' },
    target: 1,
  });
  results.compare({
    workload: w3Label,
    measure: 'time from the first write',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W3 daemon resync time | aio daemon' },
    anchor: { tool: 'Syncthing A → B (W3, same run only)', key: 'W3 resync time | syncthing' },
  });
  results.note(
    `W2 and W3 with the daemon: ${opts.runs} run(s), each on a fresh tree, server and daemon; the table has the medians. W2 is timed from spawning the daemon until its status shows the folder idle with nothing queued or running (every file on the server); its watcher sets up its watches after that push (chokidar's walk), and W3 starts once it has. W3 daemon, two ways, both after its W2 push, and every file checked on the server afterwards. **From a rescan request** (the target row), timed as Syncthing's W3 is (its files written first, then a rescan requested through its REST API, then waited for through its REST API's counts and the bytes of a few files): the folder is paused (\`aio pause\`; a paused folder scans but queues nothing), a second change set (${w3Changes} modified, ${w3Changes} other added files) is written and left 500 ms, then \`resume\` starts a full rescan, and the timer, until the daemon's status shows the folder idle with nothing queued or running (an upload leaves its queue only once the server committed it) and \`GET /fs/stat\` shows 4 of the changed files with their new sha256 (polled every 10 ms). **From the first write**, timed until \`GET /fs/stat\` has shown every changed file with its new sha256 (polled every 10 ms, 4 files not yet seen right at a time, twice as many at once while all are right): the W2 change set written into the watched folder while it runs, detection included (inotify, 100 ms debounce per path, files younger than 100 ms wait); Syncthing has no such figure here (with its watcher, W4 shows ~0.7 s per change at fsWatcherDelayS=1).`,
  );
  // Each run: a fresh tree, server and daemon; W2's push, then both W3s on top of it.
  for (let run = 1; run <= opts.runs; run++) {
    let aio: Aio | null = null;
    const src = await tempDir('mem-w2');
    const of = `run ${run}/${opts.runs}`;
    try {
      const manifest = await writeTree(src, w2Folders, w2PerFolder, 4096);
      aio = await startAio();
      flushDisks();
      const { daemon, t0 } = await startDaemon(aio, src, '/w2d');
      process.stdout.write(`daemon: initial push of ${w2Count} × 4 KiB, ${of}… `);
      await waitSettled(aio, daemon, true, 900_000);
      results.add('W2 daemon initial sync time | aio daemon', 'ms', performance.now() - t0);
      results.add('W2 daemon peak RSS | aio daemon', 'kb', daemon.peakRssKb());
      await verifyAio(aio, '/w2d', manifest);
      await waitWatching(aio, daemon, 60_000);
      console.log('ok');

      // --- W3 with the daemon: the W2 change set written into the watched folder
      process.stdout.write(`daemon: W3 resync (${w3Changes} modified + ${w3Changes} added), ${of}… `);
      const t3 = performance.now();
      const change = await applyChanges([src], manifest, w3Changes, w3Changes, 4096);
      await waitPushed(aio, '/w2d', change);
      results.add('W3 daemon resync time | aio daemon', 'ms', performance.now() - t3);
      await verifyAio(aio, '/w2d', change.manifest);
      console.log('ok');

      // --- W3 from a rescan request, as Syncthing's W3 is timed: the folder paused, another
      // change set written and left to settle, then `resume` (a full rescan), timed until
      // the server shows every change. A paused folder scans but queues nothing.
      process.stdout.write(
        `daemon: W3 from a rescan request (${w3Changes} modified + ${w3Changes} added), ${of}… `,
      );
      await ipc(aio.configDir, 'pause');
      const change2 = await applyChanges([src], change.manifest, w3Changes, w3Changes, 4096, 'rescan');
      await new Promise((r) => setTimeout(r, 500));
      const t4 = performance.now();
      const resumedAt = Date.now();
      await ipc(aio.configDir, 'resume');
      await waitDaemonSynced(aio, '/w2d', change2, resumedAt);
      results.add('W3 daemon rescan time | aio daemon', 'ms', performance.now() - t4);
      await verifyAio(aio, '/w2d', change2.manifest);
      console.log('ok');
      await daemon.stop();
    } finally {
      await aio?.server.stop();
      for (const dir of [src, aio?.dataDir, aio?.configDir]) if (dir) await removeDir(dir);
    }
  }

  // --- 100,000 watched files: first scan and initial push (capped), then idle RSS/CPU
  const folders = opts.quick ? 100 : 1000;
  const perFolder = 100;
  const count = folders * perFolder;
  const capMs = opts.quick ? 60_000 : 240_000;
  const idleMs = opts.quick ? 10_000 : 60_000;
  const label = `daemon watching ${count.toLocaleString('en-US')} tiny files (${folders} folders)`;
  for (const [measure, key, unit, limit] of [
    ['first scan (start → all uploads queued)', 'MEM first scan time | aio daemon', 'ms', null],
    [`initial push (cap ${capMs / 1000} s)`, 'MEM initial sync time | aio daemon', 'ms', null],
    [`items pushed within the cap (folders + files)`, 'MEM items pushed in cap | aio daemon', 'count', null],
    ['peak RSS during first scan + push', 'MEM peak RSS initial sync | aio daemon', 'kb', null],
    ['restart scan, journal matches the tree', 'MEM rescan time | aio daemon', 'ms', null],
    ['restart → every folder watched', 'MEM watching time | aio daemon', 'ms', null],
    ['peak RSS, restart + idle', 'MEM peak RSS rescan+idle | aio daemon', 'kb', null],
    [
      `idle RSS (median over ${idleMs / 1000} s)`,
      'MEM idle RSS | aio daemon',
      'kb',
      { max: megabytes(200), text: '≤ 200 MB' },
    ],
    [
      `idle CPU (over ${idleMs / 1000} s, % of one core)`,
      'MEM idle CPU | aio daemon',
      'pct',
      { below: 1, text: '< 1 %' },
    ],
    ['a new file after idle → on the server', 'MEM change after idle | aio daemon', 'ms', null],
  ] as const)
    results.compare({
      workload: label,
      measure,
      unit,
      ours: { tool: 'aio', key },
      anchor: null,
      ...(limit ? { limit } : {}),
    });
  let aio: Aio | null = null;
  const tree = await tempDir('mem-tree');
  try {
    process.stdout.write(`daemon: writing ${count} tiny files… `);
    await writeTinyTree(tree, folders, perFolder);
    console.log('ok');
    aio = await startAio();
    const a = aio;
    const first = await startDaemon(a, tree, '/mem');
    process.stdout.write(`daemon: first scan and initial push of ${count} files (cap ${capMs / 1000} s)… `);
    let scanned = false;
    const r = await waitSettled(a, first.daemon, true, capMs, true, (f) => {
      if (scanned || f.state === 'scanning') return;
      scanned = true;
      results.add('MEM first scan time | aio daemon', 'ms', performance.now() - first.t0);
    });
    const syncMs = performance.now() - first.t0;
    results.add('MEM peak RSS initial sync | aio daemon', 'kb', first.daemon.peakRssKb());
    const left = r.status ? r.status.queued + r.status.running : Number.NaN;
    // Operations queued: one per folder and file (mkdir, upload).
    const pushed = r.ok ? count + folders : Math.max(0, count + folders - left);
    results.add('MEM items pushed in cap | aio daemon', 'count', pushed);
    let seeded = 0;
    if (r.ok) {
      results.add('MEM initial sync time | aio daemon', 'ms', syncMs);
      console.log(`ok (${(syncMs / 1000).toFixed(1)} s)`);
      await first.daemon.stop();
    } else {
      console.log(`cap hit, ${left} operations left (${pushed} folders + files pushed)`);
      await first.daemon.stop();
      seeded = await seedJournal(a, tree);
      results.gap(
        `daemon initial push of ${count.toLocaleString('en-US')} files did not finish within the ${capMs / 1000} s cap (${left} operations left); the idle figures use a journal completed by the benchmark (see notes).`,
      );
    }
    // Restart: the start-up full scan finds every file as the journal has it, then idles.
    const again = spawnDaemon(a);
    const t1 = performance.now();
    await again.waitForLine(/aio daemon running/, 30_000);
    const idle = await waitSettled(a, again, false, 300_000);
    results.add('MEM rescan time | aio daemon', 'ms', performance.now() - t1);
    if (idle.status && idle.status.queued + idle.status.running > 0)
      throw new Error(`daemon queued work on a matching journal: ${JSON.stringify(idle.status)}`);
    await waitWatching(a, again, 300_000);
    results.add('MEM watching time | aio daemon', 'ms', performance.now() - t1);
    // Let the scan's garbage be collected before measuring.
    await sleep(2_000);
    const rss: number[] = [];
    const cpu0 = again.cpuMs();
    const w0 = performance.now();
    while (performance.now() - w0 < idleMs) {
      await sleep(1_000);
      const v = again.rssKb();
      if (v !== null) rss.push(v);
    }
    const cpu1 = again.cpuMs();
    const wall = performance.now() - w0;
    rss.sort((x, y) => x - y);
    results.add('MEM idle RSS | aio daemon', 'kb', percentile(rss, 50));
    results.add('MEM idle RSS max | aio daemon', 'kb', rss[rss.length - 1]);
    if (cpu0 !== null && cpu1 !== null)
      results.add('MEM idle CPU | aio daemon', 'pct', ((cpu1 - cpu0) / wall) * 100);
    results.add('MEM peak RSS rescan+idle | aio daemon', 'kb', again.peakRssKb());
    // Still watching: a new file deep in the tree reaches the server.
    const buf = randomBytes(W4_SIZE);
    const probe = path.join('d-0042', `probe-${Date.now()}.bin`);
    const tp = performance.now();
    await fs.writeFile(path.join(tree, probe), buf);
    await waitFor(
      'daemon: new file after idle on the server',
      async () => (await statSha(a, `/mem/${probe}`)) === sha256(buf),
      60_000,
      POLL_MS,
    );
    results.add('MEM change after idle | aio daemon', 'ms', performance.now() - tp);
    results.note(
      `daemon memory: ${count.toLocaleString('en-US')} files of a few bytes in ${folders} folders, \`aio daemon run\` (push, default tunables). First scan: from spawning the daemon until its status leaves \`scanning\` (every upload queued). Initial push: until the folder is idle with nothing queued or running, capped at ${capMs / 1000} s (status polled every 100 ms). ${
        r.ok
          ? 'The push finished, so the restart below starts from the journal the daemon wrote itself.'
          : `The push did not finish within the cap: the daemon was stopped (SIGTERM) and the benchmark wrote the journal rows of the ${seeded.toLocaleString('en-US')} items it had not synced yet (kind, size, mtime, inode from lstat exactly as the scanner reads them, sha256 null, remote id "bench-seeded") and emptied its queue, i.e. the state after a full first sync, minus real remote ids for those rows. In push mode an idle daemon never talks to the server, so this does not change the idle figures.`
      } Then the daemon is started again: "restart scan" is until it reports idle with nothing queued (it must queue nothing), "every folder watched" until its watcher has set up its watches (chokidar's walk, which starts after the scan); then RSS (VmRSS, sampled every second) and CPU (utime+stime from /proc) over ${idleMs / 1000} s with no status polling; finally a new 4 KiB file is written into one of the folders and timed until the server lists it with the right sha256. Syncthing's idle figures on the same tree were not measured.`,
    );
    await again.stop();
  } finally {
    await aio?.server.stop();
    for (const dir of [tree, aio?.dataDir, aio?.configDir]) if (dir) await removeDir(dir);
  }
}

/**
 * Completes the journal of the single watched folder as a finished first sync would leave
 * it: every local folder and file the daemon has not recorded yet gets its row (the
 * scanner's own lstat values), and the queue is emptied. Returns the rows written.
 */
async function seedJournal(aio: Aio, tree: string): Promise<number> {
  const { readLocal } = await import('../../daemon/local-tree.js');
  const { IgnoreRules } = await import('../../daemon/ignore.js');
  const { default: Database } = await import('better-sqlite3');
  const local = await readLocal(tree, '', new IgnoreRules(tree));
  const db = new Database(path.join(aio.configDir, 'journal.db'));
  try {
    const folder = db.prepare('SELECT id FROM folders WHERE local = ?').get(tree) as
      { id: number } | undefined;
    if (!folder) throw new Error(`the journal has no folder ${tree}`);
    const known = new Set(
      db.prepare('SELECT rel_path FROM entries WHERE folder_id = ?').pluck().all(folder.id) as string[],
    );
    const insert = db.prepare(
      `INSERT INTO entries (folder_id, rel_path, kind, size, mtime_ms, ino, sha256, remote_id, remote_revision)
       VALUES (?, ?, ?, ?, ?, ?, NULL, 'bench-seeded', ?)`,
    );
    let written = 0;
    db.transaction(() => {
      for (const n of local.nodes.values()) {
        if (known.has(n.relPath)) continue;
        insert.run(folder.id, n.relPath, n.kind, n.size, n.mtimeMs, n.ino, n.kind === 'file' ? 1 : 0);
        written++;
      }
      db.prepare('DELETE FROM ops WHERE folder_id = ?').run(folder.id);
    })();
    return written;
  } finally {
    db.close();
  }
}

export async function runDaemonWorkloads(opts: DaemonOptions, results: Results): Promise<void> {
  if (!opts.available) {
    const what = [
      opts.w4 ? 'W4 (change-to-server latency p50/p95 vs Syncthing fsWatcherDelayS=1 and 10)' : null,
      opts.mem ? 'daemon memory (idle RSS and CPU watching 100,000 files; daemon initial sync of W2)' : null,
    ].filter(Boolean);
    results.gap(`${what.join('; ')}: \`bin/aio --help\` has no \`watch\`/\`daemon\` commands.`);
    return;
  }
  if (opts.w4) await runW4(opts, results);
  if (opts.mem) await runMem(opts, results);
}
