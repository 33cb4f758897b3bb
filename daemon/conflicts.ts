/**
 * Conflicted copies: when both sides changed a file, the local version is renamed to
 * `NAME (conflicted copy YYYY-MM-DD HHMMSS HOST).EXT` beside the original, and both are kept.
 */
import path from 'node:path';

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `report.pdf` → `report (conflicted copy 2026-01-02 030405 laptop).pdf` (local time). */
export function conflictedCopyName(name: string, at: Date, host: string): string {
  // A leading dot is part of the name, not an extension (`.bashrc` has none).
  const ext = name.startsWith('.') && name.indexOf('.', 1) === -1 ? '' : path.extname(name);
  const base = ext ? name.slice(0, -ext.length) : name;
  const stamp =
    `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}${pad(at.getMinutes())}${pad(at.getSeconds())}`;
  const safeHost = host.replace(/[/\\\s]+/g, '-') || 'host';
  return `${base} (conflicted copy ${stamp} ${safeHost})${ext}`;
}

/** The relative path of the conflicted copy of `relPath`. */
export function conflictedCopyPath(relPath: string, at: Date, host: string): string {
  const slash = relPath.lastIndexOf('/');
  const dir = slash === -1 ? '' : relPath.slice(0, slash + 1);
  return dir + conflictedCopyName(relPath.slice(slash + 1), at, host);
}
