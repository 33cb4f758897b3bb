/**
 * Signed download URLs (`GET|HEAD /api/v1/dl/:token`): no Authorization header, the
 * token is the capability. It names the blob, the file name and the expiry (see
 * `core/signed-url.ts`); forged → 404, expired → 410. Same headers and Range support as
 * `/files/:id/content`. The token is a secret in the path: logs must redact `/api/v1/dl/…`.
 */
import { Router } from 'express';
import { NotFoundError } from '../../contract/errors.js';
import { verifyDownload } from '../../core/signed-url.js';
import type { AppDeps } from '../deps.js';
import { serveBlob } from '../files/serve-blob.js';

export function downloadRoutes(deps: AppDeps): Router {
  const router = Router();
  router.get('/:token', async (req, res) => {
    const grant = verifyDownload(deps.jwtSecret, String(req.params.token), deps.clock.now());
    const stat = await deps.blobs.stat(grant.sha256);
    if (stat === null) throw new NotFoundError('The content is gone.');
    res.setHeader('Referrer-Policy', 'no-referrer');
    await serveBlob(req, res, deps, {
      sha256: grant.sha256,
      size: stat.size,
      name: grant.name,
      mediaType: grant.mediaType,
    });
  });
  return router;
}
