/**
 * What the upload suites share: a real app over embedded adapters with the upload
 * routes, the outbox relay and a worker consuming `file.upload` (the whole flow runs,
 * nothing is faked), plus small helpers for tus headers and waiting on the worker.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import request from 'supertest';
import { TUS_VERSION, type UploadInfo } from '../contract/schemas/uploads.js';
import type { TreeNode } from '../core/ports/metadata-store.js';
import { OutboxRelay } from '../server/outbox-relay.js';
import { errorHandler } from '../server/middleware/error-handler.js';
import { uploadRoutes } from '../server/routes/uploads.js';
import { fileUploadHandler } from '../worker/jobs/file-upload.js';
import { startWorker, type WorkerRuntime } from '../worker/runtime.js';
import { createTestApp, type TestApp, type TestAppOptions } from './helpers/app.js';

export const TUS = { 'Tus-Resumable': TUS_VERSION };
export const OCTET = 'application/offset+octet-stream';

export interface UploadHarness {
  t: TestApp;
  /** The app serving /api/v1/uploads. */
  app: Express;
  relay: OutboxRelay;
  /** Null when started without a worker. */
  worker: WorkerRuntime | null;
  close(): Promise<void>;
}

export async function startHarness(
  options: TestAppOptions & { worker?: boolean; relay?: boolean } = {},
): Promise<UploadHarness> {
  const t = await createTestApp(options);
  let app: Express = t.app;
  const probe = await request(t.app).options('/api/v1/uploads');
  if (probe.headers['tus-version'] === undefined) {
    // Until the lead mounts uploadRoutes in server/routes/index.ts: the same router, in front of the app.
    app = express();
    app.use('/api/v1/uploads', uploadRoutes(t.deps));
    app.use(t.app);
    app.use(errorHandler());
  }
  const relay = new OutboxRelay(t.deps, { intervalMs: 100 });
  if (options.relay !== false) await relay.start();
  const worker =
    options.worker === false
      ? null
      : await startWorker(
          t.deps,
          { 'file.upload': fileUploadHandler(t.deps) },
          { concurrency: 2, maxAttempts: 5 },
        );
  return {
    t,
    app,
    relay,
    worker,
    async close() {
      await relay.stop();
      await worker?.stop();
      await t.close();
    },
  };
}

export function b64(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64');
}

/** An Upload-Metadata header from plain values. */
export function metadataHeader(pairs: Record<string, string | number>): string {
  return Object.entries(pairs)
    .map(([k, v]) => `${k} ${b64(String(v))}`)
    .join(',');
}

export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Deterministic, non-repeating test content. */
export function bytesOf(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * POST /api/v1/uploads; returns the upload id from Location. With `body`, the bytes go
 * in the same request (creation-with-upload).
 */
export async function createUpload(
  h: UploadHarness,
  headers: Record<string, string>,
  pairs: Record<string, string | number>,
  length: number,
  body?: Buffer,
): Promise<string> {
  let req = request(h.app)
    .post('/api/v1/uploads')
    .set(TUS)
    .set(headers)
    .set('Upload-Length', String(length))
    .set('Upload-Metadata', metadataHeader(pairs));
  if (body !== undefined) req = req.set('Content-Type', OCTET).send(body);
  const res = await req;
  if (res.status !== 201) throw new Error(`creation answered ${res.status}: ${JSON.stringify(res.body)}`);
  return idOf(res.headers.location);
}

export function idOf(location: string | undefined): string {
  const match = /^\/api\/v1\/uploads\/([A-Za-z0-9_-]+)$/.exec(location ?? '');
  if (!match?.[1]) throw new Error(`unexpected Location ${location}`);
  return match[1];
}

/** Polls GET /uploads/:id until the worker has finished with it. */
export async function waitForUpload(
  h: UploadHarness,
  headers: Record<string, string>,
  id: string,
  timeoutMs = 20_000,
): Promise<UploadInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await request(h.app).get(`/api/v1/uploads/${id}`).set(TUS).set(headers);
    const info = res.body as UploadInfo;
    if (res.status !== 200) throw new Error(`GET answered ${res.status}`);
    if (info.status !== 'receiving' && info.status !== 'processing') return info;
    if (Date.now() > deadline) throw new Error(`upload ${id} still ${info.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every bytes of a committed blob. */
export async function readBlob(h: UploadHarness, sha256: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await h.t.deps.blobs.read(sha256)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The live children of the owner's root (or of `parentId`). */
export async function childrenOf(
  h: UploadHarness,
  ownerId: string,
  parentId: string | null = null,
): Promise<TreeNode[]> {
  return (await h.t.deps.metadata.listChildren(ownerId, parentId, { limit: 1000 })).items;
}

/** Starts `app` on an ephemeral port; for tests where streaming and aborts matter. */
export async function listen(app: Express): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
