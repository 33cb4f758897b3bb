/**
 * Shared by the job suites: the test app with the job and preview routes in front (until
 * `server/routes/index.ts` mounts them, after which they simply answer first),
 * and tree fixtures written through the real stores.
 */
import { Readable } from 'node:stream';
import express, { type Express } from 'express';
import { validateName } from '../core/domain/names.js';
import type { TreeNode } from '../core/ports/metadata-store.js';
import { errorHandler } from '../server/middleware/error-handler.js';
import { jobRoutes } from '../server/routes/jobs.js';
import { videoPreviewRoutes } from '../server/routes/video-previews.js';
import type { TestApp } from './helpers/app.js';

export function appWithJobRoutes(t: TestApp): Express {
  const app = express();
  app.use(express.json({ limit: '1mb', strict: true }));
  app.use('/api/v1', jobRoutes(t.deps), videoPreviewRoutes(t.deps));
  app.use(t.app);
  app.use(errorHandler());
  return app;
}

export async function mkdir(
  t: TestApp,
  ownerId: string,
  parentId: string | null,
  name: string,
): Promise<TreeNode> {
  return t.deps.metadata.createFolder(ownerId, parentId, validateName(name));
}

let sources = 0;

/** Stores `bytes` as a blob and commits a ready file pointing at it. */
export async function writeFile(
  t: TestApp,
  ownerId: string,
  parentId: string | null,
  name: string,
  bytes: Uint8Array,
  options: { mtime?: number; mediaType?: string } = {},
): Promise<TreeNode> {
  const blob = await t.deps.blobs.put(Readable.from([Buffer.from(bytes)]));
  sources += 1;
  const { node } = await t.deps.metadata.commitFile({
    ownerId,
    parentId,
    name: validateName(name),
    sha256: blob.sha256,
    size: blob.size,
    mtime: options.mtime ?? Date.UTC(2024, 4, 17, 12, 30, 0),
    mediaType: options.mediaType ?? 'application/octet-stream',
    sourceId: `fixture-${process.pid}-${sources}`,
  });
  return node;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
