/**
 * Lists local files to send. Symlinks and special files are skipped and reported, never
 * followed (a link could point anywhere, including outside the tree).
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export interface LocalFile {
  absolute: string;
  /** Path relative to the walked root, `/`-separated. */
  relative: string;
  size: number;
  mtimeMs: number;
}

export interface WalkResult {
  files: LocalFile[];
  skipped: Array<{ path: string; reason: string }>;
}

export async function walkLocal(root: string): Promise<WalkResult> {
  const files: LocalFile[] = [];
  const skipped: WalkResult['skipped'] = [];
  const visit = async (dir: string, rel: string) => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      skipped.push({ path: dir, reason: (err as NodeJS.ErrnoException).code ?? 'unreadable' });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const abs = path.join(dir, entry.name);
      const relative = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) skipped.push({ path: abs, reason: 'symlink' });
      else if (entry.isDirectory()) await visit(abs, relative);
      else if (entry.isFile()) {
        const stat = await fs.stat(abs).catch(() => null);
        if (stat) files.push({ absolute: abs, relative, size: stat.size, mtimeMs: stat.mtimeMs });
      } else skipped.push({ path: abs, reason: 'special file' });
    }
  };
  await visit(path.resolve(root), '');
  return { files, skipped };
}
