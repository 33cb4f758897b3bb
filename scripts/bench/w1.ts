/**
 * W1: one large random file (1 GiB; 64 MiB with --quick).
 * Upload: `aio upload` vs `rclone copy` to `rclone serve webdav` vs `curl -T` to the raw sink.
 * Download: `aio download` vs `rclone copy` back vs `cp`.
 * Both: vs `dd` writing the file durably (`O_DIRECT`, then fsync) with no network, the
 * least a durable copy of it costs on this disk (aio fsyncs what it stores and downloads;
 * rclone, `cp` and `curl` do not wait for the disk, the sink fsyncs).
 * Download: also vs a new `node` process that only reads the file from the page cache and
 * computes its sha256 on one thread (OpenSSL, as aio): the least the end-to-end check
 * costs a client, since a sha256 cannot be split over cores. rclone checks no hash here.
 * Each run gets a fresh server (so the upload is never deduplicated) and fresh targets.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  diskOf,
  flushDisks,
  removeDir,
  runTimed,
  tempDir,
  withDiskBusy,
  type RunResult,
  type Service,
} from './proc.js';
import { megabytes, type Results } from './results.js';
import { startAio, startSink, startWebdav, verifyAio, type Aio, type Sink, type Webdav } from './tools.js';
import { sha256File, writeRandomFile } from './util.js';

export interface W1Options {
  runs: number;
  bytes: number;
}

async function expectSha(what: string, file: string, sha: string): Promise<void> {
  const actual = await sha256File(file).catch(() => 'missing');
  if (actual !== sha)
    throw new Error(`${what}: ${file} has sha256 ${actual.slice(0, 16)}…, expected ${sha.slice(0, 16)}…`);
}

/** `node -e HASH_ONLY FILE` prints FILE's sha256: read in 8 MiB pieces, hashed on one thread. */
const HASH_ONLY = [
  "const fs = require('node:fs');",
  "const hash = require('node:crypto').createHash('sha256');",
  'const fd = fs.openSync(process.argv[1]);',
  'const buf = Buffer.allocUnsafe(8 << 20);',
  'for (let n; (n = fs.readSync(fd, buf)) > 0; ) hash.update(buf.subarray(0, n));',
  "process.stdout.write(hash.digest('hex'));",
].join('\n');

function rotate<T>(items: T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export async function runW1(opts: W1Options, results: Results): Promise<void> {
  const srcDir = await tempDir('w1-src');
  const src = path.join(srcDir, 'big.bin');
  console.log(`W1: writing ${opts.bytes} random bytes…`);
  const sha = await writeRandomFile(src, opts.bytes);
  const label =
    opts.bytes >= 2 ** 30 ? `${opts.bytes / 2 ** 30} GiB` : `${Math.round(opts.bytes / 2 ** 20)} MiB`;
  results.note(`W1 file: ${label} of random bytes; the source is in the page cache for every tool.`);
  results.note(
    'W1 `dd → disk, durable`: the file copied to a new file with `O_DIRECT` and fsync, no network, ' +
      'hashing or checks: the least a durable copy costs on this disk. aio fsyncs what it stores and ' +
      'what it downloads before it answers; `rclone copy`, `cp` and `rclone serve webdav` do not.',
  );
  results.note(
    'W1 `node: sha256 of the file alone`: a new node process reads the file from the page cache and ' +
      'computes its sha256 on one thread, as aio does to check a download end to end; no network, no ' +
      'disk writes. A sha256 cannot be split over cores, so no download that checks it ends sooner. ' +
      'rclone checks no hash against `rclone serve webdav`.',
  );

  // Every tool here writes to the disk that holds the temp folders.
  const disk = diskOf(srcDir);
  results.note(
    disk
      ? `W1 \`disk busy\`: the share of a tool's run during which ${disk}, the disk holding every tool's files, had I/O in flight (/proc/diskstats' io_ticks): near 100 % the run waited on the disk; the raw table has it for every tool.`
      : 'W1 `disk busy`: not measured (no /proc/diskstats entry for the temp folder’s disk).',
  );
  /** Runs a timed tool and records the share of its run the disk was busy under `key`. */
  const onDisk = async (key: string, run: () => Promise<RunResult>): Promise<RunResult> => {
    const { result, busyPct } = await withDiskBusy(disk, run);
    if (busyPct !== null) results.add(key, 'pct', busyPct);
    return result;
  };

  results.note(
    "W1 `CPU, client + server`: the client's user and system time (with its children, /usr/bin/time) " +
      "plus its server's over the same run (/proc): the work the 2 cores share. A run cannot end sooner " +
      'than half of it, whatever overlaps; aio hashes every byte on both sides (upload) or on the client ' +
      '(download) and fsyncs, rclone and the sink do neither.',
  );
  /** Runs a timed client and records its CPU plus `server`'s over the run under `key`. */
  const withCpu = async (key: string, server: Service, run: () => Promise<RunResult>): Promise<RunResult> => {
    const before = server.cpuMs();
    const result = await run();
    const after = server.cpuMs();
    if (result.cpuMs !== null && before !== null && after !== null)
      results.add(key, 'ms', result.cpuMs + (after - before));
    return result;
  };

  const up = `W1 upload ${label}`;
  const dn = `W1 download ${label}`;
  results.compare({
    workload: up,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 upload time | aio' },
    anchor: { tool: 'rclone → webdav', key: 'W1 upload time | rclone' },
    target: 0.5,
  });
  results.compare({
    workload: up,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 upload time | aio' },
    anchor: { tool: 'curl -T → raw sink', key: 'W1 upload time | curl→sink' },
    target: 1.25,
  });
  results.compare({
    workload: up,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 upload time | aio' },
    anchor: { tool: 'dd → disk, durable (no network)', key: 'W1 upload time | dd durable' },
  });
  results.compare({
    workload: up,
    measure: 'disk busy (I/O in flight)',
    unit: 'pct',
    ours: { tool: 'aio', key: 'W1 upload disk busy | aio' },
    anchor: { tool: 'dd → disk, durable (no network)', key: 'W1 upload disk busy | dd durable' },
  });
  results.compare({
    workload: up,
    measure: 'CPU, client + server',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 upload cpu | aio' },
    anchor: { tool: 'rclone → webdav', key: 'W1 upload cpu | rclone' },
  });
  results.compare({
    workload: up,
    measure: 'CPU, client + server',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 upload cpu | aio' },
    anchor: { tool: 'curl -T → raw sink', key: 'W1 upload cpu | curl→sink' },
  });
  results.compare({
    workload: up,
    measure: 'client peak RSS',
    unit: 'kb',
    ours: { tool: 'aio', key: 'W1 upload peak RSS client | aio' },
    anchor: { tool: 'rclone', key: 'W1 upload peak RSS client | rclone' },
    limit: { max: megabytes(120), text: '≤ 120 MB' },
  });
  results.compare({
    workload: up,
    measure: 'server peak RSS (whole run)',
    unit: 'kb',
    ours: { tool: 'aio', key: 'W1 peak RSS server | aio-server' },
    anchor: { tool: 'rclone serve webdav', key: 'W1 peak RSS server | rclone serve webdav' },
    limit: { max: megabytes(150), text: '≤ 150 MB' },
  });
  results.compare({
    workload: dn,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 download time | aio' },
    anchor: { tool: 'rclone ← webdav', key: 'W1 download time | rclone' },
    target: 1,
  });
  results.compare({
    workload: dn,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 download time | aio' },
    anchor: { tool: 'cp (disk to disk)', key: 'W1 download time | cp' },
  });
  results.compare({
    workload: dn,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 download time | aio' },
    anchor: { tool: 'dd → disk, durable (no network)', key: 'W1 download time | dd durable' },
  });
  results.compare({
    workload: dn,
    measure: 'time',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 download time | aio' },
    anchor: { tool: 'node: sha256 of the file alone', key: 'W1 download time | sha256 alone' },
  });
  results.compare({
    workload: dn,
    measure: 'disk busy (I/O in flight)',
    unit: 'pct',
    ours: { tool: 'aio', key: 'W1 download disk busy | aio' },
    anchor: { tool: 'dd → disk, durable (no network)', key: 'W1 download disk busy | dd durable' },
  });
  results.compare({
    workload: dn,
    measure: 'CPU, client + server',
    unit: 'ms',
    ours: { tool: 'aio', key: 'W1 download cpu | aio' },
    anchor: { tool: 'rclone ← webdav', key: 'W1 download cpu | rclone' },
  });
  results.compare({
    workload: dn,
    measure: 'client peak RSS',
    unit: 'kb',
    ours: { tool: 'aio', key: 'W1 download peak RSS client | aio' },
    anchor: { tool: 'rclone', key: 'W1 download peak RSS client | rclone' },
    limit: { max: megabytes(120), text: '≤ 120 MB' },
  });
  /** `from` copied to `to` and on the disk before `dd` exits: the durable-write floor. */
  const durableCopy = async (
    from: string,
    to: string,
    expected: string,
    direction: 'upload' | 'download',
  ): Promise<number> => {
    const key = `W1 ${direction} time | dd durable`;
    const r = await onDisk(`W1 ${direction} disk busy | dd durable`, () =>
      runTimed('dd', 'dd', [`if=${from}`, `of=${to}`, 'bs=8M', 'oflag=direct', 'conv=fsync', 'status=none']),
    );
    results.add(key, 'ms', r.ms);
    await expectSha('dd', to, expected);
    await fs.rm(to);
    return r.ms;
  };
  for (let run = 0; run < opts.runs; run++) {
    let aio: Aio | null = null;
    let dav: Webdav | null = null;
    let sink: Sink | null = null;
    const down = await tempDir('w1-down');
    try {
      aio = await startAio();
      dav = await startWebdav();
      sink = await startSink();
      const a = aio;
      const d = dav;
      const s = sink;
      const uploads: Array<[string, () => Promise<number>]> = [
        [
          'aio',
          async () => {
            const r = await onDisk('W1 upload disk busy | aio', () =>
              withCpu('W1 upload cpu | aio', a.server, () => a.cli(['upload', src, '/w1/big.bin', '--json'])),
            );
            results.add('W1 upload time | aio', 'ms', r.ms);
            results.add('W1 upload peak RSS client | aio', 'kb', r.peakRssKb);
            await verifyAio(a, '/w1', new Map([['big.bin', sha]]));
            return r.ms;
          },
        ],
        [
          'rclone',
          async () => {
            const r = await onDisk('W1 upload disk busy | rclone', () =>
              withCpu('W1 upload cpu | rclone', d.service, () => d.rclone(['copy', src, ':webdav:w1'])),
            );
            results.add('W1 upload time | rclone', 'ms', r.ms);
            results.add('W1 upload peak RSS client | rclone', 'kb', r.peakRssKb);
            await expectSha('rclone upload', path.join(d.root, 'w1', 'big.bin'), sha);
            return r.ms;
          },
        ],
        [
          'curl',
          async () => {
            const r = await onDisk('W1 upload disk busy | curl→sink', () =>
              withCpu('W1 upload cpu | curl→sink', s.service, () =>
                runTimed('curl -T', 'curl', ['-sS', '-f', '-T', src, `${s.url}/w1/big.bin`]),
              ),
            );
            results.add('W1 upload time | curl→sink', 'ms', r.ms);
            results.add('W1 upload peak RSS client | curl', 'kb', r.peakRssKb);
            await expectSha('curl upload', path.join(s.root, 'w1', 'big.bin'), sha);
            return r.ms;
          },
        ],
        ['dd', () => durableCopy(src, path.join(down, 'dd-up.bin'), sha, 'upload')],
      ];
      for (const [name, fn] of rotate(uploads, run)) {
        process.stdout.write(`W1 run ${run + 1}/${opts.runs}: upload ${name}… `);
        flushDisks();
        const ms = await fn();
        console.log(`ok (${(ms / 1000).toFixed(2)} s)`);
      }
      const downloads: Array<[string, () => Promise<number>]> = [
        [
          'aio',
          async () => {
            const out = path.join(down, 'aio.bin');
            const r = await onDisk('W1 download disk busy | aio', () =>
              withCpu('W1 download cpu | aio', a.server, () =>
                a.cli(['download', '/w1/big.bin', out, '--json']),
              ),
            );
            results.add('W1 download time | aio', 'ms', r.ms);
            results.add('W1 download peak RSS client | aio', 'kb', r.peakRssKb);
            await expectSha('aio download', out, sha);
            await fs.rm(out);
            return r.ms;
          },
        ],
        [
          'rclone',
          async () => {
            const out = path.join(down, 'rclone');
            const r = await onDisk('W1 download disk busy | rclone', () =>
              withCpu('W1 download cpu | rclone', d.service, () =>
                d.rclone(['copy', ':webdav:w1/big.bin', out]),
              ),
            );
            results.add('W1 download time | rclone', 'ms', r.ms);
            results.add('W1 download peak RSS client | rclone', 'kb', r.peakRssKb);
            await expectSha('rclone download', path.join(out, 'big.bin'), sha);
            await fs.rm(out, { recursive: true });
            return r.ms;
          },
        ],
        [
          'cp',
          async () => {
            const out = path.join(down, 'cp.bin');
            const r = await onDisk('W1 download disk busy | cp', () =>
              runTimed('cp', 'cp', [path.join(d.root, 'w1', 'big.bin'), out]),
            );
            results.add('W1 download time | cp', 'ms', r.ms);
            await expectSha('cp', out, sha);
            await fs.rm(out);
            return r.ms;
          },
        ],
        [
          'dd',
          () =>
            durableCopy(path.join(d.root, 'w1', 'big.bin'), path.join(down, 'dd-down.bin'), sha, 'download'),
        ],
        [
          'sha256',
          async () => {
            const r = await runTimed('node sha256', process.execPath, ['-e', HASH_ONLY, src]);
            if (r.stdout !== sha) throw new Error(`node sha256: got ${r.stdout.slice(0, 16)}…`);
            results.add('W1 download time | sha256 alone', 'ms', r.ms);
            return r.ms;
          },
        ],
      ];
      for (const [name, fn] of rotate(downloads, run)) {
        process.stdout.write(`W1 run ${run + 1}/${opts.runs}: download ${name}… `);
        flushDisks();
        const ms = await fn();
        console.log(`ok (${(ms / 1000).toFixed(2)} s)`);
      }
      results.add('W1 peak RSS server | aio-server', 'kb', a.server.peakRssKb());
      results.add('W1 peak RSS server | rclone serve webdav', 'kb', d.service.peakRssKb());
      results.add('W1 peak RSS server | sink', 'kb', s.service.peakRssKb());
    } finally {
      await Promise.all([aio?.server.stop(), dav?.service.stop(), sink?.service.stop()]);
      await removeDir(down);
      for (const dir of [aio?.dataDir, aio?.configDir, dav?.root, sink?.root]) if (dir) await removeDir(dir);
    }
  }
  await removeDir(srcDir);
}
