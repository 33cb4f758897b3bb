/**
 * The loopback baseline: a minimal Node HTTP server that writes every PUT/POST body to
 * `<root>/<url path>` (via a `.part-` file, fsync, rename) before answering 201 (aio fsyncs its
 * blobs too), so
 * `curl -T` against it is "raw HTTP to disk" on this machine.
 *
 *   node --import tsx scripts/bench/sink.ts ROOT   → prints `sink listening on http://127.0.0.1:PORT`
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const root = path.resolve(process.argv[2] ?? '.');
let seq = 0;

const server = http.createServer((req, res) => {
  void (async () => {
    if (req.method !== 'PUT' && req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://sink').pathname).replace(/^\/+/, '');
    const target = path.resolve(root, rel);
    if (!rel || !target.startsWith(`${root}${path.sep}`)) {
      res.writeHead(400).end();
      return;
    }
    await fsp.mkdir(path.dirname(target), { recursive: true });
    // Write beside the target, fsync, rename: an aborted request leaves only a `.part-` file.
    const part = `${target}.part-${process.pid}-${++seq}`;
    await pipeline(req, fs.createWriteStream(part));
    const handle = await fsp.open(part, 'r+');
    await handle.sync();
    await handle.close();
    await fsp.rename(part, target);
    res.writeHead(201, { 'content-length': '0' }).end();
  })().catch((err: unknown) => {
    if (!res.headersSent) res.writeHead(500).end(String(err));
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  console.log(`sink listening on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
