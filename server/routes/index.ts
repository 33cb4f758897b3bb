/**
 * The versioned API under /api/v1. Each area adds its router here.
 */
import { Router } from 'express';
import type { AppDeps } from '../deps.js';
import { auditRoutes } from './audit.js';
import { authRoutes } from './auth.js';
import { fileApiRoutes } from './files-api.js';
import { jobRoutes } from './jobs.js';
import { notificationRoutes } from './notifications.js';
import { shareRoutes } from './shares.js';
import { tokenRoutes } from './tokens.js';
import { uploadRoutes } from './uploads.js';
import { videoPreviewRoutes } from './video-previews.js';

export function apiRoutes(deps: AppDeps): Router {
  const router = Router();
  // The file routes first: most requests are theirs (a request walks the routers in order).
  router.use(fileApiRoutes(deps));
  router.use('/auth', authRoutes(deps));
  router.use('/tokens', tokenRoutes(deps));
  router.use('/audit', auditRoutes(deps));
  router.use('/uploads', uploadRoutes(deps));
  router.use('/shares', shareRoutes(deps));
  router.use('/notifications', notificationRoutes(deps));
  router.use(jobRoutes(deps));
  router.use(videoPreviewRoutes(deps));
  return router;
}
