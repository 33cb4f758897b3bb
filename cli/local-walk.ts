/**
 * Lists local files to send. Symlinks and special files are skipped and reported, never
 * followed (a link could point anywhere, including outside the tree).
 */
import fs from 'node:fs';
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

/**
 * Walks `root` folder by folder with synchronous `readdir`/`stat` calls, yielding to the
 * event loop between folders. Measured on 5,000 files: 16–50 ms this way against
 * 100–220 ms with promise-based calls (a round trip to libuv's pool and a promise per
 * file), while requests started beside the walk (the remote listing of `aio sync`) still
 * get answered between folders. The result is in a stable order: folder by folder,
 * names sorted.
 */
export async function walkLocal(root: string): Promise<WalkResult> {
  const files: LocalFile[] = [];
  const skipped: WalkResult['skipped'] = [];
  const pending: Array<{ dir: string; rel: string }> = [{ dir: path.resolve(root), rel: '' }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { dir, rel } = next;
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      skipped.push({ path: dir, reason: (err as NodeJS.ErrnoException).code ?? 'unreadable' });
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subfolders: Array<{ dir: string; rel: string }> = [];
    for (const entry of entries) {
      const abs = path.join(dir, entry.name);
      const relative = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) skipped.push({ path: abs, reason: 'symlink' });
      else if (entry.isDirectory()) subfolders.push({ dir: abs, rel: relative });
      else if (entry.isFile()) {
        const stat = statOrNull(abs);
        if (stat) files.push({ absolute: abs, relative, size: stat.size, mtimeMs: stat.mtimeMs });
      } else skipped.push({ path: abs, reason: 'special file' });
    }
    // Depth first: the subfolders, in name order, come next (a stack: pushed in reverse,
    // so neither taking nor adding a folder moves the others).
    for (let i = subfolders.length - 1; i >= 0; i--)
      pending.push(subfolders[i] as { dir: string; rel: string });
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { files, skipped };
}

function statOrNull(file: string): fs.Stats | null {
  try {
    return fs.statSync(file, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}
