/**
 * Lists local files to send. Symlinks and special files are skipped and reported, never
 * followed (a link could point anywhere, including outside the tree).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../contract/errors.js';
import { pathKey } from '../core/domain/names.js';

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
 * Walks `root` folder by folder with synchronous `readdir`/`lstat` calls, yielding to the
 * event loop between folders. Measured on 5,000 files: 16–50 ms this way against
 * 100–220 ms with promise-based calls (a round trip to libuv's pool and a promise per
 * file), while requests started beside the walk (the remote listing of `aio sync`) still
 * get answered between folders. One `lstat` per entry gives both its kind and its size
 * (no `Dirent` objects), and paths are joined by hand (`path.join` normalises each one):
 * `aio sync` walks once per process, before V8 has optimised anything, and this cut a
 * first walk of 5,100 files from 34–36 to 24–26 ms. The result is in a stable order:
 * folder by folder, names sorted.
 */
export async function walkLocal(root: string): Promise<WalkResult> {
  const files: LocalFile[] = [];
  const skipped: WalkResult['skipped'] = [];
  const pending: Array<{ dir: string; rel: string }> = [{ dir: path.resolve(root), rel: '' }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { dir, rel } = next;
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      skipped.push({ path: dir, reason: (err as NodeJS.ErrnoException).code ?? 'unreadable' });
      continue;
    }
    names.sort();
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    const subfolders: Array<{ dir: string; rel: string }> = [];
    for (const name of names) {
      const abs = prefix + name;
      const relative = rel ? `${rel}/${name}` : name;
      const stat = lstatOrUndefined(abs);
      if (stat === undefined) continue; // gone since the readdir
      if (stat.isFile()) files.push({ absolute: abs, relative, size: stat.size, mtimeMs: stat.mtimeMs });
      else if (stat.isDirectory()) subfolders.push({ dir: abs, rel: relative });
      else if (stat.isSymbolicLink()) skipped.push({ path: abs, reason: 'symlink' });
      else skipped.push({ path: abs, reason: 'special file' });
    }
    // Depth first: the subfolders, in name order, come next (a stack: pushed in reverse,
    // so neither taking nor adding a folder moves the others).
    for (let i = subfolders.length - 1; i >= 0; i--)
      pending.push(subfolders[i] as { dir: string; rel: string });
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { files, skipped };
}

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/**
 * Local paths the server would take for one another (it keeps names unique ignoring
 * case; a Linux folder need not): each later path (code-point order) mapped to the one
 * that is sent. Sending both would store one over the other.
 */
export function caseTwins(paths: Iterable<string>): Map<string, string> {
  const first = new Map<string, string>();
  const twins = new Map<string, string>();
  for (const p of [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const key = pathKey(p);
    const keeper = first.get(key);
    if (keeper === undefined) first.set(key, p);
    else twins.set(p, keeper);
  }
  return twins;
}

/** The error for a path `caseTwins` holds back in favour of `keeper`. */
export function twinError(keeper: string): AppError {
  return new AppError(
    'NAME_CONFLICT',
    `not sent: the server takes it for ${keeper} (names there are unique ignoring case).`,
  );
}
