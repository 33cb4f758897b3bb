/**
 * The versioned API under /api/v1. Each area adds its router here.
 */
import { Router } from 'express';
import type { AppDeps } from '../deps.js';
import { auditRoutes } from './audit.js';
import { authRoutes } from './auth.js';
import { tokenRoutes } from './tokens.js';

export function apiRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use('/auth', authRoutes(deps));
  router.use('/tokens', tokenRoutes(deps));
  router.use('/audit', auditRoutes(deps));
  return router;
}
