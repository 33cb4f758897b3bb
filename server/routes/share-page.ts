/**
 * Public share links, mounted at `/s` (outside `/api/v1`; no Authorization). The token
 * in the path is the capability; logs redact it (`redactUrl`).
 *
 * - `GET /s/:token` → an HTML page (file: name, size, expiry, download button; folder:
 *   its entries, a download for each file, "download all"); with `?dl=1` a file link
 *   answers with the bytes (Range, ETag, attachment), which is what `curl -OJ` wants.
 * - `POST /s/:token/auth` (form `password`) → 303 back to the page with an HttpOnly,
 *   SameSite=Strict proof cookie scoped to `/s/<token>`; wrong → 401 page; the 6th try
 *   within the window per link and ip → 429 (counted in the Cache, shared by instances).
 * - `GET /s/:token/d/:nodeId` → page of a subfolder; `GET /s/:token/f/:nodeId` → a file's
 *   bytes. The node must be inside the shared folder, else 404.
 * - `POST /s/:token/zip` → starts a `file.download` job of the folder, 303 to
 *   `GET /s/:token/zip/:jobId` (refreshes itself until ready), then
 *   `GET /s/:token/zip/:jobId/file` → the zip.
 *
 * Unknown, revoked or malformed → 404 page; expired → 410 page; download limit reached
 * → 410. Every byte response counts one download (`recordShareDownload`, atomic); HEAD
 * counts none. Pages carry a strict CSP (no script; the stylesheet by hash).
 */
import { randomUUID } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import { AppError, NotFoundError } from '../../contract/errors.js';
import { zipResultSchema, type FileDownloadPayload } from '../../contract/schemas/jobs.js';
import { JobStatusStore } from '../../core/job-status.js';
import { PRIORITY } from '../../core/ports/job-queue.js';
import type { TreeNode } from '../../core/ports/metadata-store.js';
import { PasswordHasher } from '../auth/passwords.js';
import { audit } from '../audit.js';
import type { AppDeps } from '../deps.js';
import { fileDownload, serveBlob } from '../files/serve-blob.js';
import { RateLimiter } from '../middleware/rate-limit.js';
import { sharePageErrors } from '../shares/error-page.js';
import { filePage, folderPage, passwordPage, SHARE_PAGE_CSP, zipPage } from '../shares/html.js';
import {
  countDownload,
  hasAccess,
  isExhausted,
  nodeInside,
  openLink,
  type OpenLink,
} from '../shares/link-access.js';
import { PROOF_COOKIE, PROOF_TTL_MS, signProof } from '../shares/link-token.js';
import { notify } from '../shares/notify.js';

/** Password attempts per link and ip per window (`config.rateLimit.authWindowMs`). */
export const SHARE_PASSWORD_ATTEMPTS = 5;
/** Zip jobs a visitor may start per link and ip per window. */
const ZIP_STARTS = 10;
/** Entries listed on a folder page. */
const FOLDER_PAGE_ENTRIES = 500;

export function sharePageRoutes(deps: AppDeps): Router {
  const router = Router();
  const passwords = new PasswordHasher(deps.config.bcryptCost);
  const limiter = new RateLimiter(deps.cache, deps.clock, { onCacheFailure: 'fallback' });
  const statuses = new JobStatusStore(deps.cache, deps.clock);
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 5 });

  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', SHARE_PAGE_CSP);
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Robots-Tag', 'noindex, nofollow');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  /** The link, or a rendered password form (then `null`: the response is sent). */
  async function accessible(req: Request, res: Response): Promise<OpenLink | null> {
    const link = await openLink(deps, String(req.params.token));
    if (hasAccess(deps, req, link)) return link;
    res.status(401).type('html').send(passwordPage(link.token, null));
    return null;
  }

  /** Records the opening (audit) and notifies the owner the first time. */
  async function opened(req: Request, link: OpenLink): Promise<void> {
    await audit(deps, req, 'share.open', { shareId: link.share.id }, { userId: link.share.ownerId });
    if (await deps.metadata.markShareOpened(link.share.id, deps.clock.now()))
      await notify(deps, link.share.ownerId, 'share.opened', {
        shareId: link.share.id,
        name: link.node.name,
      });
  }

  async function sendFile(req: Request, res: Response, link: OpenLink, file: TreeNode): Promise<void> {
    if (file.kind !== 'file' || file.status !== 'ready' || file.sha256 === null)
      throw new AppError('CONFLICT', 'This file is not ready.');
    if (req.method !== 'HEAD') {
      const counted = await countDownload(deps, link);
      await audit(
        deps,
        req,
        'share.download',
        { shareId: link.share.id, nodeId: file.id, downloads: counted.downloads },
        { userId: link.share.ownerId },
      );
    }
    await serveBlob(req, res, deps, fileDownload({ ...file, sha256: file.sha256 }));
  }

  async function sendFolder(res: Response, link: OpenLink, folder: TreeNode): Promise<void> {
    const entries: TreeNode[] = [];
    let cursor: string | null = null;
    do {
      const page = await deps.metadata.listChildren(link.share.ownerId, folder.id, { limit: 100, cursor });
      entries.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null && entries.length < FOLDER_PAGE_ENTRIES);
    res.type('html').send(
      folderPage({
        token: link.token,
        name: folder.id === link.node.id ? link.node.name : folder.name,
        upHref: folder.id === link.node.id ? null : `/s/${link.token}`,
        folderId: folder.id,
        expiresAt: link.share.expiresAt,
        entries: entries.slice(0, FOLDER_PAGE_ENTRIES).map((n) => ({
          id: n.id,
          name: n.name,
          kind: n.kind,
          size: n.size,
          ready: n.status === 'ready',
        })),
        truncated: cursor !== null || entries.length > FOLDER_PAGE_ENTRIES,
      }),
    );
  }

  router.get('/:token', async (req, res) => {
    const link = await accessible(req, res);
    if (!link) return;
    if (req.query.dl === '1') {
      if (link.node.kind !== 'file')
        throw new AppError('CONFLICT', 'This link is a folder: open it in a browser.');
      if (req.method !== 'HEAD') await opened(req, link);
      await sendFile(req, res, link, link.node);
      return;
    }
    if (isExhausted(link.share)) throw new AppError('GONE', 'This link has reached its download limit.');
    await opened(req, link);
    if (link.node.kind === 'folder') {
      await sendFolder(res, link, link.node);
      return;
    }
    const left = link.share.maxDownloads === null ? null : link.share.maxDownloads - link.share.downloads;
    res.type('html').send(
      filePage({
        token: link.token,
        name: link.node.name,
        size: link.node.size,
        expiresAt: link.share.expiresAt,
        downloadsLeft: left,
      }),
    );
  });

  router.post('/:token/auth', form, async (req, res) => {
    const link = await openLink(deps, String(req.params.token));
    if (link.share.passwordHash === null) {
      res.redirect(303, `/s/${link.token}`);
      return;
    }
    const { windowMs, ip } = { windowMs: deps.config.rateLimit.authWindowMs, ip: req.ip ?? 'unknown' };
    await limiter.consume([
      { key: `share-password:${link.share.id}:${ip}`, max: SHARE_PASSWORD_ATTEMPTS, windowMs },
    ]);
    const body = req.body as Record<string, unknown> | undefined;
    const password = typeof body?.password === 'string' ? body.password.slice(0, 1024) : '';
    if (!(await passwords.verifyOrDummy(password, link.share.passwordHash))) {
      await audit(
        deps,
        req,
        'share.password_failed',
        { shareId: link.share.id },
        { userId: link.share.ownerId },
      );
      res.status(401).type('html').send(passwordPage(link.token, 'Wrong password.'));
      return;
    }
    const now = deps.clock.now().getTime();
    const exp = Math.min(now + PROOF_TTL_MS, link.share.expiresAt?.getTime() ?? Number.MAX_SAFE_INTEGER);
    res.cookie(PROOF_COOKIE, signProof(deps.jwtSecret, link.share, exp), {
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      path: `/s/${link.token}`,
      maxAge: Math.max(1000, exp - now),
    });
    res.redirect(303, `/s/${link.token}`);
  });

  router.get('/:token/d/:nodeId', async (req, res) => {
    const link = await accessible(req, res);
    if (!link) return;
    const folder = await nodeInside(deps, link, String(req.params.nodeId));
    if (folder.kind !== 'folder') throw new NotFoundError();
    await sendFolder(res, link, folder);
  });

  router.get('/:token/f/:nodeId', async (req, res) => {
    const link = await accessible(req, res);
    if (!link) return;
    const file = await nodeInside(deps, link, String(req.params.nodeId));
    await sendFile(req, res, link, file);
  });

  router.post('/:token/zip', form, async (req, res) => {
    const link = await accessible(req, res);
    if (!link) return;
    if (link.node.kind !== 'folder') throw new NotFoundError();
    const body = req.body as Record<string, unknown> | undefined;
    const folder = typeof body?.folder === 'string' ? await nodeInside(deps, link, body.folder) : link.node;
    if (folder.kind !== 'folder') throw new NotFoundError();
    if (isExhausted(link.share)) throw new AppError('GONE', 'This link has reached its download limit.');
    await limiter.consume([
      {
        key: `share-zip:${link.share.id}:${req.ip ?? 'unknown'}`,
        max: ZIP_STARTS,
        windowMs: deps.config.rateLimit.authWindowMs,
      },
    ]);
    const ref = { id: randomUUID(), ownerId: link.share.ownerId, type: 'file.download' as const };
    await statuses.create(ref);
    await deps.cache.set(zipKey(ref.id), link.share.id, 24 * 60 * 60 * 1000);
    const payload: FileDownloadPayload = { jobId: ref.id, ownerId: ref.ownerId, folderId: folder.id };
    await deps.queue.publish({
      queue: 'file.download',
      payload: { ...payload },
      idempotencyKey: ref.id,
      priority: PRIORITY.interactive,
    });
    await audit(
      deps,
      req,
      'share.zip',
      { shareId: link.share.id, jobId: ref.id, folderId: folder.id },
      {
        userId: link.share.ownerId,
      },
    );
    res.redirect(303, `/s/${link.token}/zip/${ref.id}`);
  });

  /** The zip job of this link, or 404. */
  async function zipStatus(link: OpenLink, jobId: string) {
    if (!/^[0-9a-f-]{36}$/u.test(jobId) || (await deps.cache.get(zipKey(jobId))) !== link.share.id)
      throw new NotFoundError();
    const status = await statuses.getForOwner(link.share.ownerId, jobId);
    if (status === null) throw new NotFoundError();
    return status;
  }

  router.get('/:token/zip/:jobId', async (req, res) => {
    const link = await accessible(req, res);
    if (!link) return;
    const jobId = String(req.params.jobId);
    const status = await zipStatus(link, jobId);
    const state = status.status === 'done' ? 'done' : status.status === 'failed' ? 'failed' : 'waiting';
    res.type('html').send(zipPage(link.token, jobId, state, status.error ?? null));
  });

  router.get('/:token/zip/:jobId/file', async (req, res) => {
    const link = await accessible(req, res);
    if (!link) return;
    const status = await zipStatus(link, String(req.params.jobId));
    const result = zipResultSchema.safeParse(status.result);
    if (status.status !== 'done' || !result.success)
      throw new AppError('CONFLICT', 'The zip is not ready yet.');
    if (req.method !== 'HEAD') {
      const counted = await countDownload(deps, link);
      await audit(
        deps,
        req,
        'share.download',
        { shareId: link.share.id, zip: true, downloads: counted.downloads },
        { userId: link.share.ownerId },
      );
    }
    await serveBlob(req, res, deps, {
      sha256: result.data.sha256,
      size: result.data.size,
      name: result.data.name,
      mediaType: 'application/zip',
    });
  });

  // Anything else under /s (`/s/<token>/../..`, extra segments): the same 404 page.
  router.use(() => {
    throw new NotFoundError();
  });
  router.use(sharePageErrors());
  return router;
}

function zipKey(jobId: string): string {
  return `share-zip:${jobId}`;
}
