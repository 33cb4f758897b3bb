/**
 * Helpers of the namespace, download and change-feed suites: an app serving the file
 * routes, and files put into the tree the way the worker does it (blob, then commit).
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import express, { type Express } from 'express';
import request, { type Test } from 'supertest';
import { splitPath } from '../core/domain/names.js';
import type { TreeNode } from '../core/ports/metadata-store.js';
import { ensureFolders } from '../core/tree.js';
import { announceLatest } from '../server/files/announce.js';
import { errorHandler } from '../server/middleware/error-handler.js';
import { fileApiRoutes } from '../server/routes/files-api.js';
import { createTestApp, type TestApp, type TestAppOptions, type TestUser } from './helpers/app.js';

type BodyParser = Extract<Parameters<Test['parse']>[0], (res: never, done: never) => void>;

export interface FilesTestApp {
  t: TestApp;
  /** The app to send requests to. */
  app: Express;
}

/**
 * A real app (real adapters, temp dir). When `server/routes/index.ts` does not mount the
 * file routes yet, they are served in front of the real app with the real error handler.
 */
export async function createFilesTestApp(options: TestAppOptions = {}): Promise<FilesTestApp> {
  const t = await createTestApp(options);
  const probe = await request(t.app).get('/api/v1/changes/latest');
  if (probe.status !== 404) return { t, app: t.app };
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(express.json({ limit: '1mb', strict: true }));
  app.use('/api/v1', fileApiRoutes(t.deps, { changes: { fallbackMs: 1000 } }));
  app.use(t.app);
  app.use(errorHandler());
  return { t, app };
}

/** Writes `content` as the blob and commits it at `path` (folders created), like the upload worker. */
export async function putFile(
  t: TestApp,
  user: TestUser,
  path: string,
  content: string | Buffer,
  options: { mediaType?: string | null; mtime?: number; sourceId?: string } = {},
): Promise<TreeNode> {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const { sha256, size } = await t.deps.blobs.put(Readable.from([bytes]));
  const segments = splitPath(path);
  const name = segments.pop() as string;
  const parentId = await ensureFolders(t.deps.metadata, user.id, segments);
  const { node } = await t.deps.metadata.commitFile({
    ownerId: user.id,
    parentId,
    name,
    sha256,
    size,
    mtime: options.mtime ?? null,
    mediaType: options.mediaType === undefined ? 'application/octet-stream' : options.mediaType,
    sourceId: options.sourceId ?? `test:${randomUUID()}`,
  });
  await announceLatest(t.deps, user.id);
  return node;
}

/** A supertest parser that keeps the body as raw bytes whatever the Content-Type. */
export const binaryParser: BodyParser = (res, done) => {
  // On Node the response handed to a parser is the IncomingMessage stream.
  const stream = res as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
  stream.on('error', (err: Error) => done(err, Buffer.concat(chunks)));
};
