/**
 * The HTML of public share pages: server-rendered, no script, every dynamic value
 * escaped. The one inline stylesheet is allowed by its hash in the page's CSP
 * (`SHARE_PAGE_CSP`), so nothing else inline can run or style the page.
 */
import { createHash } from 'node:crypto';

const CSS = [
  'body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d1f23}',
  'main{max-width:44rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}',
  'h1{font-size:1.4rem;margin:0 0 1rem;word-break:break-all}',
  'table{width:100%;border-collapse:collapse}td{padding:.4rem;border-top:1px solid #e4e6ea;word-break:break-all}',
  'td.n{text-align:right;white-space:nowrap;color:#555}',
  '.button,button{display:inline-block;background:#1f6feb;color:#fff;border:0;border-radius:6px;padding:.5rem 1rem;font:inherit;text-decoration:none;cursor:pointer}',
  '.meta{color:#555}.error{color:#b42318}input{font:inherit;padding:.4rem;width:16rem}',
].join('');

/** CSP of share pages: nothing but this stylesheet; forms post only to this origin. */
export const SHARE_PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(CSS, 'utf8').digest('base64')}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/gu, (c) => `&#${c.charCodeAt(0)};`);
}

/** A URL path segment (tokens and ids are URL-safe already; this keeps it so). */
function seg(value: string): string {
  return encodeURIComponent(value);
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

function layout(title: string, body: string, options: { refreshSeconds?: number } = {}): string {
  const refresh =
    options.refreshSeconds === undefined
      ? ''
      : `<meta http-equiv="refresh" content="${options.refreshSeconds}">`;
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    `<meta name="robots" content="noindex,nofollow">${refresh}` +
    `<title>${escapeHtml(title)} · AIO Storage</title><style>${CSS}</style></head>` +
    `<body><main>${body}</main></body></html>`
  );
}

function expiryLine(expiresAt: Date | null): string {
  return expiresAt === null
    ? '<p class="meta">This link does not expire.</p>'
    : `<p class="meta">Link expires <time datetime="${expiresAt.toISOString()}">${escapeHtml(
        expiresAt.toISOString().replace('T', ' ').slice(0, 16),
      )} UTC</time>.</p>`;
}

export interface FileView {
  token: string;
  name: string;
  size: number;
  expiresAt: Date | null;
  downloadsLeft: number | null;
}

export function filePage(view: FileView): string {
  const left = view.downloadsLeft === null ? '' : `<p class="meta">Downloads left: ${view.downloadsLeft}</p>`;
  return layout(
    view.name,
    `<h1>${escapeHtml(view.name)}</h1><p>${escapeHtml(formatSize(view.size))}</p>${expiryLine(view.expiresAt)}${left}` +
      `<p><a class="button" id="download" href="/s/${seg(view.token)}?dl=1" download>Download</a></p>`,
  );
}

export interface FolderView {
  token: string;
  /** Shown as the heading. */
  name: string;
  /** Set for a subfolder: the link back to the shared folder. */
  upHref: string | null;
  /** The folder node id the zip is for. */
  folderId: string;
  expiresAt: Date | null;
  entries: { id: string; name: string; kind: 'file' | 'folder'; size: number; ready: boolean }[];
  truncated: boolean;
}

export function folderPage(view: FolderView): string {
  const t = seg(view.token);
  const rows = view.entries
    .map((e) => {
      if (e.kind === 'folder')
        return `<tr><td><a href="/s/${t}/d/${seg(e.id)}">${escapeHtml(e.name)}/</a></td><td class="n">folder</td><td></td></tr>`;
      const link = e.ready ? `<a href="/s/${t}/f/${seg(e.id)}" download>Download</a>` : 'not ready';
      return `<tr><td>${escapeHtml(e.name)}</td><td class="n">${escapeHtml(formatSize(e.size))}</td><td class="n">${link}</td></tr>`;
    })
    .join('');
  const up = view.upHref === null ? '' : `<p><a href="${escapeHtml(view.upHref)}">← back</a></p>`;
  const more = view.truncated
    ? '<p class="meta">Only the first entries are listed; download all to get everything.</p>'
    : '';
  return layout(
    view.name,
    `${up}<h1>${escapeHtml(view.name)}/</h1>${expiryLine(view.expiresAt)}` +
      `<form method="post" action="/s/${t}/zip"><input type="hidden" name="folder" value="${escapeHtml(view.folderId)}">` +
      '<button type="submit">Download all (zip)</button></form>' +
      (rows ? `<table>${rows}</table>` : '<p class="meta">This folder is empty.</p>') +
      more,
  );
}

export function passwordPage(token: string, error: string | null): string {
  const message = error === null ? '' : `<p class="error" role="alert">${escapeHtml(error)}</p>`;
  return layout(
    'Password required',
    `<h1>This link is protected</h1>${message}` +
      `<form method="post" action="/s/${seg(token)}/auth">` +
      '<label for="password">Password</label><br>' +
      '<input type="password" id="password" name="password" autocomplete="current-password" required autofocus> ' +
      '<button type="submit">Open</button></form>',
  );
}

export function zipPage(
  token: string,
  jobId: string,
  state: 'waiting' | 'done' | 'failed',
  detail: string | null,
): string {
  const base = `/s/${seg(token)}/zip/${seg(jobId)}`;
  if (state === 'done')
    return layout(
      'Zip ready',
      `<h1>Your zip is ready</h1><p><a class="button" id="download" href="${base}/file" download>Download zip</a></p>`,
    );
  if (state === 'failed')
    return layout(
      'Zip failed',
      `<h1>The zip could not be built</h1><p class="error">${escapeHtml(detail ?? '')}</p>`,
    );
  return layout(
    'Preparing zip',
    '<h1>Preparing your zip…</h1><p class="meta">This page refreshes by itself until the zip is ready.</p>' +
      `<p><a href="${base}">Refresh now</a></p>`,
    { refreshSeconds: 2 },
  );
}

export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}
