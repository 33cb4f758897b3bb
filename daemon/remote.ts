/**
 * The server side of one watched folder, by path relative to its remote root. Every call
 * is idempotent in the way the syncer needs: a missing node is `null` (stat) or success
 * (delete), mkdir accepts an existing folder, and an upload re-sent after a crash either
 * deduplicates or is answered with REVISION_CONFLICT, which the syncer resolves by hash.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { ApiClient } from '../contract/client.js';
import { AppError } from '../contract/errors.js';
import type { Entry, MkdirsResponse } from '../contract/schemas/files.js';
import { readRemoteTree } from '../contract/tree-client.js';
import { createUpload, sendFrom, uploadOffset, waitForUpload } from '../contract/tus-client.js';

export interface UploadRequest {
  localFile: string;
  relPath: string;
  size: number;
  sha256: string;
  mtimeMs: number;
  baseRevision: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Files up to this size are sent with their creation request (tus creation-with-upload). */
const SMALL_UPLOAD = 1024 * 1024;

export class RemoteFolder {
  constructor(
    readonly client: ApiClient,
    /** Absolute remote path of the watched folder, e.g. `/Photos` (`/` allowed). */
    readonly root: string,
  ) {}

  /** `a/b.txt` → `/Photos/a/b.txt`. */
  pathOf(relPath: string): string {
    if (relPath === '') return this.root;
    return this.root === '/' ? `/${relPath}` : `${this.root}/${relPath}`;
  }

  /** The node at `relPath`, or null when nothing is there. */
  async stat(relPath: string): Promise<Entry | null> {
    try {
      return await this.client.get<Entry>('/api/v1/fs/stat', {
        searchParams: { path: this.pathOf(relPath) },
      });
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }

  async file(id: string): Promise<Entry> {
    return this.client.get<Entry>(`/api/v1/files/${encodeURIComponent(id)}`);
  }

  async mkdir(relPath: string): Promise<Entry> {
    return this.client.post<Entry>('/api/v1/fs/mkdir', { path: this.pathOf(relPath), parents: true });
  }

  /**
   * `mkdir -p` of many folders in one request (`POST /fs/mkdirs`): per path, in order,
   * its entry or its error. Null when the server has no such route (an older one).
   */
  async mkdirs(relPaths: readonly string[]): Promise<MkdirsResponse['items'] | null> {
    try {
      const res = await this.client.post<MkdirsResponse>('/api/v1/fs/mkdirs', {
        paths: relPaths.map((p) => this.pathOf(p)),
      });
      return res.items;
    } catch (err) {
      if (err instanceof AppError && err.code === 'ROUTE_NOT_FOUND') return null;
      throw err;
    }
  }

  /** Moves the node to the server's trash; already gone counts as done. */
  async delete(relPath: string): Promise<void> {
    try {
      await this.client.post('/api/v1/fs/delete', { path: this.pathOf(relPath) });
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') return;
      throw err;
    }
  }

  async move(from: string, to: string): Promise<Entry> {
    return this.client.post<Entry>('/api/v1/fs/move', { from: this.pathOf(from), to: this.pathOf(to) });
  }

  /** Every node below the root by relative path (the root itself excluded). A missing root is empty. */
  listTree(): Promise<Map<string, Entry>> {
    return readRemoteTree(this.client, this.root);
  }

  /**
   * Uploads through tus with priority bulk and waits until the worker committed the
   * revision. Throws REVISION_CONFLICT when the server is not at `baseRevision`.
   */
  async upload(req: UploadRequest): Promise<Entry> {
    const target = {
      path: this.pathOf(req.relPath),
      size: req.size,
      sha256: req.sha256,
      mtimeMs: req.mtimeMs,
      baseRevision: req.baseRevision,
      priority: 'bulk' as const,
    };
    // Small files travel with the creation request: one round trip instead of two. The
    // bytes are re-hashed so what is sent is exactly what was declared.
    if (req.size <= SMALL_UPLOAD) {
      const body = await fs.readFile(req.localFile);
      const sha256 = createHash('sha256').update(body).digest('hex');
      if (sha256 !== req.sha256 || body.length !== req.size) {
        throw new AppError('CONFLICT', 'The file changed while it was read; it will be uploaded again.');
      }
      const created = await createUpload(this.client, target, body);
      const info = await waitForUpload(this.client, created.url.split('/').pop() as string);
      return this.file(info.fileId as string);
    }
    const created = await createUpload(this.client, target);
    let offset = created.offset;
    let attempts = 0;
    while (offset < req.size) {
      try {
        offset = await sendFrom(this.client, created.url, req.localFile, offset, req.size);
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'SERVICE_UNAVAILABLE' || ++attempts > 3) throw err;
        await sleep(250 * 2 ** attempts);
        const at = await uploadOffset(this.client, created.url);
        if (at === null) throw new AppError('GONE', 'The upload expired on the server.');
        offset = at;
      }
    }
    const info = await waitForUpload(this.client, created.url.split('/').pop() as string);
    return this.file(info.fileId as string);
  }
}
