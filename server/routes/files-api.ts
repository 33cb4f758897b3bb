/**
 * Everything about the namespace, downloads and the change feed, for the lead to mount
 * with one line: `router.use(fileApiRoutes(deps))` inside `/api/v1`.
 *
 * | prefix | router | auth |
 * | --- | --- | --- |
 * | `/fs` | `fsRoutes` | bearer; read / write |
 * | `/files` | `filesRoutes` | bearer; read / write |
 * | `/trash` | `trashRoutes` | bearer; read / write |
 * | `/changes` | `changesRoutes` | bearer; read |
 * | `/dl` | `downloadRoutes` | none: the signed token |
 */
import { Router } from 'express';
import type { AppDeps } from '../deps.js';
import { changesRoutes, type ChangesRoutesOptions } from './changes.js';
import { downloadRoutes } from './download.js';
import { filesRoutes } from './files.js';
import { fsRoutes } from './fs.js';
import { trashRoutes } from './trash.js';

export function fileApiRoutes(deps: AppDeps, options: { changes?: ChangesRoutesOptions } = {}): Router {
  const router = Router();
  router.use('/fs', fsRoutes(deps));
  router.use('/files', filesRoutes(deps));
  router.use('/trash', trashRoutes(deps));
  router.use('/changes', changesRoutes(deps, options.changes));
  router.use('/dl', downloadRoutes(deps));
  return router;
}
