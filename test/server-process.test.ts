/**
 * The real programs as child processes: start-up, health, metrics, configuration
 * errors, graceful shutdown, the generated JWT secret, and the service adapters.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireService } from './helpers/app.js';
import {
  runToExit,
  spawnProgram,
  startServer,
  stopAllProcesses,
  tempDir,
  waitForReady,
} from './helpers/processes.js';

afterEach(stopAllProcesses);

function startupLog(stdout: string, msg: string): Record<string, unknown> {
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.msg === msg) return entry;
  }
  throw new Error(`no "${msg}" log line in:\n${stdout}`);
}

/** The node flags and environment of bin/aio-server's `#!` line are those of process `pid`. */
async function expectShebangSettings(pid: number): Promise<void> {
  const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  expect(argv).toContain('--max-semi-space-size=4');
  expect(argv).toContain('--expose-gc');
  const environ = (await fs.readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  expect(environ).toContain('MALLOC_TRIM_THRESHOLD_=33554432');
  expect(environ).toContain('MALLOC_ARENA_MAX=2');
}

describe('aio-server', () => {
  it('listens on a free port, answers health, metrics and unknown routes, and exits 0 on SIGTERM', async () => {
    const dataDir = await tempDir();
    const server = await startServer({ AIO_DATA_DIR: dataDir });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(
      server
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('aio-server listening on')),
    ).toHaveLength(1);

    const ready = (await waitForReady(server.url)) as {
      status: string;
      components: Record<string, { status: string }>;
    };
    expect(ready.status).toBe('ready');
    for (const name of ['metadata', 'queue', 'cache', 'storage'])
      expect(ready.components[name]?.status).toBe('up');
    expect(startupLog(server.stdout(), 'aio-server started')).toMatchObject({
      adapters: { metadata: 'sqlite', queue: 'embedded', cache: 'memory' },
      worker: 'inline',
      dataDir,
      earlyBodyCollection: true,
      mallocTrimThreshold: '33554432',
      mallocArenaMax: '2',
    });

    // The node flags of bin/aio-server's `#!` line are in force (see the README).
    await expectShebangSettings(server.child.pid as number);

    const health = await fetch(`${server.url}/api/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const missing = await fetch(`${server.url}/api/v1/no-such-route`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'ROUTE_NOT_FOUND' } });

    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toContain('# TYPE aio_http_request_duration_seconds histogram');
    expect(text).toMatch(/aio_http_request_duration_seconds_count\{[^}]*status="404"[^}]*\} 1/);

    const started = Date.now();
    const exit = await server.stop('SIGTERM');
    expect(exit, server.describe()).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(server.stdout()).toContain('"msg":"shutdown complete"');
  });

  it('runs as `npm start` with the same node flags and environment, and stops on SIGTERM', async () => {
    const server = await startServer({ AIO_DATA_DIR: await tempDir() }, 'npm start');
    const pid = startupLog(server.stdout(), 'aio-server started').pid as number;
    await expectShebangSettings(pid);
    expect((await fetch(`${server.url}/api/v1/health`)).status).toBe(200);
    await server.stop('SIGTERM');
    // The server itself stopped, not only npm: nothing listens any more.
    await expect(fetch(`${server.url}/api/v1/health`)).rejects.toThrow();
  });

  it('refuses a bad environment with exit code 2 and one message naming every bad variable', async () => {
    const result = await runToExit('aio-server', {
      AIO_PORT: 'abc',
      AMQP_URL: 'http://x',
      AIO_DATA_DIR: await tempDir(),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/AIO_PORT/);
    expect(result.stderr).toMatch(/AMQP_URL/);
    expect(result.stderr.trim().startsWith('aio-server: Invalid configuration')).toBe(true);
    expect(result.stdout).not.toContain('listening');
  });

  it('exits 1 naming the component and hiding credentials when a service cannot be reached', async () => {
    const dataDir = await tempDir();
    const result = await runToExit('aio-server', {
      AIO_DATA_DIR: dataDir,
      REDIS_URL: 'redis://someone:hunter2secret@127.0.0.1:1',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cache at redis:\/\/127\.0\.0\.1:1/);
    expect(`${result.stdout}${result.stderr}`).not.toContain('hunter2secret');
  });

  it('cuts a request still in flight after the grace period and still exits 0 within the deadline', async () => {
    const server = await startServer({ AIO_DATA_DIR: await tempDir(), AIO_SHUTDOWN_TIMEOUT_MS: '3000' });
    await waitForReady(server.url);
    const { hostname, port } = new URL(server.url);
    const socket = net.connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    // Headers complete, body promised but never sent: the JSON parser waits for it.
    socket.write(`POST /api/v1/anything HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n`);
    socket.write('Content-Length: 1000\r\n\r\n{"a":');
    await new Promise((r) => setTimeout(r, 200));

    const started = Date.now();
    const exit = await server.stop('SIGTERM');
    const elapsed = Date.now() - started;
    expect(exit, server.describe()).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(3000);
    expect(server.stdout()).toContain('requests still running after the grace period');
    await socketClosed;
  });

  it('creates the JWT secret once as a 0600 file and reuses it after a restart', async () => {
    const dataDir = await tempDir();
    const file = path.join(dataDir, 'jwt-secret');
    const first = await startServer({ AIO_DATA_DIR: dataDir });
    const stat = await fs.stat(file);
    expect(stat.mode & 0o777).toBe(0o600);
    const secret = await fs.readFile(file, 'utf8');
    expect(Buffer.from(secret.trim(), 'base64url')).toHaveLength(32);
    expect((await first.stop()).code).toBe(0);

    const second = await startServer({ AIO_DATA_DIR: dataDir });
    await waitForReady(second.url);
    expect(await fs.readFile(file, 'utf8')).toBe(secret);
    expect((await fs.stat(file)).mtimeMs).toBe(stat.mtimeMs);
    expect((await second.stop()).code).toBe(0);
  });

  it('writes no secret file when AIO_JWT_SECRET is set', async () => {
    const dataDir = await tempDir();
    const server = await startServer({ AIO_DATA_DIR: dataDir, AIO_JWT_SECRET: 'a'.repeat(48) });
    await waitForReady(server.url);
    await expect(fs.stat(path.join(dataDir, 'jwt-secret'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('aio-worker', () => {
  it('runs beside a server with AIO_WORKER=off on the same data dir, heartbeats, and exits 0 on SIGTERM', async () => {
    const dataDir = await tempDir();
    const tmp = await tempDir();
    const server = await startServer({ AIO_DATA_DIR: dataDir, AIO_WORKER: 'off' });
    await waitForReady(server.url);
    expect(server.stdout()).not.toContain('"msg":"worker started"');

    const worker = spawnProgram('aio-worker', { AIO_DATA_DIR: dataDir, TMPDIR: tmp });
    await worker.waitForLine(/"msg":"aio-worker started"/);
    expect(startupLog(worker.stdout(), 'aio-worker started')).toMatchObject({
      adapters: { metadata: 'sqlite', queue: 'embedded', cache: 'memory' },
    });
    const heartbeat = path.join(tmp, 'aio-worker.heartbeat');
    await expect
      .poll(() =>
        fs.stat(heartbeat).then(
          () => true,
          () => false,
        ),
      )
      .toBe(true);

    expect(await worker.stop('SIGTERM'), worker.describe()).toEqual({ code: 0, signal: null });
    await expect(fs.stat(heartbeat)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await fs.readdir(dataDir)).toContain('jwt-secret');
    expect((await server.stop()).code).toBe(0);
  });

  it('refuses a bad environment with exit code 2', async () => {
    const result = await runToExit('aio-worker', { REDIS_URL: 'http://x', AIO_DATA_DIR: await tempDir() });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^aio-worker: Invalid configuration[\s\S]*REDIS_URL/);
  });
});

const redisUrl = requireService('REDIS_URL');
const amqpUrl = requireService('AMQP_URL');

describe.runIf(redisUrl && amqpUrl)('aio-server with Redis and RabbitMQ', () => {
  it('uses both services and reports them up in readiness', async () => {
    const server = await startServer({
      AIO_DATA_DIR: await tempDir(),
      REDIS_URL: redisUrl as string,
      AMQP_URL: amqpUrl as string,
    });
    const ready = (await waitForReady(server.url)) as { components: Record<string, { status: string }> };
    expect(ready.components.cache?.status).toBe('up');
    expect(ready.components.queue?.status).toBe('up');
    expect(startupLog(server.stdout(), 'aio-server started')).toMatchObject({
      adapters: { metadata: 'sqlite', queue: 'rabbitmq', cache: 'redis' },
    });
    expect(await server.stop('SIGTERM'), server.describe()).toEqual({ code: 0, signal: null });
  });
});
