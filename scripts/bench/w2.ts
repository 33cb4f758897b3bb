/**
 * W2: 5,000 files of 4 KiB in 50 folders, initial sync: `aio sync` vs `rclone sync` to
 * WebDAV (one run only: it is slow) vs two local Syncthing instances vs raw parallel curl
 * PUTs (4 at a time) to the sink.
 * W3 (same state, right after W2): 50 files rewritten with the same size and 50 added;
 * `aio sync` vs `rclone sync` (default flags, as a user would run it; misses are counted,
 * not hidden) vs Syncthing.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { flushDisks, removeDir, runTimed, tempDir, waitFor } from './proc.js';
import type { Results } from './results.js';
import {
  folderStatus,
  startAio,
  startSink,
  startSyncthingPair,
  startWebdav,
  stopSyncthingPair,
  verifyAio,
  type Aio,
  type Sink,
  type SyncthingPair,
  type Webdav,
} from './tools.js';
import {
  applyChanges,
  assertSameManifest,
  hashTree,
  manifestDiff,
  sha256File,
  writeTree,
  type Manifest,
} from './util.js';

export interface W2Options {
  runs: number;
  folders: number;
  perFolder: number;
  size: number;
  w3: boolean;
  changes: number;
}

const RCLONE_CAP_MS = 600_000;
const SYNCTHING_CAP_MS = 600_000;
const skipSt = (rel: string) => rel === '.stfolder' || rel === '.stversions' || rel.includes('.syncthing.');

function rotate<T>(items: T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Waits until B has every file of `expected` (counts from the REST API, then bytes of `probe`). */
async function syncthingSettled(
  pair: SyncthingPair,
  expected: Manifest,
  probe: string[],
  timeoutMs: number,
): Promise<void> {
  await waitFor(
    'syncthing B in sync',
    async () => {
      const s = await folderStatus(pair.b, pair.folderId);
      if (
        s.needFiles !== 0 ||
        s.needTotalItems !== 0 ||
        s.localFiles !== expected.size ||
        s.globalFiles !== expected.size
      )
        return false;
      for (const rel of probe) {
        const sha = await sha256File(path.join(pair.b.folder, rel)).catch(() => null);
        if (sha !== expected.get(rel)) return false;
      }
      return true;
    },
    timeoutMs,
    100,
  );
}

async function syncthingScan(pair: SyncthingPair): Promise<void> {
  await pair.a.rest('POST', `/rest/db/scan?folder=${pair.folderId}`).catch(() => undefined);
}

async function curlConfig(file: string, root: string, url: string, rels: string[]): Promise<void> {
  const lines = rels.map((rel) => `upload-file = "${path.join(root, rel)}"\nurl = "${url}/w2/${rel}"\n`);
  await fs.writeFile(file, lines.join(''));
}

export async function runW2(opts: W2Options, results: Results): Promise<void> {
  const count = opts.folders * opts.perFolder;
  const label = `${count.toLocaleString('en-US')} × ${opts.size / 1024} KiB`;
  results.note(
    `W2 tree: ${label} in ${opts.folders} folders, fresh random bytes every run (so nothing is deduplicated across runs); fresh server, sink, WebDAV dir and Syncthing pair per run.`,
  );
  results.note(
    "Syncthing: two instances on 127.0.0.1 (discovery, relays, NAT, global announce off; setLowPriority off; fsWatcherDelayS=1), one send-receive folder. Timer starts when the tree is renamed into A (W3: right after the 100 changed files are) and a rescan is requested through the REST API, and stops when B reports needFiles = 0 with the full file count (polled every 100 ms); the files on B are then hashed. The W3 changes reach A only when its timer starts, so its watcher cannot start early during the other tools' turns.",
  );
  results.note(
    'Raw anchor: one `curl --parallel --parallel-max 4` process PUTting every file (keep-alive) to the Node sink, which fsyncs each file.',
  );
  // Registered first, so a failing run still reports the runs that finished.
  const w2 = `W2 initial sync ${label}`;
  results.compare({
    workload: w2,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W2 initial sync time | aio' },
    anchor: { tool: 'Syncthing A → B', key: 'W2 initial sync time | syncthing' },
    target: 0.5,
  });
  results.compare({
    workload: w2,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W2 initial sync time | aio' },
    anchor: { tool: 'rclone sync → webdav (1 run)', key: 'W2 initial sync time | rclone' },
  });
  results.compare({
    workload: w2,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W2 initial sync time | aio' },
    anchor: { tool: 'curl ×4 → raw sink', key: 'W2 initial sync time | curl→sink ×4' },
  });
  results.compare({
    workload: w2,
    measure: 'client peak RSS',
    unit: 'kb',
    ours: { tool: 'aio', key: 'W2 peak RSS client | aio' },
    anchor: { tool: 'rclone', key: 'W2 peak RSS client | rclone' },
  });
  results.compare({
    workload: w2,
    measure: 'server peak RSS (W2+W3)',
    unit: 'kb',
    ours: { tool: 'aio', key: 'W2 peak RSS server | aio-server' },
    anchor: { tool: 'Syncthing B', key: 'W2 peak RSS | syncthing B' },
  });
  if (opts.w3) {
    const w3 = `W3 resync (${opts.changes} modified same size + ${opts.changes} added)`;
    results.compare({
      workload: w3,
      measure: 'time',
      unit: 'ms',
      ours: { tool: 'aio', key: 'W3 resync time | aio' },
      anchor: { tool: 'Syncthing A → B', key: 'W3 resync time | syncthing' },
      target: 2,
    });
    results.compare({
      workload: w3,
      measure: 'time',
      unit: 'ms',
      ours: { tool: 'aio', key: 'W3 resync time | aio' },
      anchor: { tool: 'rclone sync (1 run)', key: 'W3 resync time | rclone' },
    });
  }
  let rcloneDone = false;

  for (let run = 0; run < opts.runs; run++) {
    const src = await tempDir('w2-src');
    const stage = await tempDir('w2-st-stage');
    let manifest = await writeTree(src, opts.folders, opts.perFolder, opts.size);
    await fs.cp(src, stage, { recursive: true });
    let aio: Aio | null = null;
    let dav: Webdav | null = null;
    let sink: Sink | null = null;
    let pair: SyncthingPair | null = null;
    const withRclone = !rcloneDone;
    try {
      aio = await startAio();
      sink = await startSink();
      if (withRclone) dav = await startWebdav();
      pair = await startSyncthingPair(1);
      const [a, s, st] = [aio, sink, pair];
      const d = dav;
      const rels = [...manifest.keys()];

      const tools: Array<[string, () => Promise<void>]> = [
        [
          'aio',
          async () => {
            const r = await a.cli(['sync', src, '/w2', '--json']);
            results.add('W2 initial sync time | aio', 'ms', r.ms);
            results.add('W2 peak RSS client | aio', 'kb', r.peakRssKb);
            await verifyAio(a, '/w2', manifest);
          },
        ],
        [
          'syncthing',
          async () => {
            const t0 = performance.now();
            for (const dir of await fs.readdir(stage))
              await fs.rename(path.join(stage, dir), path.join(st.a.folder, dir));
            await syncthingScan(st);
            await syncthingSettled(st, manifest, rels.slice(-3), SYNCTHING_CAP_MS);
            results.add('W2 initial sync time | syncthing', 'ms', performance.now() - t0);
            assertSameManifest('syncthing B', manifest, await hashTree(st.b.folder, skipSt));
          },
        ],
        [
          'curl',
          async () => {
            const conf = path.join(src, '..', `curl-${path.basename(src)}.conf`);
            await curlConfig(conf, src, s.url, rels);
            const r = await runTimed('curl --parallel', 'curl', [
              '-sS',
              '-f',
              '--parallel',
              '--parallel-max',
              '4',
              '-K',
              conf,
              '-o',
              '/dev/null',
            ]);
            await fs.rm(conf);
            results.add('W2 initial sync time | curl→sink ×4', 'ms', r.ms);
            results.add('W2 peak RSS client | curl', 'kb', r.peakRssKb);
            assertSameManifest('sink', manifest, await hashTree(path.join(s.root, 'w2')));
          },
        ],
      ];
      if (d) {
        tools.push([
          'rclone',
          async () => {
            const r = await d.rclone(['sync', src, ':webdav:w2'], {
              timeoutMs: RCLONE_CAP_MS,
              allowFail: true,
            });
            if (r.code !== 0)
              throw new Error(
                `rclone sync failed or passed the ${RCLONE_CAP_MS / 1000} s cap:\n${r.stderr.slice(-2000)}`,
              );
            results.add('W2 initial sync time | rclone', 'ms', r.ms);
            results.add('W2 peak RSS client | rclone', 'kb', r.peakRssKb);
            assertSameManifest('rclone webdav', manifest, await hashTree(path.join(d.root, 'w2')));
          },
        ]);
      }
      for (const [name, fn] of rotate(tools, run)) {
        process.stdout.write(`W2 run ${run + 1}/${opts.runs}: ${name}… `);
        flushDisks();
        await fn();
        console.log('ok');
      }
      results.add('W2 peak RSS server | aio-server', 'kb', a.server.peakRssKb());
      results.add('W2 peak RSS | syncthing A', 'kb', st.a.service.peakRssKb());
      results.add('W2 peak RSS | syncthing B', 'kb', st.b.service.peakRssKb());
      if (d) results.add('W2 peak RSS server | rclone serve webdav', 'kb', d.service.peakRssKb());

      if (opts.w3) {
        // The change set goes into Syncthing's folder A only at its own turn, right before its
        // timer and rescan request: written there up front, A's watcher (fsWatcherDelayS=1)
        // would start syncing during the other tools' turns, taking CPU from them and
        // getting a head start its timer never sees.
        const stage3 = await tempDir('w3-st-stage');
        const change = await applyChanges([src, stage3], manifest, opts.changes, opts.changes, opts.size);
        manifest = change.manifest;
        const w3tools: Array<[string, () => Promise<void>]> = [
          [
            'aio',
            async () => {
              const r = await a.cli(['sync', src, '/w2', '--json']);
              results.add('W3 resync time | aio', 'ms', r.ms);
              const summary = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { uploaded?: number };
              results.add('W3 files sent | aio', 'count', summary.uploaded);
              await verifyAio(a, '/w2', manifest);
            },
          ],
          [
            'syncthing',
            async () => {
              for (const rel of [...change.modified, ...change.added]) {
                const to = path.join(st.a.folder, rel);
                await fs.mkdir(path.dirname(to), { recursive: true });
                await fs.rename(path.join(stage3, rel), to);
              }
              const t0 = performance.now();
              await syncthingScan(st);
              await syncthingSettled(
                st,
                manifest,
                [...change.modified, ...change.added.slice(-1)],
                SYNCTHING_CAP_MS,
              );
              results.add('W3 resync time | syncthing', 'ms', performance.now() - t0);
              assertSameManifest('syncthing B after W3', manifest, await hashTree(st.b.folder, skipSt));
            },
          ],
        ];
        if (d) {
          w3tools.push([
            'rclone',
            async () => {
              const r = await d.rclone(['sync', src, ':webdav:w2'], { timeoutMs: RCLONE_CAP_MS });
              results.add('W3 resync time | rclone', 'ms', r.ms);
              const diff = manifestDiff(manifest, await hashTree(path.join(d.root, 'w2')));
              results.add('W3 modified files missed | rclone', 'count', diff.different);
              results.note(
                `W3 rclone (\`rclone sync SRC :webdav:w2\`, default flags): ${diff.different} of ${change.modified.length} same-size modified files NOT transferred, ${diff.missing} of ${change.added.length} added files missing${
                  diff.different
                    ? ' — the WebDAV remote has no settable mtime/hash, so rclone compares by size only; `--checksum` cannot help either (no hash on WebDAV), only `--ignore-times` would'
                    : ''
                }.`,
              );
            },
          ]);
        }
        for (const [name, fn] of rotate(w3tools, run)) {
          process.stdout.write(`W3 run ${run + 1}/${opts.runs}: ${name}… `);
          flushDisks();
          await fn();
          console.log('ok');
        }
        await removeDir(stage3);
      }
      if (withRclone) rcloneDone = true;
    } finally {
      await Promise.all([
        aio?.server.stop(),
        dav?.service.stop(),
        sink?.service.stop(),
        stopSyncthingPair(pair),
      ]);
      for (const dir of [
        src,
        stage,
        aio?.dataDir,
        aio?.configDir,
        dav?.root,
        sink?.root,
        pair?.a.home,
        pair?.b.home,
        pair?.a.folder,
        pair?.b.folder,
      ])
        if (dir) await removeDir(dir);
    }
  }
  results.note(
    `rclone ran in the first W2 run only (capped at ${RCLONE_CAP_MS / 1000} s): it is much slower on many small files.`,
  );
}
