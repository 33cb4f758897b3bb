/**
 * Crashes of real processes: the server SIGKILLed in the middle of a 100 MiB upload, and
 * a worker SIGKILLed while it handles a job before acknowledging it.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { requireService } from './helpers/app.js';
import { spawnProgram, startServer, stopAllProcesses, tempDir, waitForReady } from './helpers/processes.js';

const SIZE = 100 * 1024 * 1024;
const CHUNK = 1024 * 1024;

afterEach(async () => {
  await stopAllProcesses();
});

interface Session {
  url: string;
  token: string;
}

async function json<T>(url: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

async function login(url: string): Promise<Session> {
  const creds = { email: `crash-${Date.now()}@example.test`, password: 'crash test password' };
  const headers = { 'content-type': 'application/json' };
  await json(`${url}/api/v1/auth/register`, { method: 'POST', headers, body: JSON.stringify(creds) });
  const res = await json<{ accessToken: string }>(`${url}/api/v1/auth/login`, {
    method: 'POST',
    headers,
    body: JSON.stringify(creds),
  });
  return { url, token: res.accessToken };
}

function tusHeaders(s: Session): Record<string, string> {
  return { authorization: `Bearer ${s.token}`, 'tus-resumable': '1.0.0' };
}

function metadata(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

async function create(s: Session, path: string, size: number, sha256: string): Promise<string> {
  const res = await fetch(`${s.url}/api/v1/uploads`, {
    method: 'POST',
    headers: {
      ...tusHeaders(s),
      'upload-length': String(size),
      'upload-metadata': metadata({ path, sha256 }),
    },
  });
  expect(res.status).toBe(201);
  return new URL(res.headers.get('location') as string, s.url).toString();
}

async function offsetOf(s: Session, uploadUrl: string): Promise<number> {
  const res = await fetch(uploadUrl, { method: 'HEAD', headers: tusHeaders(s) });
  expect(res.status).toBe(200);
  return Number(res.headers.get('upload-offset'));
}

/**
 * PATCHes `bytes` from `offset`, one MiB at a time with backpressure; `onSent` sees the
 * running total. Resolves with the status, or 0 when the connection broke.
 */
function patch(s: Session, uploadUrl: string, bytes: Buffer, offset: number, onSent?: (n: number) => void) {
  return new Promise<number>((resolve) => {
    const req = http.request(uploadUrl, {
      method: 'PATCH',
      headers: {
        ...tusHeaders(s),
        'upload-offset': String(offset),
        'content-type': 'application/offset+octet-stream',
        'content-length': String(bytes.length - offset),
      },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    let at = offset;
    const pump = () => {
      while (at < bytes.length) {
        const end = Math.min(at + CHUNK, bytes.length);
        const ok = req.write(bytes.subarray(at, end));
        at = end;
        onSent?.(at);
        if (!ok) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

async function waitReady(s: Session, uploadUrl: string): Promise<{ status: string; fileId: string | null }> {
  return json(`${uploadUrl}?wait=25`, { headers: { authorization: `Bearer ${s.token}` } });
}

describe('crashes of real processes', () => {
  it('resumes a 100 MiB upload from the HEAD offset after the server was SIGKILLed halfway', async () => {
    const dataDir = await tempDir('aio-crash-');
    const env = { AIO_DATA_DIR: dataDir, AIO_BCRYPT_COST: '4', AIO_LOG_LEVEL: 'warn' };
    let server = await startServer(env);
    const port = new URL(server.url).port;
    const s = await login(server.url);
    const bytes = randomBytes(SIZE);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const uploadUrl = await create(s, '/crash/big.bin', SIZE, sha256);

    let killed = false;
    const status = await patch(s, uploadUrl, bytes, 0, (sent) => {
      if (!killed && sent >= SIZE / 2) {
        killed = true;
        server.child.kill('SIGKILL');
      }
    });
    expect(status).toBe(0); // the connection broke
    await server.exited;

    server = await startServer({ ...env, AIO_PORT: port });
    await waitForReady(server.url);
    const offset = await offsetOf(s, uploadUrl);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(SIZE);

    expect(await patch(s, uploadUrl, bytes, offset)).toBe(204);
    const done = await waitReady(s, uploadUrl);
    expect(done.status).toBe('ready');
    const file = await json<{ sha256: string; size: number }>(`${server.url}/api/v1/files/${done.fileId}`, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    expect(file).toMatchObject({ sha256, size: SIZE });
    const content = await fetch(`${server.url}/api/v1/files/${done.fileId}/content`, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    expect(
      createHash('sha256')
        .update(Buffer.from(await content.arrayBuffer()))
        .digest('hex'),
    ).toBe(sha256);
  }, 120_000);

  const redisUrl = requireService('REDIS_URL');
  const amqpUrl = requireService('AMQP_URL');

  it.runIf(redisUrl && amqpUrl)(
    'redelivers the job of a worker SIGKILLed before its ack, and exactly one revision exists',
    async () => {
      const dataDir = await tempDir('aio-crash-worker-');
      const common = {
        AIO_DATA_DIR: dataDir,
        AIO_JWT_SECRET: 'crash-test-secret-0123456789abcdef0123',
        AIO_BCRYPT_COST: '4',
        REDIS_URL: redisUrl as string,
        AMQP_URL: amqpUrl as string,
      };
      const server = await startServer({ ...common, AIO_WORKER: 'off', AIO_LOG_LEVEL: 'warn' });
      const s = await login(server.url);
      // The kill must land between "job started" and the ack. On a loaded machine this
      // test's process can be descheduled long enough for the job to finish first; then
      // nothing was tested and the next attempt uses a new file and a new worker.
      let attempt = 0;
      let sha256 = '';
      let uploadUrl = '';
      for (;;) {
        attempt += 1;
        const bytes = randomBytes(SIZE);
        sha256 = createHash('sha256').update(bytes).digest('hex');
        uploadUrl = await create(s, `/crash/worker-${attempt}.bin`, SIZE, sha256);
        // The first worker logs at debug level so the test sees it take the job.
        const first = spawnProgram('aio-worker', { ...common, AIO_LOG_LEVEL: 'debug' });
        await first.waitForLine(/"msg":"worker started"/, 20_000);
        expect(await patch(s, uploadUrl, bytes, 0)).toBe(204);
        await first.waitForLine(/"queue":"file\.upload".*"msg":"job started"/, 30_000);
        first.child.kill('SIGKILL');
        await first.exited;
        if (!/"queue":"file\.upload".*"outcome":"success"/.test(first.stdout())) break;
        expect(attempt, 'the worker finished the job before every kill').toBeLessThan(3);
      }

      const second = spawnProgram('aio-worker', { ...common, AIO_LOG_LEVEL: 'info' });
      const done = await waitReady(s, uploadUrl);
      expect(done.status).toBe('ready');
      // The worker commits before it logs; the line can reach this process after the
      // status does.
      await second.waitForLine(/"queue":"file\.upload".*"outcome":"success"/, 30_000);
      const versions = await json<{ items: Array<{ sha256: string }> }>(
        `${server.url}/api/v1/files/${done.fileId}/versions`,
        { headers: { authorization: `Bearer ${s.token}` } },
      );
      expect(versions.items).toEqual([expect.objectContaining({ sha256 })]);
    },
    120_000,
  );
});
