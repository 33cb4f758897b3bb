/**
 * The item a share request names: `{ path }` or `{ id }` in the caller's own tree (not
 * trashed, not the root). Shares of shares are not possible: `/Shared/…` paths and
 * foreign ids are not found.
 */
import { AppError, NotFoundError } from '../../contract/errors.js';
import { splitPath } from '../../core/domain/names.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { resolvePath } from '../../core/tree.js';
import type { AppDeps } from '../deps.js';

export async function shareTarget(
  deps: Pick<AppDeps, 'metadata'>,
  ownerId: string,
  body: { path?: string; id?: string },
): Promise<TreeNode> {
  let node: TreeNode | null;
  if (body.path !== undefined) {
    const segments = splitPath(body.path);
    if (segments.length === 0) throw new AppError('INVALID_PATH', 'The root cannot be shared.');
    node = await resolvePath(deps.metadata, ownerId, `/${segments.join('/')}`);
  } else {
    node = await deps.metadata.getNode(ownerId, body.id ?? '');
  }
  if (node === null || node.trashedAt !== null) throw new NotFoundError('No such item.');
  return node;
}
