/**
 * Path operations over the MetadataStore's tree, shared by the API and the worker.
 * Paths are `/`-separated, absolute within the owner's namespace; `/` is the root
 * (`null` parent). Every segment is validated (core/domain/names.ts) before use.
 */
import { AppError, ConflictError, NotFoundError } from '../contract/errors.js';
import { splitPath } from './domain/names.js';
import type { MetadataStore, TreeNode } from './ports/metadata-store.js';

/** The node at `path`, `null` for the root, or `NotFoundError`. Trashed nodes are not found. */
export async function resolvePath(
  metadata: MetadataStore,
  ownerId: string,
  path: string,
): Promise<TreeNode | null> {
  const segments = splitPath(path);
  const nodes = await metadata.findPath(ownerId, null, segments);
  const last = nodes[nodes.length - 1] ?? null;
  if (nodes.length < segments.length) {
    if (last && last.kind !== 'folder') throw new NotFoundError(`No such folder: ${last.name}`);
    throw new NotFoundError(`Not found: ${path}`);
  }
  return last;
}

/** The folder id at `path` (`null` for the root); `NotFoundError` / `CONFLICT` when it is a file. */
export async function resolveFolderId(
  metadata: MetadataStore,
  ownerId: string,
  path: string,
): Promise<string | null> {
  const node = await resolvePath(metadata, ownerId, path);
  if (node && node.kind !== 'folder') throw new AppError('CONFLICT', `Not a folder: ${path}`);
  return node?.id ?? null;
}

/**
 * Creates every missing folder along `segments` (mkdir -p) and returns the last one's
 * id. A concurrent creator of the same folder is not an error: the existing one is used.
 */
export async function ensureFolders(
  metadata: MetadataStore,
  ownerId: string,
  segments: readonly string[],
  /** The folder `segments` start in; the root by default. */
  from: string | null = null,
): Promise<string | null> {
  let parentId: string | null = from;
  for (const segment of segments) {
    let child: TreeNode | null = await metadata.findChild(ownerId, parentId, segment);
    if (!child) {
      try {
        child = await metadata.createFolder(ownerId, parentId, segment);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        child = await metadata.findChild(ownerId, parentId, segment);
        if (!child) throw err;
      }
    }
    if (child.kind !== 'folder') throw new AppError('CONFLICT', `Not a folder: ${segment}`);
    parentId = child.id;
  }
  return parentId;
}

/** The path of a node, built by walking up its parents. */
export async function pathOf(metadata: MetadataStore, ownerId: string, node: TreeNode): Promise<string> {
  const names: string[] = [node.name];
  let parentId = node.parentId;
  for (let depth = 0; parentId && depth < 1000; depth++) {
    const parent = await metadata.getNode(ownerId, parentId);
    if (!parent) break;
    names.push(parent.name);
    parentId = parent.parentId;
  }
  return `/${names.reverse().join('/')}`;
}
