/**
 * `zipFolder`: streams a folder's tree into one zip blob. The tree is walked page by
 * page (trashed and not-yet-ready files left out); each file's blob is opened only when
 * yazl reaches its entry, and the zip output flows straight into `BlobStore.put`, whose
 * awaited writes are the backpressure — memory stays flat whatever the folder's size.
 *
 * The zip is deterministic for the same tree (entries in name order, mtimes from the
 * nodes), so zipping an unchanged folder again yields the same blob.
 *
 * Errors: a file whose blob is missing rejects with `NotFoundError` (from the store);
 * a blob whose length differs from its node's size rejects with yazl's error; store
 * and metadata errors are passed on. On any error the partial zip is discarded.
 */
import type { Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import type { BlobStore } from '../../core/ports/blob-store.js';
import type { MetadataStore, TreeNode } from '../../core/ports/metadata-store.js';
import { ZipEntryNames } from './zip-names.js';

const PAGE_SIZE = 200;

/** Already-compressed media are stored, not deflated again (saves CPU, costs nothing). */
const COMPRESSED_MEDIA =
  /^(?:image\/(?:jpeg|png|gif|webp|avif|heic|heif)|video\/|audio\/(?:mpeg|aac|ogg|opus|mp4|webm|flac)|application\/(?:zip|gzip|x-gzip|zstd|x-7z-compressed|x-xz|x-bzip2|x-rar-compressed|vnd\.rar|pdf))/u;

export interface FolderZip {
  sha256: string;
  size: number;
  /** File entries written. */
  files: number;
}

/** Zips the folder `folderId` of `ownerId` (`null`: the whole namespace) into a new blob. */
export async function zipFolder(
  deps: { metadata: MetadataStore; blobs: BlobStore },
  ownerId: string,
  folderId: string | null,
): Promise<FolderZip> {
  const zip = new ZipFile();
  const output = zip.outputStream as unknown as Readable;
  // yazl reports read errors on itself; ending the output with them makes `put` fail and clean up.
  zip.on('error', (err: Error) => output.destroy(err));
  const stored = deps.blobs.put(output);
  // Observed now so an early store failure is not an unhandled rejection while the walk goes on.
  stored.catch(() => undefined);

  let files = 0;
  try {
    const names = new ZipEntryNames();
    const pending: Array<{ id: string | null; path: string }> = [{ id: folderId, path: '' }];
    for (let folder = pending.pop(); folder !== undefined; folder = pending.pop()) {
      const subfolders: Array<{ id: string; path: string }> = [];
      for await (const node of children(deps.metadata, ownerId, folder.id)) {
        if (node.trashedAt !== null) continue;
        if (node.kind === 'folder') {
          const path = names.claim(folder.path, node.name);
          zip.addEmptyDirectory(path, { mtime: mtimeOf(node) });
          subfolders.push({ id: node.id, path });
        } else if (node.status === 'ready' && node.sha256 !== null) {
          addFile(zip, deps.blobs, names.claim(folder.path, node.name), node, node.sha256);
          files += 1;
        }
      }
      // Reversed onto the stack so subfolders are visited in name order.
      pending.push(...subfolders.reverse());
    }
    zip.end();
  } catch (err) {
    output.destroy(err instanceof Error ? err : new Error(String(err)));
    await stored.catch(() => undefined);
    throw err;
  }
  const { sha256, size } = await stored;
  return { sha256, size, files };
}

function addFile(zip: ZipFile, blobs: BlobStore, path: string, node: TreeNode, sha256: string): void {
  zip.addReadStreamLazy(
    path,
    { mtime: mtimeOf(node), size: node.size, compress: !COMPRESSED_MEDIA.test(node.mediaType ?? '') },
    (callback) => {
      blobs.read(sha256).then(
        (stream) => {
          stream.once('error', (err) => zip.emit('error', err));
          callback(null, stream);
        },
        (err: unknown) => callback(err, undefined as unknown as NodeJS.ReadableStream),
      );
    },
  );
}

/** The client's modification time when known, else when the node last changed. */
function mtimeOf(node: TreeNode): Date {
  return new Date(node.mtime ?? node.updatedAt.getTime());
}

/** Every child of `parentId`, in name order, page by page. */
async function* children(
  metadata: MetadataStore,
  ownerId: string,
  parentId: string | null,
): AsyncGenerator<TreeNode> {
  let cursor: string | null = null;
  do {
    const page = await metadata.listChildren(ownerId, parentId, {
      limit: PAGE_SIZE,
      cursor,
      sort: 'name',
      order: 'asc',
    });
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor !== null);
}
