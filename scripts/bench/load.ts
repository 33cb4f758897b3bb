/**
 * Load: autocannon (in this process) against a fresh aio-server started with
 * AIO_RATE_LIMIT_API=1000000:
 *  - `GET /api/v1/fs/list?path=/load/list` (100 entries), authenticated, 10 connections;
 *  - tus creation-with-upload of 4 KiB (`POST /api/v1/uploads`, unique path and fresh random
 *    bytes per request via setupRequest), 50 connections;
 *  - the same 4 KiB POSTs against the raw sink (the loopback + fsync limit).
 * Each test runs `runs` times (the uploads and the raw sink in turns, each run into a folder
 * of its own); the table has the medians. Errors are connection errors + timeouts + non-2xx
 * answers, summed over the runs, and must be 0. After each upload run the uploads are
 * verified: every uploaded path is listed, becomes `ready`, with the sha256 of the bytes
 * sent; the time the worker needs to drain the backlog is recorded.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { removeDir, sleep, waitFor } from './proc.js';
import type { Results } from './results.js';
import { remoteFiles, startAio, startSink, type Aio, type Sink } from './tools.js';
import { hashTree, sha256 } from './util.js';

interface AcRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  setupRequest?: (req: AcRequest, context: unknown) => AcRequest;
}
interface AcResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}
type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  headers?: Record<string, string>;
  requests?: AcRequest[];
  method?: string;
  body?: Buffer;
}) => Promise<AcResult>;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadOptions {
  durationS: number;
  /** The listing's warm-up run before the measured ones (its errors count; its rate is reported apart). */
  warmupS: number;
  runs: number;
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/** Records one run's rate and latencies; returns its errors (the caller adds them up). */
function record(results: Results, name: string, r: AcResult): number {
  const errors = r.errors + r.timeouts + r.non2xx;
  results.add(`load ${name} | req/s`, 'rps', r.requests.average);
  results.add(`load ${name} | p50 latency`, 'ms', r.latency.p50);
  results.add(`load ${name} | p99 latency`, 'ms', r.latency.p99);
  console.log(
    `  ${name}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${r['2xx']} ok, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`,
  );
  return errors;
}

/** 4 KiB creation-with-upload requests with unique paths; remembers path → sha256. */
function uploadRequests(sent: Map<string, string>, prefix: string, tus: boolean): AcRequest[] {
  let n = 0;
  return [
    {
      method: 'POST',
      path: tus ? '/api/v1/uploads' : '/',
      setupRequest: (req) => {
        const rel = `${prefix}/c${Math.floor(n / 1000)}/f${n}.bin`;
        n++;
        const body = randomBytes(4096);
        sent.set(rel, sha256(body));
        return tus
          ? {
              ...req,
              body,
              headers: {
                ...req.headers,
                'Tus-Resumable': '1.0.0',
                'Upload-Length': '4096',
                'Upload-Metadata': `path ${b64(`/${rel}`)}`,
                'Content-Type': 'application/offset+octet-stream',
              },
            }
          : { ...req, path: `/${rel}`, body };
      },
    },
  ];
}

async function verifyUploads(
  aio: Aio,
  folder: string,
  sent: Map<string, string>,
  ok: number,
  results: Results,
): Promise<void> {
  const t0 = performance.now();
  let files = await remoteFiles(aio, `/${folder}`);
  for (;;) {
    // Files are listed once the worker commits them.
    const pending =
      [...files.values()].filter((e) => e.status !== 'ready').length + Math.max(0, ok - files.size);
    if (!pending) break;
    if (performance.now() - t0 > 300_000)
      throw new Error(`load: ${pending} uploads still not ready after 300 s`);
    await sleep(250);
    files = await remoteFiles(aio, `/${folder}`);
  }
  const drain = performance.now() - t0;
  results.add('load upload | backlog drain after the test', 'ms', drain);
  if (files.size < ok)
    throw new Error(`load: ${ok} uploads answered 2xx but only ${files.size} files are listed`);
  let bad = 0;
  for (const [rel, e] of files) if (sent.get(`${folder}/${rel}`) !== e.sha256) bad++;
  if (bad) throw new Error(`load: ${bad} uploaded files have the wrong sha256`);
  console.log(
    `  verified ${files.size} uploaded files (all ready, sha256 match; backlog drained in ${Math.round(drain)} ms)`,
  );
}

export async function runLoad(opts: LoadOptions, results: Results): Promise<void> {
  let aio: Aio | null = null;
  let sink: Sink | null = null;
  try {
    aio = await startAio({ AIO_LOG_LEVEL: 'error' });
    sink = await startSink();
    // A folder of 100 entries: 100 small files by creation-with-upload.
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${aio.url}/api/v1/uploads`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${aio.token}`,
          'tus-resumable': '1.0.0',
          'upload-length': '64',
          'upload-metadata': `path ${b64(`/load/list/entry-${String(i).padStart(3, '0')}.txt`)}`,
          'content-type': 'application/offset+octet-stream',
        },
        body: randomBytes(64),
      });
      if (res.status !== 201 && res.status !== 204)
        throw new Error(`seeding the listing folder: ${res.status} ${await res.text()}`);
    }
    // Uploads become entries when the worker commits them.
    const a0 = aio;
    await waitFor(
      '100 entries in /load/list',
      async () =>
        (await a0.api<{ items: unknown[] }>('GET', '/api/v1/fs/list?path=/load/list')).items.length === 100,
      60_000,
      100,
    );

    const auth = { authorization: `Bearer ${aio.token}` };
    const listFor = (durationS: number): Promise<AcResult> =>
      autocannon({
        url: `${a0.url}/api/v1/fs/list?path=%2Fload%2Flist`,
        connections: 10,
        duration: durationS,
        headers: auth,
      });
    // A fresh server's first seconds run while V8 still compiles its hot paths (the first
    // 10 s run measured 2,100-2,400 req/s on the 2-core VM, the next ones 2,700-3,600):
    // one warm-up run, reported apart, so the measured runs are the server in service.
    console.log(`load: warm-up, GET /api/v1/fs/list, 10 connections, ${opts.warmupS} s…`);
    let listErrors = record(results, 'list warm-up (10 conn, not counted)', await listFor(opts.warmupS));
    for (let run = 1; run <= opts.runs; run++) {
      console.log(
        `load: GET /api/v1/fs/list (100 entries), 10 connections, ${opts.durationS} s, run ${run}/${opts.runs}…`,
      );
      listErrors += record(results, 'list (10 conn)', await listFor(opts.durationS));
    }
    results.add('load list (10 conn) | errors', 'count', listErrors);

    let upErrors = 0;
    let rawErrors = 0;
    for (let run = 1; run <= opts.runs; run++) {
      const sent = new Map<string, string>();
      const folder = `load/up${run}`;
      console.log(
        `load: POST /api/v1/uploads 4 KiB creation-with-upload, 50 connections, ${opts.durationS} s, run ${run}/${opts.runs}…`,
      );
      const up = await autocannon({
        url: aio.url,
        connections: 50,
        duration: opts.durationS,
        headers: auth,
        requests: uploadRequests(sent, folder, true),
      });
      upErrors += record(results, 'upload 4 KiB (50 conn)', up);
      await verifyUploads(aio, folder, sent, up['2xx'], results);

      const sinkSent = new Map<string, string>();
      const sinkFolder = `up${run}`;
      console.log(
        `load: POST 4 KiB to the raw sink (fsync), 50 connections, ${opts.durationS} s, run ${run}/${opts.runs}…`,
      );
      const raw = await autocannon({
        url: sink.url,
        connections: 50,
        duration: opts.durationS,
        requests: uploadRequests(sinkSent, sinkFolder, false),
      });
      rawErrors += record(results, 'raw sink 4 KiB (50 conn)', raw);
      const onDisk = await hashTree(path.join(sink.root, sinkFolder), (rel) => rel.includes('.part-'));
      let bad = 0;
      for (const [rel, sha] of onDisk) if (sinkSent.get(`${sinkFolder}/${rel}`) !== sha) bad++;
      if (bad || onDisk.size < raw['2xx'])
        throw new Error(`sink: ${bad} wrong files, ${onDisk.size} on disk for ${raw['2xx']} answers`);
    }
    results.add('load upload 4 KiB (50 conn) | errors', 'count', upErrors);
    results.add('load raw sink 4 KiB (50 conn) | errors', 'count', rawErrors);
    results.add('load upload | server peak RSS', 'kb', aio.server.peakRssKb());

    if (listErrors || upErrors || rawErrors)
      results.note(
        `load: ERRORS — listing ${listErrors}, uploads ${upErrors}, raw sink ${rawErrors} (must be 0).`,
      );
    results.note(
      `load: autocannon ${opts.durationS} s per test and run, ${opts.runs} run(s) of each (uploads and the raw sink in turns; the table has the medians; the listing after one ${opts.warmupS} s warm-up run on the fresh server, reported apart and not in the median, its errors counted), in the harness process on the same 2 cores as the server (so figures are a floor); errors = connection errors + timeouts + non-2xx, summed over the runs.`,
    );
    results.compare({
      workload: 'load: list 100 entries',
      measure: 'throughput (10 conn)',
      unit: 'rps',
      ours: { tool: 'aio', key: 'load list (10 conn) | req/s' },
      anchor: null,
      limit: { min: 3000, text: '≥ 3,000 req/s' },
    });
    results.compare({
      workload: 'load: list 100 entries',
      measure: 'p99 latency',
      unit: 'ms',
      ours: { tool: 'aio', key: 'load list (10 conn) | p99 latency' },
      anchor: null,
      limit: { max: 50, text: '≤ 50 ms' },
    });
    results.compare({
      workload: 'load: list 100 entries',
      measure: 'errors (must be 0)',
      unit: 'count',
      ours: { tool: 'aio', key: 'load list (10 conn) | errors' },
      anchor: null,
      limit: { max: 0, text: '0' },
    });
    results.compare({
      workload: 'load: 4 KiB uploads',
      measure: 'throughput (50 conn)',
      unit: 'rps',
      ours: { tool: 'aio', key: 'load upload 4 KiB (50 conn) | req/s' },
      anchor: { tool: 'raw sink POST + fsync', key: 'load raw sink 4 KiB (50 conn) | req/s' },
    });
    results.compare({
      workload: 'load: 4 KiB uploads',
      measure: 'p99 latency',
      unit: 'ms',
      ours: { tool: 'aio', key: 'load upload 4 KiB (50 conn) | p99 latency' },
      anchor: { tool: 'raw sink POST + fsync', key: 'load raw sink 4 KiB (50 conn) | p99 latency' },
    });
    results.compare({
      workload: 'load: 4 KiB uploads',
      measure: 'errors (must be 0)',
      unit: 'count',
      ours: { tool: 'aio', key: 'load upload 4 KiB (50 conn) | errors' },
      anchor: null,
      limit: { max: 0, text: '0' },
    });
    results.compare({
      workload: 'load: 4 KiB uploads',
      measure: 'worker backlog drain after the test',
      unit: 'ms',
      ours: { tool: 'aio', key: 'load upload | backlog drain after the test' },
      anchor: null,
    });
  } finally {
    await Promise.all([aio?.server.stop(), sink?.service.stop()]);
    for (const dir of [aio?.dataDir, aio?.configDir, sink?.root]) if (dir) await removeDir(dir);
  }
}
